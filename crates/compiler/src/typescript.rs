//! TypeScript → JavaScript: types stripped by oxc's transformer (the same
//! parser and semantics as the rest of the compiler), then printed by oxc's
//! code generator. Only TypeScript syntax is removed or lowered (enums,
//! namespaces, parameter properties); modern JavaScript is kept as it is,
//! QuickJS runs it.
//!
//! The printed code is then laid out again by its source map ([`relayout`]):
//! each printed line that starts with a mapped token moves to the line (and
//! column) of the TypeScript it came from, so a stack trace's `index.ts:9:5`
//! names the `.ts` source's own line, as in `index.js`.

use crate::error::BuildError;
use crate::normalize::diagnostic_error;
use oxc_allocator::Allocator;
use oxc_codegen::{Codegen, CodegenOptions, CommentOptions};
use oxc_parser::Parser;
use oxc_semantic::SemanticBuilder;
use oxc_span::SourceType;
use oxc_transformer::{TransformOptions, Transformer};
use std::collections::HashMap;
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
    let options = CodegenOptions {
        // No comments: a printed line may be joined to the one before it.
        comments: CommentOptions::disabled(),
        source_map_path: Some(Path::new(file).to_path_buf()),
        ..CodegenOptions::default()
    };
    let printed = Codegen::new().with_options(options).build(&program);
    let anchors = printed.map.as_ref().map_or_else(HashMap::new, |map| {
        line_anchors(
            &printed.code,
            map.get_tokens().map(|t| {
                (
                    t.get_dst_line(),
                    t.get_dst_col(),
                    t.get_src_line(),
                    t.get_src_col(),
                )
            }),
        )
    });
    Ok(relayout(&printed.code, &anchors))
}

/// For each printed line whose first non-blank character starts a mapped
/// token: the source line and column (0-based) that token came from.
fn line_anchors(
    code: &str,
    tokens: impl Iterator<Item = (u32, u32, u32, u32)>,
) -> HashMap<usize, (usize, usize)> {
    let indents: Vec<usize> = code
        .split('\n')
        .map(|line| line.len() - line.trim_start().len())
        .collect();
    let mut anchors = HashMap::new();
    for (dst_line, dst_col, src_line, src_col) in tokens {
        let line = dst_line as usize;
        if indents.get(line) == Some(&(dst_col as usize)) {
            anchors
                .entry(line)
                .or_insert((src_line as usize, src_col as usize));
        }
    }
    anchors
}

/// `code` with each anchored line moved down to its source line and column;
/// a line anchored to the line already being written is appended to it. Other
/// lines (template literal continuations, lines whose source is above) keep
/// their place after the line before, so no string changes.
fn relayout(code: &str, anchors: &HashMap<usize, (usize, usize)>) -> String {
    let mut out = String::with_capacity(code.len() * 2);
    let (mut line, mut line_empty) = (0, true);
    for (printed, text) in code.split('\n').enumerate() {
        match anchors.get(&printed) {
            Some(&(source_line, column))
                if source_line > line || (source_line == line && line_empty) =>
            {
                out.extend(std::iter::repeat_n('\n', source_line - line));
                line = source_line;
                out.extend(std::iter::repeat_n(' ', column));
                out.push_str(text.trim_start());
                line_empty = false;
            }
            Some(&(source_line, _)) if source_line == line => {
                out.push(' ');
                out.push_str(text.trim_start());
            }
            _ => {
                if printed > 0 {
                    out.push('\n');
                    line += 1;
                }
                out.push_str(text);
                line_empty = text.trim().is_empty();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_lines_go_back_to_their_source_lines() {
        let source = "interface A { a: number }\n\n\n// a comment\nfunction f(x: number): number {\n  const o = { a: 1,\n    b: `two\n  lines` };\n\n  throw new Error('line 10')\n}\n";
        let js = strip_types("index.ts", source).unwrap();
        let lines: Vec<&str> = js.lines().collect();
        assert_eq!(lines[4], "function f(x) {", "{js}");
        assert!(lines[5].starts_with("  const o = {"), "{js}");
        // The template literal keeps its line break and its text.
        assert!(js.contains("`two\n  lines`"), "{js}");
        assert_eq!(lines[9], "  throw new Error(\"line 10\");", "{js}");
    }
}
