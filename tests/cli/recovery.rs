//! One writer at a time across processes, and crash safety: a real process
//! killed with SIGKILL at every step of a commit, then a rerun that must give
//! exactly the bytes of an uninterrupted run.

use std::time::{Duration, Instant};

use crate::helpers::{CRASH_POINTS, Sandbox, read_csv};

const D1: &str = "2026-02-08";
const D2: &str = "2026-02-09";
const D3: &str = "2026-02-10";

fn args(date: &str) -> Vec<&str> {
    sized(date, "300")
}

/// A sample generation of `date` with exactly `encounters` encounters.
fn sized<'a>(date: &'a str, encounters: &'a str) -> Vec<&'a str> {
    vec![
        "generate",
        "--mode",
        "sample",
        "--date",
        date,
        "--encounters",
        encounters,
    ]
}

/// The bytes of an uninterrupted run of D1, D2, D3.
fn reference() -> std::collections::BTreeMap<std::path::PathBuf, String> {
    let sb = Sandbox::new();
    for d in [D1, D2, D3] {
        sb.ok(&args(d));
    }
    // D2 finishes stays carried over from D1: the rerun must reproduce them.
    let updates = read_csv(&sb.batch("sample", D2).join("encounters.csv"))
        .rows
        .iter()
        .filter(|e| e["admit_time"].as_str() < D2 && e["status"] == "finished")
        .count();
    assert!(updates > 0, "no carried stay finished on {D2}");
    sb.digests()
}

#[test]
fn a_run_killed_at_any_step_leaves_all_or_nothing_and_the_rerun_matches() {
    let expected = reference();
    for point in CRASH_POINTS {
        let sb = Sandbox::new();
        sb.ok(&args(D1));
        // D2 starts with stays open in the census: the commit carries them.
        let census = read_csv(&sb.state("sample").join("census.csv"));
        assert!(census.rows.len() > 5, "{} open stays", census.rows.len());
        let before = sb.tree();
        let mut child = sb.spawn_paused(point, &args(D2));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // What a reader sees right after the crash: D2 is either absent or complete.
        let d2 = sb.batch("sample", D2);
        if d2.exists() {
            assert!(
                ["published", "applied"].contains(&point),
                "{point}: batch visible before the commit point"
            );
            sb.ok(&["validate", d2.to_str().unwrap()]);
        } else {
            assert!(
                ["vitals", "staged", "journaled", "committed"].contains(&point),
                "{point}: committed batch not visible"
            );
        }
        for (path, content) in &before {
            if path.starts_with("state")
                && content.is_some()
                && ["vitals", "staged"].contains(&point)
            {
                assert_eq!(
                    sb.tree().get(path),
                    Some(content),
                    "{point}: {} changed",
                    path.display()
                );
            }
        }

        // The next run recovers (logging it) and the sequence completes as if
        // nothing had happened.
        let out = sb.command().args(args(D2)).output().unwrap();
        assert!(
            out.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("recovery:"),
            "{point}: recovery not logged: {stderr}"
        );
        sb.ok(&args(D3));
        assert_eq!(
            sb.digests(),
            expected,
            "{point}: bytes differ from an uninterrupted run"
        );
        assert!(
            !sb.path().join("data/.staging").exists(),
            "{point}: staging left behind"
        );
    }
}

/// Where a SIGKILL landed, read off what it left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Landed {
    /// Before the staging directory existed (start-up, state loading).
    BeforeGeneration,
    /// Files were being written into staging; no commit marker yet.
    InGeneration,
    /// At or after the commit point.
    AfterCommit,
}

fn landed(sb: &Sandbox, date: &str) -> Landed {
    if sb.state("sample").join(".txn/COMMIT").exists() || sb.batch("sample", date).exists() {
        Landed::AfterCommit
    } else if sb.path().join("data/.staging/sample").join(date).exists() {
        Landed::InGeneration
    } else {
        Landed::BeforeGeneration
    }
}

#[test]
fn kills_at_arbitrary_moments_never_corrupt_state() {
    // A batch big enough that generation dominates the run, and kill times
    // spread over the duration of the same run measured uninterrupted.
    let big = |date| sized(date, "6000");
    let expected = {
        let sb = Sandbox::new();
        sb.ok(&big(D1));
        let started = Instant::now();
        sb.ok(&big(D2));
        let duration = started.elapsed();
        sb.ok(&big(D3));
        (sb.digests(), duration)
    };
    let (expected, duration) = expected;

    let sb = Sandbox::new();
    sb.ok(&big(D1));
    let mut landings = Vec::new();
    for share in [0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85] {
        let mut child = sb.command().args(big(D2)).spawn().unwrap();
        std::thread::sleep(duration.mul_f64(share));
        let _ = child.kill();
        child.wait().unwrap();
        let at = landed(&sb, D2);
        landings.push((share, at));
        // A visible batch is always a whole one.
        let d2 = sb.batch("sample", D2);
        if d2.exists() {
            sb.ok(&["validate", d2.to_str().unwrap()]);
        }
        if at == Landed::AfterCommit {
            // The date is done; the remaining kills need an uncommitted run.
            break;
        }
    }
    let inside = landings
        .iter()
        .filter(|(_, at)| *at == Landed::InGeneration)
        .count();
    eprintln!("run of {duration:?}: kills landed {landings:?}");
    assert!(
        inside * 2 >= landings.len() && inside >= 3,
        "only {inside} of {} kills landed inside generation: {landings:?}",
        landings.len()
    );
    sb.ok(&big(D2));
    sb.ok(&big(D3));
    assert_eq!(
        sb.digests(),
        expected,
        "bytes differ from an uninterrupted run"
    );
}

#[test]
fn a_second_writer_waits_for_the_lock_or_fails_clearly() {
    let sb = Sandbox::new();
    sb.ok(&args(D1));
    let mut holder = sb.spawn_paused("staged", &args(D2));

    // Same mode: a short timeout gives up with a clear message, having written nothing.
    let before = sb.tree();
    let started = Instant::now();
    let err = sb.fails(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        D2,
        "--lock-timeout",
        "1",
    ]);
    assert!(err.contains("locked by another datagen process"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(sb.tree(), before);

    // The other mode is not blocked.
    const OTHER_MODE: [&str; 7] = [
        "generate",
        "--mode",
        "raw",
        "--date",
        D1,
        "--encounters",
        "20",
    ];
    sb.ok(&OTHER_MODE);

    // A patient writer waits, then proceeds once the holder is gone (here:
    // killed, so it also recovers the holder's half-done batch).
    let waiter = sb
        .command()
        .args(sized(D2, "200"))
        .arg("--lock-timeout")
        .arg("60")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success());
    // The killed holder's uncommitted D2 (300 encounters) was rolled back:
    // the sample mode holds exactly the waiter's D2 (200).
    let alone = Sandbox::new();
    alone.ok(&args(D1));
    alone.ok(&sized(D2, "200"));
    alone.ok(&OTHER_MODE);
    assert_eq!(sb.digests(), alone.digests());
}
