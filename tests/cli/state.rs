//! State and data that can never disagree: a state that is lost, older than
//! the data, missing its ledger, or missing one of its batches is refused
//! with the way out and nothing written; `state rebuild` then mends it
//! without ever reusing an ID.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::helpers::Sandbox;

const DATES: [&str; 4] = ["2026-02-08", "2026-02-09", "2026-02-10", "2026-02-11"];

const VOLUMES: [&str; 4] = ["--encounters", "300", "--new-patients", "120"];

fn generate(sb: &Sandbox, date: &str) {
    sb.generate("raw", date, &VOLUMES);
}

fn run_args(date: &str) -> Vec<&str> {
    let mut args = vec!["generate", "--mode", "raw", "--date", date];
    args.extend(VOLUMES);
    args
}

/// A sandbox whose second day was killed right after its commit point.
fn killed_after_the_commit_point() -> Sandbox {
    let sb = Sandbox::new();
    generate(&sb, DATES[0]);
    let mut child = sb.spawn_paused("committed", &run_args(DATES[1]));
    child.kill().unwrap();
    child.wait().unwrap();
    sb
}

/// The bytes of an uninterrupted run of the first `n` dates.
fn reference(n: usize) -> BTreeMap<PathBuf, String> {
    let sb = Sandbox::new();
    for date in &DATES[..n] {
        generate(&sb, date);
    }
    sb.digests()
}

/// A run of `date` is refused with the mismatch and the way out, and
/// nothing under data/ or state/ changes; `state check` says the same.
fn assert_refused(sb: &Sandbox, date: &str, mismatch: &str) {
    let before = sb.tree();
    let out = sb.run(&run_args(date));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(mismatch), "{err}");
    assert!(err.contains("datagen state rebuild --mode raw"), "{err}");
    assert!(err.contains("Nothing was written"), "{err}");
    assert_eq!(sb.tree(), before, "a refused run wrote something");
    let check = sb.run(&["state", "check", "--mode", "raw"]);
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(sb.tree(), before, "state check wrote something");
}

fn rebuild(sb: &Sandbox) -> String {
    let out = sb.ok(&["state", "rebuild", "--mode", "raw"]);
    sb.ok(&["state", "check", "--mode", "raw"]);
    out
}

#[test]
fn a_state_moved_away_is_refused_then_rebuilt_to_the_same_bytes() {
    let expected = reference(3);
    let sb = Sandbox::new();
    generate(&sb, DATES[0]);
    generate(&sb, DATES[1]);
    std::fs::rename(sb.state("raw"), sb.path().join("elsewhere")).unwrap();
    assert_refused(&sb, DATES[2], "does not record (2026-02-08, 2026-02-09)");

    let out = rebuild(&sb);
    assert!(
        out.contains("by replaying 2 days (0 missing batches generated again)"),
        "{out}"
    );
    generate(&sb, DATES[2]);
    let mut actual = sb.digests();
    actual.retain(|p, _| !p.starts_with("elsewhere"));
    assert_eq!(
        actual, expected,
        "the rebuilt run differs from an uninterrupted one"
    );
}

#[test]
fn an_older_state_backup_is_refused_then_rebuilt_to_the_same_bytes() {
    let expected = reference(3);
    let sb = Sandbox::new();
    generate(&sb, DATES[0]);
    let backup = sb.path().join("backup");
    std::fs::create_dir(&backup).unwrap();
    for file in [
        "patients_master.csv",
        "encounter_id_counter.txt",
        "ledger.csv",
    ] {
        std::fs::copy(sb.state("raw").join(file), backup.join(file)).unwrap();
    }
    generate(&sb, DATES[1]);
    // Restore the backup over the state, keeping the data.
    for file in [
        "patients_master.csv",
        "encounter_id_counter.txt",
        "ledger.csv",
    ] {
        std::fs::copy(backup.join(file), sb.state("raw").join(file)).unwrap();
    }
    assert_refused(&sb, DATES[2], "does not record (2026-02-09)");
    rebuild(&sb);
    generate(&sb, DATES[2]);
    let mut actual = sb.digests();
    actual.retain(|p, _| !p.starts_with("backup"));
    assert_eq!(actual, expected);
}

