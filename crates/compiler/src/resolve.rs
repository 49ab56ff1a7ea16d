//! Where a `require`d module lives: Node built-ins (provided or refused),
//! files relative to the requiring file, and npm packages in the connector's
//! `node_modules` (package.json `exports` / `main`). Resolution never leaves
//! the connector directory.

use std::path::{Path, PathBuf};

/// Node built-in modules the connector world provides (see guest-sdk world.js).
pub const PROVIDED_BUILTINS: [&str; 3] = ["buffer", "crypto", "url"];

/// npm packages PostHog's plugin server gave every plugin without an install,
/// which the world provides in their place (world.js): a copy in the
/// connector's `node_modules` is not bundled (`node-fetch` would need Node's
/// `stream` and `http`).
pub const PROVIDED_PACKAGES: [&str; 2] = ["node-fetch", "@posthog/plugin-scaffold"];

/// Node built-in modules, none of which a connector can reach except the provided ones.
const NODE_BUILTINS: [&str; 44] = [
    "assert",
    "async_hooks",
    "buffer",
    "child_process",
    "cluster",
    "console",
    "constants",
    "crypto",
    "dgram",
    "diagnostics_channel",
    "dns",
    "domain",
    "events",
    "fs",
    "http",
    "http2",
    "https",
    "inspector",
    "module",
    "net",
    "os",
    "path",
    "perf_hooks",
    "process",
    "punycode",
    "querystring",
    "readline",
    "repl",
    "stream",
    "string_decoder",
    "sys",
    "timers",
    "tls",
    "trace_events",
    "tty",
    "url",
    "util",
    "v8",
    "vm",
    "wasi",
    "worker_threads",
    "zlib",
    "test",
    "sqlite",
];

/// What a specifier refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A built-in the world provides; resolved at run time.
    Provided,
    /// A file to bundle.
    File(PathBuf),
}

/// Resolves `specifier` required from the file `from`, inside `root`.
pub fn resolve(root: &Path, from: &Path, specifier: &str) -> Result<Target, String> {
    if PROVIDED_PACKAGES.contains(&specifier) {
        return Ok(Target::Provided);
    }
    let bare = specifier.strip_prefix("node:").unwrap_or(specifier);
    let top = bare.split('/').next().unwrap_or(bare);
    if NODE_BUILTINS.contains(&top) || specifier.starts_with("node:") {
        return if PROVIDED_BUILTINS.contains(&bare) {
            Ok(Target::Provided)
        } else {
            Err(format!(
                "Node's built-in module \"{bare}\" is not available to connectors"
            ))
        };
    }
    let base = from.parent().unwrap_or(root);
    let found = if specifier.starts_with("./")
        || specifier.starts_with("../")
        || specifier.starts_with('/')
    {
        if specifier.starts_with('/') {
            return Err(format!("absolute import \"{specifier}\" is not allowed"));
        }
        file_or_directory(&base.join(specifier))
    } else {
        package(root, base, specifier)
    };
    let path = found.ok_or_else(|| {
        if specifier.starts_with('.') {
            format!("cannot find module \"{specifier}\"")
        } else {
            format!("cannot find module \"{specifier}\" (install npm packages into the connector's node_modules)")
        }
    })?;
    let canonical = path
        .canonicalize()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    if !canonical.starts_with(&root) {
        return Err(format!(
            "module \"{specifier}\" resolves outside the connector directory"
        ));
    }
    Ok(Target::File(canonical))
}

const EXTENSIONS: [&str; 6] = ["js", "cjs", "mjs", "ts", "mts", "json"];

fn file(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    EXTENSIONS
        .iter()
        .map(|ext| PathBuf::from(format!("{}.{ext}", path.display())))
        .find(|p| p.is_file())
}

fn file_or_directory(path: &Path) -> Option<PathBuf> {
    file(path).or_else(|| {
        if path.is_dir() {
            package_entry(path).or_else(|| file(&path.join("index")))
        } else {
            None
        }
    })
}

/// The entry file a package.json names: `exports` (string, `"."`, or
/// conditions, preferring `require`, `node`, `default`, `import`), then `main`.
fn package_entry(dir: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(dir.join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    fn condition(value: &serde_json::Value) -> Option<&str> {
        match value {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Object(map) => ["require", "node", "default", "import"]
                .iter()
                .find_map(|key| map.get(*key).and_then(condition)),
            _ => None,
        }
    }
    let exported = manifest.get("exports").and_then(|exports| match exports {
        serde_json::Value::Object(map) if map.contains_key(".") => condition(&map["."]),
        other => condition(other),
    });
    exported
        .and_then(|entry| file(&dir.join(entry)))
        .or_else(|| {
            manifest
                .get("main")
                .and_then(|m| m.as_str())
                .and_then(|main| file_or_directory(&dir.join(main)))
        })
}

/// `name` or `name/sub/path` (or `@scope/name/...`) from the nearest `node_modules` up to `root`.
fn package(root: &Path, mut base: &Path, specifier: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = specifier.split('/').collect();
    let name_len = if specifier.starts_with('@') { 2 } else { 1 };
    if parts.len() < name_len {
        return None;
    }
    let name = parts[..name_len].join("/");
    let sub = parts[name_len..].join("/");
    loop {
        let dir = base.join("node_modules").join(&name);
        if dir.is_dir() {
            return if sub.is_empty() {
                file_or_directory(&dir)
            } else {
                file_or_directory(&dir.join(&sub))
            };
        }
        if base == root {
            return None;
        }
        base = base.parent()?;
    }
}
