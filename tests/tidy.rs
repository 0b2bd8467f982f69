//! The architecture's invariants, checked on the source (as rust-analyzer's
//! tidy test does): what ARCHITECTURE.md promises about dependencies, IO and
//! file size cannot drift without this failing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n == "tests.rs" || n.to_string_lossy().ends_with("_tests.rs"))
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// The `[dependencies]` (not dev-dependencies) of a crate's manifest.
fn dependencies(manifest: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(manifest)?;
    let mut deps = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]"
                || line.starts_with("[target.") && line.ends_with(".dependencies]");
            continue;
        }
        if inside && let Some((name, _)) = line.split_once('=') {
            let name = name.trim().trim_end_matches(".workspace").to_owned();
            if !name.is_empty() && !name.starts_with('#') {
                deps.push(name);
            }
        }
    }
    Ok(deps)
}

#[test]
fn schema_has_no_io_and_no_propsync_dependency() -> Result<()> {
    let root = root();
    let deps = dependencies(&root.join("schema/Cargo.toml"))?;
    for dep in &deps {
        ensure!(
            !dep.starts_with("propsync"),
            "schema depends on {dep}: it is the bottom of the graph"
        );
        ensure!(
            ![
                "tokio",
                "rusqlite",
                "axum",
                "reqwest",
                "tokio-tungstenite",
                "hyper"
            ]
            .contains(&dep.as_str()),
            "schema depends on {dep}, an IO crate: schema is rules and types only"
        );
    }
    let mut files = Vec::new();
    rust_files(&root.join("schema/src"), &mut files)?;
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let text = std::fs::read_to_string(f)?;
        for io in [
            "std::fs",
            "std::net",
            "std::process",
            "tokio::",
            "File::open",
        ] {
            ensure!(
                !text.contains(io),
                "{} names {io}: schema does no IO",
                f.display()
            );
        }
    }
    Ok(())
}

#[test]
fn the_device_and_the_relay_never_depend_on_each_other() -> Result<()> {
    let root = root();
    for (krate, forbidden) in [
        (
            "client-core/Cargo.toml",
            ["propsync-server", "propsync-relay-core"],
        ),
        ("server/Cargo.toml", ["propsync-client", "propsync-web"]),
        (
            "server/core/Cargo.toml",
            ["propsync-client", "propsync-server"],
        ),
    ] {
        let deps = dependencies(&root.join(krate))?;
        for f in forbidden {
            ensure!(
                !deps.iter().any(|d| d == f),
                "{krate} depends on {f} (only client-core's tests may use the relay's core)"
            );
        }
    }
    Ok(())
}

/// Files outside the store that still name the SQLite module, and how many
/// times: the storage interface (ARCHITECTURE.md, "One storage interface")
/// is not yet the only way in. The list may only shrink: a new file naming
/// it, or more names in a listed file, fails; a file that no longer does
/// must leave the list.
const STILL_NAMING_SQLITE: &[(&str, usize)] = &[
    ("server/src/admin.rs", 19),
    ("server/src/api.rs", 17),
    ("server/src/auth.rs", 1),
    ("server/src/blobs.rs", 2),
    ("server/src/dashboard.rs", 7),
    ("server/src/dashboard/print.rs", 2),
    ("server/src/demo.rs", 3),
    ("server/src/enrol.rs", 6),
    ("server/src/fees/ledger.rs", 1),
    ("server/src/hub.rs", 2),
    ("server/src/hub/inboxes.rs", 1),
    ("server/src/ops.rs", 4),
    ("server/src/property.rs", 6),
    ("server/src/property/documents.rs", 1),
    ("server/src/reports/fee_collection.rs", 1),
    ("server/src/reports/http.rs", 3),
    ("server/src/session.rs", 1),
    ("server/src/settings.rs", 3),
    ("server/src/state.rs", 17),
];

#[test]
fn only_the_store_names_sqlite_and_the_list_of_exceptions_only_shrinks() -> Result<()> {
    let root = root();
    let mut files = Vec::new();
    rust_files(&root.join("server/src"), &mut files)?;
    let allowed: BTreeMap<&str, usize> = STILL_NAMING_SQLITE.iter().copied().collect();
    let mut seen = BTreeMap::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let rel = f.strip_prefix(&root)?.to_string_lossy().into_owned();
        if rel.starts_with("server/src/store") || rel.starts_with("server/src/fuzzing") {
            continue;
        }
        let text = std::fs::read_to_string(f)?;
        let n = text.matches("records::").count() + text.matches("rusqlite").count();
        if n == 0 {
            continue;
        }
        let limit = allowed.get(rel.as_str()).copied().unwrap_or(0);
        ensure!(
            n <= limit,
            "{rel} names the SQLite module {n} times (allowed {limit}): go through the store's interface"
        );
        seen.insert(rel, n);
    }
    for (file, n) in STILL_NAMING_SQLITE {
        ensure!(
            seen.get(*file) == Some(n),
            "{file} now names the SQLite module {} times, not {n}: lower its entry (or remove it)",
            seen.get(*file).copied().unwrap_or(0)
        );
    }
    Ok(())
}

#[test]
fn no_source_file_is_over_800_lines_without_a_reason_at_its_top() -> Result<()> {
    let root = root();
    let mut files = Vec::new();
    for dir in [
        "schema/src",
        "client-core/src",
        "client-core/web/src",
        "server/src",
        "server/core/src",
    ] {
        rust_files(&root.join(dir), &mut files)?;
    }
    let mut long = Vec::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let text = std::fs::read_to_string(f)?;
        let lines = text.lines().count();
        if lines > 800
            && !text
                .lines()
                .take(3)
                .any(|l| l.starts_with("// Long file: "))
        {
            long.push(format!(
                "{} ({lines} lines)",
                f.strip_prefix(&root)?.display()
            ));
        }
    }
    ensure!(
        long.is_empty(),
        "split these, or say why not in a `// Long file: …` line at the top: {long:?}"
    );
    Ok(())
}
