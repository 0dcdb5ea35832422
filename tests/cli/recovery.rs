//! One writer at a time across processes, and crash safety: a real process
//! killed with SIGKILL at every step of a commit, then a rerun that must give
//! exactly the bytes of an uninterrupted run.

use std::time::{Duration, Instant};

use crate::helpers::Sandbox;

const D1: &str = "2026-02-08";
const D2: &str = "2026-02-09";
const D3: &str = "2026-02-10";

fn args(date: &str) -> Vec<&str> {
    vec![
        "generate",
        "--mode",
        "sample",
        "--date",
        date,
        "--encounters",
        "300",
    ]
}

/// The bytes of an uninterrupted run of D1, D2, D3.
fn reference() -> std::collections::BTreeMap<std::path::PathBuf, String> {
    let sb = Sandbox::new();
    for d in [D1, D2, D3] {
        sb.ok(&args(d));
    }
    sb.digests()
}

#[test]
fn a_run_killed_at_any_step_leaves_all_or_nothing_and_the_rerun_matches() {
    let expected = reference();
    for point in [
        "vitals",
        "staged",
        "journaled",
        "committed",
        "published",
        "applied",
    ] {
        let sb = Sandbox::new();
        sb.ok(&args(D1));
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

#[test]
fn kills_at_arbitrary_moments_never_corrupt_state() {
    let expected = reference();
    let sb = Sandbox::new();
    sb.ok(&args(D1));
    // A larger batch so there is time to land in the middle of writing.
    for delay_ms in [5u64, 15, 30, 60, 120] {
        let mut child = sb.command().args(args(D2)).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        let d2 = sb.batch("sample", D2);
        if d2.exists() {
            sb.ok(&["validate", d2.to_str().unwrap()]);
        }
    }
    sb.ok(&args(D2));
    sb.ok(&args(D3));
    assert_eq!(sb.digests(), expected);
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
        D3,
        "--lock-timeout",
        "1",
    ]);
    assert!(err.contains("locked by another datagen process"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(sb.tree(), before);

    // The other mode is not blocked.
    sb.ok(&[
        "generate",
        "--mode",
        "raw",
        "--date",
        D1,
        "--encounters",
        "20",
    ]);

    // A patient writer waits, then proceeds once the holder is gone (here:
    // killed, so it also recovers the holder's half-done batch).
    let waiter = sb
        .command()
        .args(args(D3))
        .arg("--lock-timeout")
        .arg("60")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(sb.batch("sample", D3).exists());
    assert!(
        !sb.batch("sample", D2).exists(),
        "the killed holder's uncommitted batch was rolled back"
    );
}
