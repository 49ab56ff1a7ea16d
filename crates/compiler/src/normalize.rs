//! ES module syntax → the CommonJS shape the plugin runs as a sloppy script.
//!
//! PostHog ran connector code non-strict whatever syntax it used (ESM went
//! through a CommonJS-style wrapper). QuickJS compiles ES modules as strict,
//! so the compiler parses each file with oxc and rewrites, in place:
//!
//! - `export function f` / `export const a = …` / `export class C` → the
//!   declaration, plus `module.exports.f = f` after the last line;
//! - `export { a, b as c }` → removed, plus `module.exports.c = b`;
//! - `export default <expr>` → `module.exports.default = <expr>;`;
//! - `import x, { a as b } from "m"` → `const x = __sandpipe_default(require("m")), b = ….a;`;
//! - `export … from "m"` → the same through `require`.
//!
//! Bindings are `const`, as an import's are read-only: in the main file, a
//! top-level script, a `var` would also be a property of the global object,
//! so `import fetch from "./my-fetch"` replaced the world's `fetch` for every
//! caller (as a module's import never does).
//!
//! Removed text is replaced by spaces and replaced statements keep their line
//! count, so lines in error stacks are the author's. Every `require("m")`
//! (written or generated) is reported, so the linker can bundle `m`.

use crate::error::BuildError;
use oxc_allocator::Allocator;
use oxc_ast::ast::{
    Argument, CallExpression, Declaration, ExportDefaultDeclarationKind, Expression,
    ImportDeclarationSpecifier, ImportExpression, Statement,
};
use oxc_ast_visit::{Visit, walk};
use oxc_diagnostics::OxcDiagnostic;
use oxc_parser::Parser;
use oxc_span::{GetSpan, SourceType, Span};

/// A `require("m")` in a script, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Require {
    pub specifier: String,
    pub offset: usize,
}

/// A file rewritten to script form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub text: String,
    /// Every module the script requires, in source order.
    pub requires: Vec<Require>,
}

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

