//! TypeScript → JavaScript: types stripped by oxc's transformer (the same
//! parser and semantics as the rest of the compiler), then printed by oxc's
//! code generator. Only TypeScript syntax is removed or lowered (enums,
//! namespaces, parameter properties); modern JavaScript is kept as it is,
//! QuickJS runs it.
//!
//! The printed code is then laid out again by its source map ([`relayout`]):
//! each printed line that starts with a mapped token moves to the line (and
//! column) of the TypeScript it came from, and the tokens after it on that
//! line move right to their own columns (where the types were, there are
//! blanks), so a stack trace's `index.ts:9:23` names the `.ts` source's own
//! line and column, as in `index.js`. The layout is the source map applied once,
//! at build: the bundle needs no map, and `error.stack` read inside the
//! connector is right too.

use crate::error::BuildError;
use crate::normalize::diagnostic_error;
use oxc_allocator::Allocator;
use oxc_ast::ast::{RegExpLiteral, StringLiteral, TemplateLiteral};
use oxc_ast_visit::Visit;
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
    let literals = literal_spans(&printed.code);
    let tokens = printed.map.as_ref().map_or_else(LineTokens::new, |map| {
        line_tokens(
            &printed.code,
            literals.as_deref(),
            map.get_tokens().map(|t| Mapped {
                dst_line: t.get_dst_line() as usize,
                dst_col: t.get_dst_col() as usize,
                src_line: t.get_src_line() as usize,
                src_col: t.get_src_col() as usize,
            }),
        )
    });
    Ok(relayout(&printed.code, &tokens, literals.as_deref()))
}

/// One source-map token: where a printed token starts and where its
/// TypeScript was (0-based lines; columns in UTF-16 units, as source maps count).
#[derive(Clone, Copy, Debug)]
struct Mapped {
    dst_line: usize,
    dst_col: usize,
    src_line: usize,
    src_col: usize,
}

/// A printed token that may be moved to its source column: its byte offset in
/// its printed line, and its source line and column.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Movable {
    at: usize,
    src_line: usize,
    src_col: usize,
}

/// For each printed line that starts with a mapped token: its tokens, in
/// order, the first being the one at the line's start. A token inside a
/// string, template or regular expression literal is never moved (a blank
/// there would be part of the value); anywhere else blanks may be widened
/// between two tokens without changing what the program means.
type LineTokens = HashMap<usize, Vec<Movable>>;

fn line_tokens(
    code: &str,
    literals: Option<&[(usize, usize)]>,
    tokens: impl Iterator<Item = Mapped>,
) -> LineTokens {
    let lines: Vec<&str> = code.split('\n').collect();
    let starts: Vec<usize> = lines
        .iter()
        .scan(0, |next, line| {
            let start = *next;
            *next += line.len() + 1;
            Some(start)
        })
        .collect();
    // Whether a token at this offset must stay where it is (any token but a
    // line's first, when the literals are not known).
    let fixed = |offset: usize, first: bool| match literals {
        Some(literals) => {
            let after = literals.partition_point(|&(start, _)| start < offset);
            after > 0 && literals[after - 1].1 > offset
        }
        None => !first,
    };
    let mut found: LineTokens = HashMap::new();
    for token in tokens {
        let Some(line) = lines.get(token.dst_line) else {
            continue;
        };
        let Some(at) = byte_offset(line, token.dst_col) else {
            continue;
        };
        // The code generator may map a statement at the blank it prints before it.
        let at = at + (line[at..].len() - line[at..].trim_start_matches([' ', '\t']).len());
        let indent = line.len() - line.trim_start().len();
        if at == line.len() || fixed(starts[token.dst_line] + at, at == indent) {
            continue;
        }
        found.entry(token.dst_line).or_default().push(Movable {
            at,
            src_line: token.src_line,
            src_col: token.src_col,
        });
    }
    found.retain(|&line, tokens| {
        tokens.sort_by_key(|t| t.at);
        tokens.dedup_by_key(|t| t.at);
        let indent = lines[line].len() - lines[line].trim_start().len();
        tokens.first().is_some_and(|t| t.at == indent)
    });
    found
}

