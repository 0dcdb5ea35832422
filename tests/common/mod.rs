//! Shared by the black-box test binaries (`tests/cli`, `tests/api`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::Digest;

/// Every directory (`None`) and file (`Some(bytes)`) at or below `dir`,
/// keyed by its path relative to `base`: a before/after snapshot that shows
/// any file or directory written, changed or removed.
pub type Tree = BTreeMap<PathBuf, Option<Vec<u8>>>;

pub fn snapshot(dir: &Path, base: &Path) -> Tree {
    let mut tree = Tree::new();
    walk(dir, base, &mut tree);
    tree
}

fn walk(dir: &Path, base: &Path, out: &mut Tree) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    out.insert(dir.strip_prefix(base).unwrap().to_path_buf(), None);
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, base, out);
        } else {
            out.insert(
                path.strip_prefix(base).unwrap().to_path_buf(),
                Some(std::fs::read(&path).unwrap()),
            );
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The Python that can `import <module>`: `DATAGEN_TEST_PYTHON` (which
/// `.ci/run` sets, with every package the tests use), else `python3`.
/// Without one the test says it is skipped, except under CI, where it fails.
pub fn python_with(module: &str, test: &str) -> Option<String> {
    let python = std::env::var("DATAGEN_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let found = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{python} cannot import {module}: .ci/run installs it and sets DATAGEN_TEST_PYTHON"
    );
    eprintln!(
        "SKIPPED {test}: {python} cannot import {module} (pip install it, or set DATAGEN_TEST_PYTHON)"
    );
    None
}
