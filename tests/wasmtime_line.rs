//! The sandbox is wasmtime, and only a supported wasmtime gets security fixes:
//! the tree holds exactly one wasmtime, on the LTS line SECURITY.md names
//! ("Supported versions"), in the workspace and in the fuzz targets alike.
//! Moving to the next LTS line means changing [`LTS_LINE`] with SECURITY.md.

mod common;

use common::root;
use std::collections::{BTreeMap, BTreeSet};

/// The wasmtime LTS line sandpipe runs on (supported until August 2028).
const LTS_LINE: &str = "48.0.";

/// Every `wasmtime` / `wasmtime-*` package in a Cargo.lock, with its versions.
fn wasmtime_packages(lock: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|line| {
                line.strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix(" = \""))
                    .and_then(|rest| rest.strip_suffix('"'))
                    .map(str::to_string)
            })
        };
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            continue;
        };
        if name == "wasmtime" || name.starts_with("wasmtime-") {
            packages.entry(name).or_default().insert(version);
        }
    }
    packages
}

#[test]
fn one_wasmtime_on_the_lts_line() {
    for lock in ["Cargo.lock", "fuzz/Cargo.lock"] {
        let text = std::fs::read_to_string(root().join(lock)).unwrap();
        let packages = wasmtime_packages(&text);
        let wasmtime = packages
            .get("wasmtime")
            .unwrap_or_else(|| panic!("{lock} has no wasmtime"));
        assert_eq!(
            wasmtime.len(),
            1,
            "{lock} holds two wasmtimes: {wasmtime:?}"
        );
        let version = wasmtime.first().unwrap();
        assert!(
            version.starts_with(LTS_LINE),
            "{lock}: wasmtime {version} is not on the {LTS_LINE}x LTS line"
        );
        for (name, versions) in &packages {
            assert_eq!(
                versions.iter().collect::<Vec<_>>(),
                [version],
                "{lock}: {name} is not on wasmtime {version}"
            );
        }
    }
}

#[test]
fn the_lock_reader_sees_a_second_wasmtime() {
    let lock = "[[package]]\nname = \"wasmtime\"\nversion = \"48.0.8\"\n\n\
                [[package]]\nname = \"wasmtime\"\nversion = \"42.0.2\"\n\n\
                [[package]]\nname = \"wasmtime-wasi\"\nversion = \"48.0.8\"\n";
    let packages = wasmtime_packages(lock);
    assert_eq!(
        packages["wasmtime"].iter().collect::<Vec<_>>(),
        ["42.0.2", "48.0.8"]
    );
    assert_eq!(packages["wasmtime-wasi"].len(), 1);
}
