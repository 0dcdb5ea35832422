//! Parquet output (`--format parquet|both`): typed files that `validate`
//! reads back, the same bytes for any thread count, readers (DuckDB and
//! pyarrow) that agree with the types and the CSV, and the bad inputs.

use crate::helpers::{Sandbox, rewrite_in_batch};

const FROM: &str = "2026-03-01";
const TO: &str = "2026-03-03";

fn both(sb: &Sandbox, threads: &str) {
    sb.ok(&[
        "--threads",
        threads,
        "generate",
        "--mode",
        "raw",
        "--from",
        FROM,
        "--to",
        TO,
        "--format",
        "both",
    ]);
}

#[test]
fn both_formats_agree_and_parquet_bytes_are_the_same_for_any_thread_count() {
    let one = Sandbox::new();
    both(&one, "1");
    let two = Sandbox::new();
    both(&two, "2");
    let digests = one.digests();
    assert!(
        digests.keys().any(|p| p.ends_with("vitals.parquet")),
        "{digests:?}"
    );
    assert_eq!(digests, two.digests(), "1 thread and 2 differ");

    // The CSV files are those of a csv run: Parquet is written beside them.
    let csv = Sandbox::new();
    csv.ok(&["generate", "--mode", "raw", "--from", FROM, "--to", TO]);
    for (path, sha) in csv.digests() {
        if path.starts_with("data") && !path.ends_with("_manifest.json") {
            assert_eq!(digests.get(&path), Some(&sha), "{}", path.display());
        }
    }

    // validate compares every Parquet row with its text file's.
    let out = one.ok(&["validate", "--feed", "data/raw"]);
    assert!(out.contains("valid feed"), "{out}");
    let batch = one.batch("raw", "2026-03-02");
    let out = one.ok(&["validate", batch.to_str().unwrap()]);
    for name in ["patients", "encounters", "vitals", "labs", "notes"] {
        assert!(out.contains(&format!("{name}.parquet")), "{out}");
    }

    // Readers agree: DuckDB and pyarrow read the mapped types, the
    // manifest's row counts, and the text files' values.
    if let Some(python) = crate::feed::python_with_duckdb() {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/loader/parquet_readers.py"
        );
        let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
        let has_pyarrow = std::process::Command::new(&python)
            .args(["-c", "import pyarrow"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            has_pyarrow || std::env::var_os("CI").is_none(),
            "{python} has no pyarrow: .ci/run installs it"
        );
        if has_pyarrow {
            let out = std::process::Command::new(&python)
                .args([script, batch.to_str().unwrap(), schemas])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(stdout.matches("values equal to").count(), 5, "{stdout}");
        }
    }
}

#[test]
fn a_parquet_only_feed_validates_and_a_wrong_file_is_named() {
    let sb = Sandbox::new();
    sb.ok(&[
        "generate", "--mode", "sample", "--from", FROM, "--to", TO, "--format", "parquet",
    ]);
    let batch = sb.batch("sample", "2026-03-02");
    let names: Vec<String> = std::fs::read_dir(&batch)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".parquet") || n == "_manifest.json"),
        "{names:?}"
    );
    sb.ok(&["validate", "--feed", "data/sample"]);

    // labs.parquet where vitals.parquet belongs (the manifest mended to
    // match): its columns are not the vitals schema's.
    let labs = std::fs::read(batch.join("labs.parquet")).unwrap();
    rewrite_in_batch(&batch, "vitals.parquet", &labs);
    let err = sb.fails(&["validate", batch.to_str().unwrap()]);
    assert!(err.contains("vitals.parquet: columns are [lab_id"), "{err}");
}

#[test]
fn bad_format_requests_are_refused_and_write_nothing() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "generate", "--mode", "sample", "--date", FROM, "--format", "orc",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown format \"orc\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = sb.fails(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        FROM,
        "--format",
        "parquet",
        "--defects",
        "heavy",
    ]);
    assert!(err.contains("defects spoil the text files"), "{err}");
    assert!(!sb.path().join("data").exists() || !sb.batch("sample", FROM).exists());

    sb.ok(&[
        "generate", "--mode", "sample", "--date", FROM, "--format", "parquet",
    ]);
    let before = sb.tree();
    let err = sb.fails(&[
        "generate", "--mode", "sample", "--date", FROM, "--format", "csv",
    ]);
    assert!(
        err.contains("already committed with format=parquet")
            && err.contains("asked for format=csv"),
        "{err}"
    );
    assert_eq!(sb.tree(), before);
}

#[test]
fn state_rebuild_replays_parquet_batches_and_restores_a_lost_one() {
    let sb = Sandbox::new();
    sb.ok(&[
        "generate",
        "--mode",
        "sample",
        "--from",
        FROM,
        "--to",
        "2026-03-02",
        "--format",
        "parquet",
    ]);
    sb.ok(&[
        "generate", "--mode", "sample", "--date", TO, "--format", "both",
    ]);
    let before = sb.digests();
    std::fs::remove_dir_all(sb.state("sample")).unwrap();
    std::fs::remove_dir_all(sb.batch("sample", "2026-03-02")).unwrap();
    let out = sb.ok(&["state", "rebuild", "--mode", "sample"]);
    assert!(out.contains("1 missing batch generated again"), "{out}");
    assert_eq!(sb.digests(), before, "the rebuilt state or batch differs");
}
