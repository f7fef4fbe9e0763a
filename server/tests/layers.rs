//! The server's layers point one way (see the module docs of `server/src/lib.rs`): no module imports
//! from a layer above its own. The imports that still run upward are listed in `UPWARD_TODAY`, to be
//! taken out one by one: a new upward import fails this test, and so does a listed one that is gone
//! (take it off the list), so the list only ever shrinks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A module's layer, by the longest path prefix that names it; higher layers may use lower ones.
const LAYERS: &[(&str, u8, &str)] = &[
    // Used by every layer, and using nothing but each other.
    ("clock", 0, "base"),
    ("configuration", 0, "base"),
    ("cli", 0, "base"),
    ("error", 0, "base"),
    ("telemetry", 0, "base"),
    ("lib", 0, "base"),
    ("db", 1, "db"),
    ("store", 2, "store"),
    ("auth", 3, "domain"),
    ("escalation", 3, "domain"),
    ("notify", 3, "domain"),
    ("live", 3, "domain"),
    ("shared_boards", 3, "domain"),
    ("import", 3, "domain"),
    ("escalation/scheduler", 4, "jobs"),
    ("notify/deliverer", 4, "jobs"),
    ("routes", 4, "http"),
    ("openapi", 4, "http"),
    ("state", 4, "http"),
    ("startup", 4, "http"),
    ("admin", 4, "http"),
    ("demo", 4, "http"),
    ("main", 4, "http"),
];

/// Imports that run up a layer today (`from -> to`, modules as paths under `server/src`).
const UPWARD_TODAY: &[&str] = &[
    "auth -> state",
    "db -> escalation",
    "db -> escalation/scheduler",
    "db -> live",
    "db -> notify",
    "db -> store",
    "shared_boards -> state",
    "store/audit -> notify",
    "store/audit -> state",
    "store/board -> auth",
    "store/ping_group -> auth",
    "store/ping_group -> escalation",
    "store/pings -> auth",
    "store/pings -> escalation",
    "store/sessions -> auth",
    "store/sessions -> escalation",
];

fn layer_of(module: &str) -> (u8, &'static str) {
    LAYERS
        .iter()
        .filter(|(prefix, _, _)| module == *prefix || module.starts_with(&format!("{prefix}/")))
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|(_, rank, name)| (*rank, *name))
        .unwrap_or_else(|| panic!("`{module}` has no layer: add it to LAYERS in server/tests/layers.rs"))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read server/src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// `server/src/escalation/mod.rs` is `escalation`, `server/src/store/pings.rs` is `store/pings`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src").with_extension("");
    let module = relative.to_string_lossy().replace('\\', "/");
    module.strip_suffix("/mod").map(str::to_string).unwrap_or(module)
}

/// The modules a file names through `crate::`: `crate::store::pings::x` is `store/pings`, and
/// `crate::{auth::AuthUser, error::ApiError}` is `auth/AuthUser` and `error/ApiError` (only the
/// prefix matters for the layer); items of the crate's root (`crate::Timestamp`) are `lib`. Comment
/// lines are skipped.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let mut depth = 1;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 || (depth == 1 && c == ',') {
                        found.insert(path_of(item.trim()));
                        item.clear();
                        if depth == 0 {
                            break;
                        }
                    } else {
                        item.push(c);
                    }
                }
            }
            None => {
                found.insert(path_of(rest));
            }
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

/// The first two segments of `a::b::c...` as `a/b`, stopping at anything that is not a name.
fn path_of(text: &str) -> String {
    let segments: Vec<&str> = text
        .split("::")
        .take(2)
        .map(|s| s.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or(""))
        .take_while(|s| !s.is_empty())
        .collect();
    match segments.first() {
        Some(first) if first.starts_with(char::is_uppercase) => "lib".into(),
        _ => segments.join("/"),
    }
}

#[test]
fn no_import_runs_up_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut upward = BTreeSet::new();
    for file in &files {
        let from = module_of(&src, file);
        let (from_rank, _) = layer_of(&from);
        let text = std::fs::read_to_string(file).expect("read a source file");
        for to in imports(&text) {
            let (to_rank, _) = layer_of(&to);
            if to_rank > from_rank {
                // Name the target by the module file it lives in, not the item.
                let target = LAYERS
                    .iter()
                    .filter(|(p, _, _)| to == *p || to.starts_with(&format!("{p}/")))
                    .max_by_key(|(p, _, _)| p.len())
                    .map(|(p, _, _)| p.to_string())
                    .unwrap_or(to.clone());
                upward.insert(format!("{from} -> {target}"));
            }
        }
    }
    let allowed: BTreeSet<String> = UPWARD_TODAY.iter().map(|s| s.to_string()).collect();
    let new: Vec<&String> = upward.difference(&allowed).collect();
    let gone: Vec<&String> = allowed.difference(&upward).collect();
    assert!(
        new.is_empty(),
        "imports that run up a layer (move the code down, or the caller up; layers in server/src/lib.rs): {new:#?}"
    );
    assert!(gone.is_empty(), "these upward imports are gone: take them off UPWARD_TODAY: {gone:#?}");
}

#[test]
fn the_import_reader_finds_grouped_and_nested_paths() {
    let text = "use crate::{auth::AuthUser, error::ApiError};\n\
                use crate::{\n    db::{WriteTx, Db},\n    store,\n};\n\
                use crate::store::pings;\n\
                // crate::routes in a comment does not count\n\
                let x = crate::escalation::scheduler::run(crate::clock::now(), crate::Timestamp::MIN);";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(
        found,
        ["auth/AuthUser", "clock/now", "db", "error/ApiError", "escalation/scheduler", "lib", "store", "store/pings"]
    );
    assert_eq!(layer_of("escalation/scheduler").1, "jobs");
    assert_eq!(layer_of("escalation/alerts").1, "domain");
    assert_eq!(layer_of("store/pings").1, "store");
}
