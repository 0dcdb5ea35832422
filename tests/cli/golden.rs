//! Golden outputs: the sha256 of every file of a fixed sequence of batches,
//! from an empty state with the embedded config. Any change of output bytes
//! fails here until it is re-recorded on purpose:
//!
//! ```text
//! DATAGEN_BLESS=1 cargo test --test cli golden
//! ```
//!
//! and the commit that does so says why the bytes changed. The digests are
//! those of x86_64 Linux (see the README's Determinism section).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::helpers::Sandbox;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/sha256sums.txt");

/// The pinned sequence: two sample dates, then one raw date at a fixed volume.
fn run_sequence(sb: &Sandbox) {
    sb.generate("sample", "2026-02-08", &[]);
    sb.generate("sample", "2026-02-09", &[]);
    sb.generate("raw", "2026-02-09", &["--encounters", "2000"]);
}

/// `sha256sum` format: `<hex>  <path>`, one file per line, sorted by path.
fn render(digests: &BTreeMap<PathBuf, String>) -> String {
    digests
        .iter()
        .map(|(path, sha)| format!("{sha}  {}\n", path.display()))
        .collect()
}

fn parse(text: &str) -> BTreeMap<PathBuf, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (sha, path) = l.split_once("  ").expect("a `<sha256>  <path>` line");
            (PathBuf::from(path), sha.to_string())
        })
        .collect()
}

#[test]
fn golden_outputs_are_byte_identical_to_the_recorded_ones() {
    let sb = Sandbox::new();
    run_sequence(&sb);
    let actual = sb.digests();

    // Every dataset and the manifest of each batch, and the state behind them.
    for batch in [
        "data/sample/2026-02-08",
        "data/sample/2026-02-09",
        "data/raw/2026-02-09",
    ] {
        for file in [
            "patients.csv",
            "encounters.csv",
            "vitals.csv",
            "labs.csv",
            "notes.jsonl",
            "_manifest.json",
        ] {
            let path = Path::new(batch).join(file);
            assert!(
                actual.contains_key(&path),
                "{} was not written",
                path.display()
            );
        }
    }

    if std::env::var_os("DATAGEN_BLESS").is_some() {
        std::fs::create_dir_all(Path::new(GOLDEN).parent().unwrap()).unwrap();
        std::fs::write(GOLDEN, render(&actual)).unwrap();
        eprintln!("golden: re-recorded {} digests in {GOLDEN}", actual.len());
        return;
    }

    let expected = parse(&std::fs::read_to_string(GOLDEN).unwrap_or_default());
    let mut differences = Vec::new();
    for path in expected
        .keys()
        .chain(actual.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        match (expected.get(path), actual.get(path)) {
            (Some(e), Some(a)) if e == a => {}
            (Some(_), Some(_)) => differences.push(format!("changed: {}", path.display())),
            (Some(_), None) => differences.push(format!("no longer written: {}", path.display())),
            (None, _) => differences.push(format!("not in the goldens: {}", path.display())),
        }
    }
    assert!(
        differences.is_empty(),
        "output bytes differ from the goldens in {GOLDEN}:\n  {}\n\
         If the change is deliberate, re-record with `DATAGEN_BLESS=1 cargo test --test cli golden` \
         and say why in the commit message.",
        differences.join("\n  ")
    );
}
