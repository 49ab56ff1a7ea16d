//! ES module syntax → the CommonJS shape the plugin runs as a sloppy script.
//!
//! PostHog ran connector code non-strict whatever syntax it used (ESM went
//! through a CommonJS-style wrapper). QuickJS compiles ES modules as strict,
//! so the compiler parses the file with oxc and rewrites, in place:
//!
//! - `export function f` / `export const a = …` / `export class C` → the
//!   declaration, plus `module.exports.f = f` after the last line;
//! - `export { a, b as c }` → removed, plus `module.exports.c = b`;
//! - `export default <expr>` → `module.exports.default = <expr>;`.
//!
//! Removed text is replaced by spaces, so lines (and, mostly, columns) in
//! error stacks are the author's. CommonJS and plain top-level functions need
//! no rewrite; the plugin finds them itself.

use crate::error::BuildError;
use oxc_allocator::Allocator;
use oxc_ast::ast::{Declaration, ExportDefaultDeclarationKind, Statement};
use oxc_parser::Parser;
use oxc_span::{GetSpan, SourceType};

/// One replacement of `source[start..end]`.
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

/// 1-based line and column of byte `offset` in `source`.
pub fn line_column(source: &str, offset: usize) -> (u32, u32) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, column)
}

fn error_at(file: &str, source: &str, offset: usize, message: String) -> BuildError {
    let (line, column) = line_column(source, offset);
    BuildError::Unsupported {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// Spaces for `source[start..end]`, newlines kept.
fn blank(source: &str, start: usize, end: usize) -> Edit {
    let text = source[start..end]
        .chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect();
    Edit { start, end, text }
}

/// Parses `source` (a script or an ES module) and returns a script with the
/// same behaviour whose exports land on `module.exports`.
pub fn to_script(file: &str, source: &str) -> Result<String, BuildError> {
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, SourceType::unambiguous()).parse();
    if let Some(error) = parsed.diagnostics.errors().next() {
        let offset = error
            .labels
            .first()
            .map_or(0, |label| label.offset() as usize);
        return Err(error_at(
            file,
            source,
            offset,
            format!("SyntaxError: {}", error.message),
        ));
    }
    let mut edits = Vec::new();
    let mut exports: Vec<(String, String)> = Vec::new();
    for statement in &parsed.program.body {
        match statement {
            Statement::ImportDeclaration(import) => {
                return Err(error_at(
                    file,
                    source,
                    import.span.start as usize,
                    format!(
                        "import of \"{}\" is not supported: a connector must be a single file",
                        import.source.value
                    ),
                ));
            }
            Statement::ExportAllDeclaration(export) => {
                return Err(error_at(
                    file,
                    source,
                    export.span.start as usize,
                    format!(
                        "re-export from \"{}\" is not supported: a connector must be a single file",
                        export.source.value
                    ),
                ));
            }
            Statement::ExportFromDeclaration(export) => {
                return Err(error_at(
                    file,
                    source,
                    export.span.start as usize,
                    format!(
                        "re-export from \"{}\" is not supported: a connector must be a single file",
                        export.source.value
                    ),
                ));
            }
            Statement::ExportDeclaration(export) => {
                let declaration = &export.declaration;
                edits.push(blank(
                    source,
                    export.span.start as usize,
                    declaration.span().start as usize,
                ));
                let names: Vec<String> = match declaration {
                    Declaration::VariableDeclaration(variables) => variables
                        .declarations
                        .iter()
                        .flat_map(|d| d.id.get_binding_identifiers())
                        .map(|id| id.name.to_string())
                        .collect(),
                    Declaration::FunctionDeclaration(function) => {
                        function.id.iter().map(|id| id.name.to_string()).collect()
                    }
                    Declaration::ClassDeclaration(class) => {
                        class.id.iter().map(|id| id.name.to_string()).collect()
                    }
                    _ => Vec::new(),
                };
                exports.extend(names.into_iter().map(|name| (name.clone(), name)));
            }
            Statement::ExportNamedDeclaration(export) => {
                edits.push(blank(
                    source,
                    export.span.start as usize,
                    export.span.end as usize,
                ));
                for specifier in &export.specifiers {
                    exports.push((
                        specifier.exported.name().to_string(),
                        specifier.local.name().to_string(),
                    ));
                }
            }
            Statement::ExportDefaultDeclaration(export) => {
                let start = export.span.start as usize;
                let named = match &export.declaration {
                    ExportDefaultDeclarationKind::FunctionDeclaration(f) => {
                        f.id.as_ref().map(|id| id.name.to_string())
                    }
                    ExportDefaultDeclarationKind::ClassDeclaration(c) => {
                        c.id.as_ref().map(|id| id.name.to_string())
                    }
                    _ => None,
                };
                let inner = export.declaration.span();
                match named {
                    Some(name) => {
                        edits.push(blank(source, start, inner.start as usize));
                        exports.push(("default".into(), name));
                    }
                    None => {
                        edits.push(Edit {
                            start,
                            end: inner.start as usize,
                            text: "module.exports.default = ".into(),
                        });
                        edits.push(Edit {
                            start: inner.end as usize,
                            end: inner.end as usize,
                            text: ";".into(),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = String::with_capacity(source.len() + 64 * exports.len());
    let mut at = 0;
    for edit in &edits {
        out.push_str(&source[at..edit.start]);
        out.push_str(&edit.text);
        at = edit.end;
    }
    out.push_str(&source[at..]);
    if !exports.is_empty() {
        out.push_str("\n;");
        for (exported, local) in &exports {
            out.push_str(&format!(
                "module.exports[{}] = {local};",
                serde_json::Value::from(exported.as_str())
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(source: &str) -> String {
        to_script("index.js", source).unwrap()
    }

    #[test]
    fn scripts_and_commonjs_are_unchanged() {
        for source in [
            "function processEvent(e) { return e }",
            "module.exports = { processEvent(e) { return e } }",
            "exports.processEvent = function (e) { with (e) { return e } }",
        ] {
            assert_eq!(script(source), source);
        }
    }

    #[test]
    fn export_declarations_keep_their_lines() {
        assert_eq!(
            script(
                "export function processEvent(e) {\n  return e\n}\nexport const a = 1, { b } = {}"
            ),
            "       function processEvent(e) {\n  return e\n}\n       const a = 1, { b } = {}\n;module.exports[\"processEvent\"] = processEvent;module.exports[\"a\"] = a;module.exports[\"b\"] = b;"
        );
    }

    #[test]
    fn export_lists_are_blanked() {
        assert_eq!(
            script("function f() {}\nexport { f as processEvent, f }"),
            "function f() {}\n                               \n;module.exports[\"processEvent\"] = f;module.exports[\"f\"] = f;"
        );
    }

    #[test]
    fn default_exports_become_module_exports_default() {
        assert_eq!(
            script("export default { processEvent(e) { return e } }"),
            "module.exports.default = { processEvent(e) { return e } };"
        );
        assert_eq!(
            script("export default function plugin() {}"),
            "               function plugin() {}\n;module.exports[\"default\"] = plugin;"
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let error = to_script("index.js", "function f() {\n  return 1 +;\n}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "index.js:2:13: SyntaxError: Unexpected token"
        );
    }

    #[test]
    fn imports_are_refused_with_their_location() {
        let error = to_script("index.js", "\nimport x from 'lodash'\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "index.js:2:1: import of \"lodash\" is not supported: a connector must be a single file"
        );
    }
}
