//! TypeScript → JavaScript: types stripped by oxc's transformer (the same
//! parser and semantics as the rest of the compiler), then printed by oxc's
//! code generator. Only TypeScript syntax is removed or lowered (enums,
//! namespaces, parameter properties); modern JavaScript is kept as it is,
//! QuickJS runs it.

use crate::error::BuildError;
use crate::normalize::diagnostic_error;
use oxc_allocator::Allocator;
use oxc_codegen::Codegen;
use oxc_parser::Parser;
use oxc_semantic::SemanticBuilder;
use oxc_span::SourceType;
use oxc_transformer::{TransformOptions, Transformer};
use std::path::Path;

/// Whether `file` is TypeScript, by its extension.
pub fn is_typescript(file: &str) -> bool {
    [".ts", ".mts", ".cts"]
        .iter()
        .any(|ext| file.ends_with(ext))
        && !file.ends_with(".d.ts")
}

/// The JavaScript for TypeScript `source`.
pub fn strip_types(file: &str, source: &str) -> Result<String, BuildError> {
    let allocator = Allocator::default();
    let source_type = SourceType::ts().with_unambiguous(true);
    let parsed = Parser::new(&allocator, source, source_type).parse();
    if let Some(error) = parsed.diagnostics.errors().next() {
        return Err(diagnostic_error(file, source, "SyntaxError", error));
    }
    let mut program = parsed.program;
    let scoping = SemanticBuilder::new()
        .build(&program)
        .semantic
        .into_scoping();
    let options = TransformOptions::default();
    let transformed = Transformer::new(&allocator, Path::new(file), &options)
        .build_with_scoping(scoping, &mut program);
    if let Some(error) = transformed
        .diagnostics
        .iter()
        .find(|d| d.severity == oxc_diagnostics::Severity::Error)
    {
        return Err(diagnostic_error(file, source, "TypeScript", error));
    }
    Ok(Codegen::new().build(&program).code)
}
