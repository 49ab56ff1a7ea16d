//! Links a connector and the modules it requires into one script.
//!
//! The main file stays a top-level script (so its top-level functions are
//! found and its lines are the author's); every other file becomes a function
//! `(module, exports, require)` declared after it, with a per-module table of
//! what its specifiers resolve to. Function declarations are hoisted, so the
//! main file's first `import` already finds them. A file that requires nothing
//! is left exactly as it is.

use crate::error::BuildError;
use crate::normalize::{self, Script, error_at};
use crate::resolve::{self, Target};
use crate::typescript;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The linked script and every file it was made from (`(name, text)`, for the source hash).
pub struct Linked {
    pub script: String,
    pub files: Vec<(String, String)>,
}

struct Module {
    name: String,
    script: Script,
    /// Source the script was made from (for error locations).
    prepared: String,
    table: BTreeMap<String, usize>,
}

/// Turns one file's text into a script: JSON as a module, TypeScript stripped, ESM rewritten.
fn prepare(name: &str, text: &str) -> Result<(Script, String), BuildError> {
    if name.ends_with(".json") {
        serde_json::from_str::<serde_json::Value>(text).map_err(|e| BuildError::Unsupported {
            file: name.into(),
            line: 1,
            column: 1,
            message: format!("invalid JSON: {e}"),
        })?;
        let script = Script {
            text: format!("module.exports = {text};"),
            requires: Vec::new(),
        };
        return Ok((script, text.to_string()));
    }
    let source = if typescript::is_typescript(name) {
        typescript::strip_types(name, text)?
    } else {
        text.to_string()
    };
    Ok((normalize::to_script(name, &source)?, source))
}

/// The npm packages `files` (relative to `root`) come from, as
/// `name@version` (the version from the package's package.json, if it has
/// one), sorted and without repeats.
pub fn npm_packages(root: &Path, files: &[(String, String)]) -> Vec<String> {
    let mut packages: Vec<String> = files
        .iter()
        .filter_map(|(name, _)| {
            let at = name.rfind("node_modules/")?;
            let rest = &name[at + "node_modules/".len()..];
            let segments = if rest.starts_with('@') { 2 } else { 1 };
            let package: Vec<&str> = rest.split('/').take(segments).collect();
            let package = package.join("/");
            let manifest = root
                .join(&name[..at])
                .join("node_modules")
                .join(&package)
                .join("package.json");
            let version = std::fs::read_to_string(manifest)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|json| json["version"].as_str().map(str::to_string));
            Some(match version {
                Some(version) => format!("{package}@{version}"),
                None => package,
            })
        })
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

fn relative_name(root: &Path, path: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    path.strip_prefix(&root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Links `main` (relative to `root`) with everything it requires.
pub fn link(root: &Path, main: &str, main_text: &str) -> Result<Linked, BuildError> {
    let (script, prepared) = prepare(main, main_text)?;
    let mut modules = vec![Module {
        name: main.to_string(),
        script,
        prepared,
        table: BTreeMap::new(),
    }];
    let mut paths: Vec<PathBuf> = vec![root.join(main)];
    let mut ids: HashMap<PathBuf, usize> = HashMap::new();
    let mut files = vec![(main.to_string(), main_text.to_string())];
    let mut next = 0;
    while next < modules.len() {
        let requires = modules[next].script.requires.clone();
        for require in requires {
            let target =
                resolve::resolve(root, &paths[next], &require.specifier).map_err(|message| {
                    let module = &modules[next];
                    error_at(&module.name, &module.prepared, require.offset, message)
                })?;
            let Target::File(path) = target else { continue };
            let id = match ids.get(&path) {
                Some(id) => *id,
                None => {
                    let name = relative_name(root, &path);
                    let text = std::fs::read_to_string(&path).map_err(|error| BuildError::Io {
                        path: path.clone(),
                        error,
                    })?;
                    let (script, prepared) = prepare(&name, &text)?;
                    files.push((name.clone(), text));
                    modules.push(Module {
                        name,
                        script,
                        prepared,
                        table: BTreeMap::new(),
                    });
                    paths.push(path.clone());
                    ids.insert(path, modules.len() - 1);
                    modules.len() - 1
                }
            };
            modules[next].table.insert(require.specifier.clone(), id);
        }
        next += 1;
    }
    if modules.len() == 1 {
        let main = modules.pop().expect("the main module");
        return Ok(Linked {
            script: main.script.text,
            files,
        });
    }
    Ok(Linked {
        script: emit(&modules),
        files,
    })
}

/// The main script followed by the module loader and the bundled modules.
fn emit(modules: &[Module]) -> String {
    let mut out = modules[0].script.text.clone();
    out.push_str("\n;function require(specifier) { return __sandpipe_load(0, specifier) }\n");
    out.push_str(
        "function __sandpipe_load(from, specifier) {\n\
         \x20 var id = __sandpipe_table(from)[specifier];\n\
         \x20 if (id === undefined) return __sandpipe_builtin_require(specifier);\n\
         \x20 var cache = __sandpipe_load.cache || (__sandpipe_load.cache = {});\n\
         \x20 if (cache[id]) return cache[id].exports;\n\
         \x20 var module = { exports: {} };\n\
         \x20 cache[id] = module;\n\
         \x20 __sandpipe_module(id).call(module.exports, module, module.exports, function (s) { return __sandpipe_load(id, s) });\n\
         \x20 return module.exports;\n\
         }\n",
    );
    out.push_str("function __sandpipe_table(id) {\n  switch (id) {\n");
    for (id, module) in modules.iter().enumerate() {
        let table = serde_json::to_string(&module.table).expect("a table serialises");
        out.push_str(&format!("    case {id}: return {table};\n"));
    }
    out.push_str("  }\n}\n");
    out.push_str("function __sandpipe_module(id) {\n  switch (id) {\n");
    for (id, module) in modules.iter().enumerate().skip(1) {
        out.push_str(&format!(
            "    case {id}: return function (module, exports, require) {{ // {}\n{}\n}};\n",
            module.name, module.script.text
        ));
    }
    out.push_str("  }\n}\n");
    out
}