#[test]
fn a_deleted_ledger_is_refused_then_rebuilt_to_the_same_bytes() {
    let expected = reference(3);
    let sb = Sandbox::new();
    generate(&sb, DATES[0]);
    generate(&sb, DATES[1]);
    std::fs::remove_file(sb.state("raw").join("ledger.csv")).unwrap();
    assert_refused(&sb, DATES[2], "does not record");
    rebuild(&sb);
    generate(&sb, DATES[2]);
    assert_eq!(sb.digests(), expected);
}

/// A batch deleted from the middle of a mode's run: the state no longer
/// agrees with the data, and the rebuild, replaying the days in order,
/// generates the missing one again into place, byte for byte, so no ID is
/// ever issued twice and the days after it still follow from it.
#[test]
fn a_deleted_batch_is_refused_then_generated_again_to_the_same_bytes() {
    let expected = reference(4);
    let sb = Sandbox::new();
    for date in &DATES[..3] {
        generate(&sb, date);
    }
    std::fs::remove_dir_all(sb.batch("raw", DATES[1])).unwrap();
    assert_refused(&sb, DATES[3], "records 2026-02-09, but");

    let out = rebuild(&sb);
    assert!(
        out.contains("by replaying 3 days (1 missing batch generated again)"),
        "{out}"
    );
    sb.ok(&["validate", sb.batch("raw", DATES[1]).to_str().unwrap()]);
    generate(&sb, DATES[3]);
    assert_eq!(sb.digests(), expected);

    // Without the ledger too, the days around the hole still place it, but
    // nothing records the volumes it was asked with (not the config's
    // here): the rebuild says so and writes nothing.
    let sb = Sandbox::new();
    for date in &DATES[..3] {
        generate(&sb, date);
    }
    std::fs::remove_dir_all(sb.batch("raw", DATES[1])).unwrap();
    std::fs::remove_file(sb.state("raw").join("ledger.csv")).unwrap();
    let before = sb.tree();
    let err = sb.fails(&["state", "rebuild", "--mode", "raw"]);
    assert!(
        err.contains("2026-02-10/_manifest.json cannot be reproduced")
            && err.contains(
                "the missing batch of 2026-02-09 was generated again with the config's volumes"
            ),
        "{err}"
    );
    // The way out is not the rebuild that just failed.
    assert!(
        err.contains("cannot be rebuilt") && !err.contains("run `datagen state rebuild"),
        "{err}"
    );
    assert_eq!(sb.tree(), before);
}

#[test]
fn a_rebuild_refuses_a_damaged_batch_and_writes_nothing() {
    let sb = Sandbox::new();
    generate(&sb, DATES[0]);
    generate(&sb, DATES[1]);
    std::fs::remove_dir_all(sb.state("raw")).unwrap();
    let vitals = sb.batch("raw", DATES[1]).join("vitals.csv");
    let text = std::fs::read_to_string(&vitals).unwrap();
    std::fs::write(&vitals, text.replacen(",1", ",2", 1)).unwrap();
    let before = sb.tree();
    let err = sb.fails(&["state", "rebuild", "--mode", "raw"]);
    assert!(
        err.contains("vitals.csv")
            && err.contains("sha256")
            && err.contains("not rebuilt from a damaged batch"),
        "{err}"
    );
    let mut after = sb.tree();
    // The state folder itself is created to take the lock; nothing is in it.
    after.retain(|p, _| !p.starts_with("state"));
    let mut expected = before.clone();
    expected.retain(|p, _| !p.starts_with("state"));
    assert_eq!(after, expected);
    assert!(!sb.state("raw").join("ledger.csv").exists());
}

#[test]
fn an_interrupted_commit_whose_batch_is_already_in_place_rolls_forward_or_refuses() {
    // The batch was renamed into place, and a staged copy is still there.
    let sb = killed_after_the_commit_point();
    let staged = sb.path().join("data/.staging/raw").join(DATES[1]);
    let target = sb.batch("raw", DATES[1]);
    copy_dir(&staged, &target);
    // Same manifest: the step was done; recovery finishes the commit.
    generate(&sb, DATES[2]);
    assert_eq!(sb.digests(), reference(3));

    // A different batch in the way is refused, not overwritten.
    let sb = killed_after_the_commit_point();
    copy_dir(&sb.batch("raw", DATES[0]), &sb.batch("raw", DATES[1]));
    let before = sb.tree();
    let err = sb.fails(&["generate", "--mode", "raw", "--date", DATES[2]]);
    assert!(err.contains("already holds a different batch"), "{err}");
    assert!(err.contains("datagen state rebuild --mode raw"), "{err}");
    assert_eq!(sb.tree(), before);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
