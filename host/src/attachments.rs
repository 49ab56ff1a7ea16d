//! Attachment config values as a chain file or fixture gives them — a file
//! path relative to that file, or an inline `{content_type, file_name,
//! contents}` object — turned into what the guest builds `meta.attachments`
//! from: `{content_type, file_name, contents_base64}`.

use anyhow::{Context, bail};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::path::Path;

/// Largest attachment file accepted.
pub const MAX_ATTACHMENT: u64 = 4 << 20;

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => "application/json",
        Some("csv") => "text/csv",
        Some("txt") => "text/plain",
        Some("html" | "htm") => "text/html",
        Some("xml") => "application/xml",
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("mmdb") => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

/// Resolves every attachment value, paths relative to `base`.
pub fn load(values: &Map<String, Value>, base: &Path) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for (key, value) in values {
        let loaded = match value {
            Value::String(relative) => {
                let path = base.join(relative);
                let size = std::fs::metadata(&path)
                    .with_context(|| format!("attachment \"{key}\": {}", path.display()))?
                    .len();
                if size > MAX_ATTACHMENT {
                    bail!(
                        "attachment \"{key}\": {} is {size} bytes, over the {MAX_ATTACHMENT}-byte limit",
                        path.display()
                    );
                }
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("attachment \"{key}\": {}", path.display()))?;
                json!({
                    "content_type": content_type(&path),
                    "file_name": path.file_name().map_or(relative.clone(), |n| n.to_string_lossy().into_owned()),
                    "contents_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
                })
            }
            Value::Object(inline) => Value::Object(inline.clone()),
            other => bail!("attachment \"{key}\": expected a file path or an object, got {other}"),
        };
        out.insert(key.clone(), loaded);
    }
    Ok(out)
}