/// The byte spans of every string, template and regular expression literal in
/// printed JavaScript `code`, in order (a template's `${…}` parts included:
/// whole templates are left alone); `None` if the printed code does not parse
/// again, and then only line starts move.
fn literal_spans(code: &str) -> Option<Vec<(usize, usize)>> {
    struct Literals(Vec<(usize, usize)>);
    impl<'a> Visit<'a> for Literals {
        fn visit_string_literal(&mut self, it: &StringLiteral<'a>) {
            self.0.push((it.span.start as usize, it.span.end as usize));
        }
        fn visit_template_literal(&mut self, it: &TemplateLiteral<'a>) {
            self.0.push((it.span.start as usize, it.span.end as usize));
        }
        fn visit_reg_exp_literal(&mut self, it: &RegExpLiteral<'a>) {
            self.0.push((it.span.start as usize, it.span.end as usize));
        }
    }
    let allocator = Allocator::default();
    let parsed = [SourceType::mjs(), SourceType::cjs()]
        .into_iter()
        .map(|source_type| Parser::new(&allocator, code, source_type).parse())
        .find(|parsed| !parsed.panicked && parsed.diagnostics.errors().next().is_none())?;
    let mut literals = Literals(Vec::new());
    literals.visit_program(&parsed.program);
    literals.0.sort_unstable();
    // Outermost spans only (a string inside a template's `${…}` is inside the template).
    let mut outer: Vec<(usize, usize)> = Vec::with_capacity(literals.0.len());
    for (start, end) in literals.0 {
        match outer.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => outer.push((start, end)),
        }
    }
    Some(outer)
}

/// The byte offset of UTF-16 column `column` in `line`, if it starts a character there.
fn byte_offset(line: &str, column: usize) -> Option<usize> {
    let mut units = 0;
    for (at, c) in line.char_indices() {
        if units == column {
            return Some(at);
        }
        if units > column {
            return None;
        }
        units += c.len_utf16();
    }
    (units == column).then_some(line.len())
}

/// `code` with each line that starts with a mapped token moved down to its
/// source line, each of its movable tokens from that source line pushed right
/// to its source column; a line anchored to the line already being written is
/// appended to it. Any other line (code the transformer made, such as the end
/// of a lowered `enum`, a closing brace, a line whose source is above) is
/// appended to the line before too, so it pushes no later line down; except
/// where the line break is inside a template literal (or the literals are
/// not known), where it keeps its place after the line before, so no string
/// changes. Line breaks are only added or turned into blanks, and blanks only
/// widened, between tokens of a printed program that ends each statement
/// with `;`, so the program means what it meant.
fn relayout(code: &str, tokens: &LineTokens, literals: Option<&[(usize, usize)]>) -> String {
    let mut out = String::with_capacity(code.len() * 2);
    let (mut line, mut line_empty) = (0, true);
    // UTF-16 column where the next character of `out` goes.
    let mut column = 0;
    // Byte offset in `code` of the printed line's start.
    let mut start = 0;
    for (printed, text) in code.split('\n').enumerate() {
        let line_start = start;
        start += text.len() + 1;
        // Whether the line break before this printed line may become a blank.
        // A hashbang's line ends at its line break: what follows it stays on the next line.
        let joinable = printed > 0
            && !(printed == 1 && code.starts_with("#!"))
            && literals.is_some_and(|literals| {
                let newline = line_start - 1;
                let after = literals.partition_point(|&(start, _)| start < newline);
                !(after > 0 && literals[after - 1].1 > newline)
            });
        let first = tokens.get(&printed).and_then(|t| t.first());
        match first {
            Some(first) if first.src_line > line || (first.src_line == line && line_empty) => {
                out.extend(std::iter::repeat_n('\n', first.src_line - line));
                line = first.src_line;
                out.extend(std::iter::repeat_n(' ', first.src_col));
                column = first.src_col;
                line_empty = false;
                write_tokens(&mut out, &mut column, line, text, &tokens[&printed]);
            }
            Some(first) if first.src_line == line => {
                if first.src_col <= column {
                    out.push(' ');
                    column += 1;
                }
                write_tokens(&mut out, &mut column, line, text, &tokens[&printed]);
            }
            _ if joinable => {
                let text = text.trim_start();
                if !text.is_empty() {
                    if !line_empty {
                        out.push(' ');
                        column += 1;
                    }
                    out.push_str(text);
                    column += text.encode_utf16().count();
                    line_empty = false;
                }
            }
            _ => {
                if printed > 0 {
                    out.push('\n');
                    line += 1;
                    column = 0;
                }
                out.push_str(text);
                column += text.encode_utf16().count();
                line_empty = text.trim().is_empty();
            }
        }
    }
    out
}

