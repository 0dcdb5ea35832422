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