/// A build error located at byte `offset` of `source`.
pub fn error_at(file: &str, source: &str, offset: usize, message: String) -> BuildError {
    let (line, column) = line_column(source, offset);
    BuildError::Unsupported {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// A build error for an oxc diagnostic, located at its first label.
pub fn diagnostic_error(file: &str, source: &str, kind: &str, error: &OxcDiagnostic) -> BuildError {
    let offset = error
        .labels
        .first()
        .map_or(0, |label| label.offset() as usize);
    error_at(file, source, offset, format!("{kind}: {}", error.message))
}

/// Spaces for `source[start..end]`, newlines kept.
fn blank(source: &str, start: usize, end: usize) -> Edit {
    let text = source[start..end]
        .chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect();
    Edit { start, end, text }
}

/// `text` in place of `source[start..end]`, padded with the newlines it replaces.
fn replace(source: &str, start: usize, end: usize, text: String) -> Edit {
    let newlines = source[start..end].matches('\n').count();
    Edit {
        start,
        end,
        text: text + &"\n".repeat(newlines),
    }
}

fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Finds `require("m")` calls and refuses dynamic `import()`.
#[derive(Default)]
struct RequireFinder {
    requires: Vec<Require>,
    dynamic_import: Option<usize>,
}

impl<'a> Visit<'a> for RequireFinder {
    fn visit_call_expression(&mut self, call: &CallExpression<'a>) {
        if let Expression::Identifier(callee) = &call.callee
            && callee.name == "require"
            && let [Argument::StringLiteral(specifier)] = call.arguments.as_slice()
        {
            self.requires.push(Require {
                specifier: specifier.value.to_string(),
                offset: call.span.start as usize,
            });
        }
        walk::walk_call_expression(self, call);
    }

    fn visit_import_expression(&mut self, import: &ImportExpression<'a>) {
        self.dynamic_import
            .get_or_insert(import.span.start as usize);
        walk::walk_import_expression(self, import);
    }
}

/// Parses `source` (a script or an ES module) and returns a script with the
/// same behaviour whose exports land on `module.exports`.
/// Records the `require` a static import or re-export becomes; returns the
/// quoted specifier and the statement's span, which the caller rewrites.
fn record_require(
    requires: &mut Vec<Require>,
    specifier: &str,
    span: Span,
) -> (String, usize, usize) {
    let start = span.start as usize;
    requires.push(Require {
        specifier: specifier.to_string(),
        offset: start,
    });
    (quoted(specifier), start, span.end as usize)
}

pub fn to_script(file: &str, source: &str) -> Result<Script, BuildError> {
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, SourceType::unambiguous()).parse();
    if let Some(error) = parsed.diagnostics.errors().next() {
        return Err(diagnostic_error(file, source, "SyntaxError", error));
    }
    let mut finder = RequireFinder::default();
    finder.visit_program(&parsed.program);
    if let Some(offset) = finder.dynamic_import {
        return Err(error_at(
            file,
            source,
            offset,
            "dynamic import() is not supported: use a static import".into(),
        ));
    }
    let mut requires = finder.requires;
    let mut edits = Vec::new();
    // (exported name, expression) pairs, assigned after the last line.
    let mut exports: Vec<(String, String)> = Vec::new();
    let mut is_module = false;
    let mut temporaries = 0;
    let mut temporary = || {
        temporaries += 1;
        format!("__sandpipe_import_{temporaries}")
    };
    for statement in &parsed.program.body {
        match statement {
            Statement::ImportDeclaration(import) => {
                is_module = true;
                let (specifier, start, end) =
                    record_require(&mut requires, &import.source.value, import.span);
                let module = temporary();
                let mut bindings = vec![format!("{module} = require({specifier})")];
                for item in import.specifiers.iter().flatten() {
                    bindings.push(match item {
                        ImportDeclarationSpecifier::ImportDefaultSpecifier(s) => {
                            format!("{} = __sandpipe_default({module})", s.local.name)
                        }
                        ImportDeclarationSpecifier::ImportNamespaceSpecifier(s) => {
                            format!("{} = {module}", s.local.name)
                        }
                        ImportDeclarationSpecifier::ImportSpecifier(s) => {
                            format!(
                                "{} = {module}[{}]",
                                s.local.name,
                                quoted(&s.imported.name())
                            )
                        }
                    });
                }
                edits.push(replace(
                    source,
                    start,
                    end,
                    format!("const {};", bindings.join(", ")),
                ));
            }
            Statement::ExportAllDeclaration(export) => {
                is_module = true;
                let (specifier, start, end) =
                    record_require(&mut requires, &export.source.value, export.span);
                let text = match &export.exported {
                    Some(name) => {
                        let module = temporary();
                        exports.push((name.name().to_string(), module.clone()));
                        format!("const {module} = require({specifier});")
                    }
                    None => {
                        format!("__sandpipe_export_all(module.exports, require({specifier}));")
                    }
                };
                edits.push(replace(source, start, end, text));
            }
            Statement::ExportFromDeclaration(export) => {
                is_module = true;
                let (specifier, start, end) =
                    record_require(&mut requires, &export.source.value, export.span);
                let module = temporary();
                for item in &export.specifiers {
                    exports.push((
                        item.exported.name().to_string(),
                        format!("{module}[{}]", quoted(&item.local.name())),
                    ));
                }
                edits.push(replace(
                    source,
                    start,
                    end,
                    format!("const {module} = require({specifier});"),
                ));
            }
            Statement::ExportDeclaration(export) => {
                is_module = true;
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
                is_module = true;
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
                is_module = true;
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
    edits.sort_by_key(|edit| edit.start);
    requires.sort_by_key(|r| r.offset);
    let mut text = String::with_capacity(source.len() + 64 * exports.len());
    let mut at = 0;
    for edit in &edits {
        text.push_str(&source[at..edit.start]);
        text.push_str(&edit.text);
        at = edit.end;
    }
    text.push_str(&source[at..]);
    if is_module {
        text.push_str("\n;module.exports.__esModule = true;");
        for (exported, local) in &exports {
            text.push_str(&format!("module.exports[{}] = {local};", quoted(exported)));
        }
    }
    Ok(Script { text, requires })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(source: &str) -> String {
        to_script("index.js", source).unwrap().text
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
            "       function processEvent(e) {\n  return e\n}\n       const a = 1, { b } = {}\n;module.exports.__esModule = true;module.exports[\"processEvent\"] = processEvent;module.exports[\"a\"] = a;module.exports[\"b\"] = b;"
        );
    }

    #[test]
    fn export_lists_are_blanked() {
        assert_eq!(
            script("function f() {}\nexport { f as processEvent, f }"),
            "function f() {}\n                               \n;module.exports.__esModule = true;module.exports[\"processEvent\"] = f;module.exports[\"f\"] = f;"
        );
    }

    #[test]
    fn default_exports_become_module_exports_default() {
        assert_eq!(
            script("export default { processEvent(e) { return e } }"),
            "module.exports.default = { processEvent(e) { return e } };\n;module.exports.__esModule = true;"
        );
        assert_eq!(
            script("export default function plugin() {}"),
            "               function plugin() {}\n;module.exports.__esModule = true;module.exports[\"default\"] = plugin;"
        );
    }

    #[test]
    fn imports_become_requires_on_the_same_lines() {
        let out = to_script("index.js", "import pad, { a as b,\n c } from 'left-pad'\nimport * as ns from './ns'\nconst x = require('y')").unwrap();
        assert_eq!(
            out.text,
            "const __sandpipe_import_1 = require(\"left-pad\"), pad = __sandpipe_default(__sandpipe_import_1), b = __sandpipe_import_1[\"a\"], c = __sandpipe_import_1[\"c\"];\n\nconst __sandpipe_import_2 = require(\"./ns\"), ns = __sandpipe_import_2;\nconst x = require('y')\n;module.exports.__esModule = true;"
        );
        let specifiers: Vec<&str> = out.requires.iter().map(|r| r.specifier.as_str()).collect();
        assert_eq!(specifiers, ["left-pad", "./ns", "y"]);
    }

    #[test]
    fn re_exports_go_through_require() {
        assert_eq!(
            script("export * from './a'\nexport { x as y } from './b'"),
            "__sandpipe_export_all(module.exports, require(\"./a\"));\nconst __sandpipe_import_1 = require(\"./b\");\n;module.exports.__esModule = true;module.exports[\"y\"] = __sandpipe_import_1[\"x\"];"
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
    fn dynamic_import_is_refused_with_its_location() {
        let error =
            to_script("index.js", "\nasync function f() { await import('x') }").unwrap_err();
        assert_eq!(
            error.to_string(),
            "index.js:2:28: dynamic import() is not supported: use a static import"
        );
    }
}