/// Writes printed line `text` from its first token on, each token of source
/// line `line` pushed right to its source column (by widening the blank before
/// it, or the one between two statements joined on one line).
fn write_tokens(out: &mut String, column: &mut usize, line: usize, text: &str, tokens: &[Movable]) {
    for (i, token) in tokens.iter().enumerate() {
        if token.src_line == line && token.src_col > *column {
            out.extend(std::iter::repeat_n(' ', token.src_col - *column));
            *column = token.src_col;
        }
        let end = tokens.get(i + 1).map_or(text.len(), |next| next.at);
        let piece = &text[token.at..end];
        out.push_str(piece);
        *column += piece.encode_utf16().count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_lines_go_back_to_their_source_lines() {
        let source = "interface A { a: number }\n\n\n// a comment\nfunction f(x: number): number {\n  const o = { a: 1,\n    b: `two\n  lines` };\n\n  throw new Error('line 10')\n}\n";
        let js = strip_types("index.ts", source).unwrap();
        let lines: Vec<&str> = js.lines().collect();
        assert_eq!(lines[4], "function f(x)                 {", "{js}");
        assert!(lines[5].starts_with("  const o = {"), "{js}");
        // The template literal keeps its line break and its text.
        assert!(js.contains("`two\n  lines`"), "{js}");
        assert_eq!(lines[9], "  throw new Error(\"line 10\");", "{js}");
    }

    #[test]
    fn tokens_after_the_types_keep_their_source_columns() {
        let source = "export function f(event: { event: string }, n: number): never {\n    const name: string = event.event as string; const t: string = `a ${name}  b ${ n }`; throw new Error(t + name)\n}\n";
        let js = strip_types("index.ts", source).unwrap();
        let (ts_line, js_line) = (source.lines().nth(1).unwrap(), js.lines().nth(1).unwrap());
        for word in ["const t", "throw", "new Error", "t + name"] {
            assert_eq!(js_line.find(word), ts_line.find(word), "{word}: {js_line}");
        }
        // Text inside the template is untouched.
        assert!(js_line.contains("`a ${name}  b ${n}`"), "{js_line}");
    }

    #[test]
    fn code_the_transformer_adds_pushes_no_line_down() {
        // A lowered enum and namespace print more lines than they were, and a
        // closing brace may have no mapping: the throw stays on its own line.
        let source = "enum Level { Low = 1, High = 2 }\nnamespace N { export const x = 1 }\nexport function processEvent(event: any): any {\n    if (event.event === 'throw') {\n        throw new Error('line 5')\n    }\n    return { ...event, level: Level.High, x: N.x }\n}\n";
        let js = strip_types("index.ts", source).unwrap();
        let lines: Vec<&str> = js.lines().collect();
        assert_eq!(
            lines[4].trim_start(),
            "throw new Error(\"line 5\");",
            "{js}"
        );
        assert_eq!(
            lines[4].find("throw"),
            source.lines().nth(4).unwrap().find("throw"),
            "{js}"
        );
        assert!(lines[6].trim_start().starts_with("return {"), "{js}");
        // After a hashbang, code the transformer made stays off the hashbang's line.
        let js = strip_types(
            "index.ts",
            "#!/usr/bin/env node\nimport A = Foo.Bar;\nA.go()\n",
        )
        .unwrap();
        assert_eq!(js.lines().next(), Some("#!/usr/bin/env node"), "{js}");
        assert!(js.contains("A.go()"), "{js}");
    }

    #[test]
    fn literals_keep_their_text_when_the_tokens_around_them_move() {
        let source = "const a: number = 1; const s: string = `x ${ \"a  b\" + (a as any).y }  z` + '  c' + /d  e/.source; (s as any).go()\n";
        let js = strip_types("index.ts", source).unwrap();
        let line = js.lines().next().unwrap();
        for literal in ["\"a  b\"", "\"  c\"", "/d  e/"] {
            assert!(line.contains(literal), "{literal}: {line}");
        }
        // The template is left as printed, `${…}` and all.
        assert!(line.contains("`x ${\"a  b\" + a.y}  z`"), "{line}");
        for word in ["const s", "go()"] {
            assert_eq!(line.find(word), source.find(word), "{word}: {line}");
        }
    }
}
