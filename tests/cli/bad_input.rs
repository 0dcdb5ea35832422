//! Every bad input gets a non-zero exit, one clear message, and leaves data/
//! and state/ exactly as they were.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::helpers::{BIN, Sandbox, is_root};

/// A sandbox with one committed batch, so there is something to lose.
fn with_history() -> Sandbox {
    let sb = Sandbox::new();
    sb.generate("sample", "2026-02-08", &[]);
    sb
}

fn assert_untouched(sb: &Sandbox, before: &crate::common::Tree) {
    assert_eq!(&sb.tree(), before, "data/ or state/ changed");
}

#[test]
fn invalid_dates_are_refused() {
    let sb = with_history();
    let before = sb.tree();
    for (date, why) in [
        ("2026-02-30", "no such calendar date"),
        ("20260208", "YYYY-MM-DD"),
        ("../x", "YYYY-MM-DD"),
        ("2026-02-08/../../etc", "YYYY-MM-DD"),
    ] {
        let err = sb.fails(&["generate", "--mode", "sample", "--date", date]);
        assert!(err.contains(date) && err.contains(why), "{date}: {err}");
        assert_eq!(
            err.trim()
                .lines()
                .filter(|l| l.starts_with("error"))
                .count(),
            1,
            "{err}"
        );
    }
    let err = sb.fails(&[
        "generate",
        "--mode",
        "sample",
        "--from",
        "2026-02-10",
        "--to",
        "2026-02-09",
    ]);
    assert!(err.contains("is after --to"), "{err}");
    assert_untouched(&sb, &before);
}

#[test]
fn unknown_modes_are_refused() {
    let sb = with_history();
    let before = sb.tree();
    let err = sb.fails(&["generate", "--mode", "full", "--date", "2026-02-09"]);
    assert!(
        err.contains("'full'") && err.contains("raw, sample"),
        "{err}"
    );
    assert_untouched(&sb, &before);
}

#[test]
fn an_invalid_or_unreadable_config_names_the_key_and_why() {
    let sb = with_history();
    let before = sb.tree();
    let cases: [(&str, &[&str]); 5] = [
        ("seed: not-a-number\n", &["seed"]),
        ("volumes:\n  sample:\n    encounters: -3\n", &["encounters"]),
        (
            "population:\n  returning_share: 1.5\n",
            &["population.returning_share", "between 0 and 1"],
        ),
        ("surprise_key: 1\n", &["surprise_key"]),
        ("seed: [unclosed\n", &["config"]),
    ];
    for (yaml, expected) in cases {
        let path = sb.path().join("bad.yaml");
        std::fs::write(&path, yaml).unwrap();
        let err = sb.fails(&[
            "generate",
            "--mode",
            "sample",
            "--date",
            "2026-02-09",
            "--config",
            "bad.yaml",
        ]);
        for word in expected {
            assert!(err.contains(word), "{yaml:?}: {err}");
        }
    }
    std::fs::remove_file(sb.path().join("bad.yaml")).unwrap();
    let err = sb.fails(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        "2026-02-09",
        "--config",
        "missing.yaml",
    ]);
    assert!(err.contains("missing.yaml"), "{err}");

    // Environment variables are a config layer too.
    let out = sb
        .command()
        .args(["generate", "--mode", "sample", "--date", "2026-02-09"])
        .env("DATAGEN__VOLUMES__SAMPLE__JITTER", "7")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("volumes.sample.jitter"));
    assert_untouched(&sb, &before);
}

#[test]
fn env_and_flags_override_the_config_file_in_order() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path().join("config")).unwrap();
    std::fs::write(
        sb.path().join("config/default.yaml"),
        "volumes:\n  sample:\n    encounters: 5\n    jitter: 0\n    weekend_factor: 1\n",
    )
    .unwrap();
    // The day's planned volume, as its manifest records it (the file also
    // holds stays that emergency visits continue as, and the census's).
    let planned = |date: &str| -> u64 {
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(sb.batch("sample", date).join("_manifest.json")).unwrap(),
        )
        .unwrap();
        manifest["volumes"]["encounters"].as_u64().unwrap()
    };
    sb.ok(&["generate", "--mode", "sample", "--date", "2026-02-09"]);
    assert_eq!(planned("2026-02-09"), 5, "file layer");
    let out = sb.run_with(
        &[("DATAGEN__VOLUMES__SAMPLE__ENCOUNTERS", "7")],
        &["generate", "--mode", "sample", "--date", "2026-02-10"],
    );
    assert!(out.status.success(), "env layer");
    assert_eq!(planned("2026-02-10"), 7, "env layer");
    sb.ok(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        "2026-02-11",
        "--encounters",
        "9",
    ]);
    assert_eq!(planned("2026-02-11"), 9, "flag layer");
}

#[test]
fn corrupt_or_truncated_state_is_refused_with_file_and_line_and_never_regenerated() {
    let master = "state/sample/patients_master.csv";
    let counter = "state/sample/encounter_id_counter.txt";
    let ledger = "state/sample/ledger.csv";
    type Damage = fn(&str) -> String;
    let cases: [(&str, Damage, &str); 6] = [
        (
            master,
            |s| {
                s.replacen(",female,", ",femal,", 1)
                    .replacen(",male,", ",mal,", 1)
            },
            "line",
        ),
        (
            master,
            |s| {
                let mut lines: Vec<&str> = s.lines().collect();
                lines.pop();
                lines.join("\n") + "\n"
            },
            "truncated",
        ),
        (master, |s| s[..s.len() - 7].to_string(), "line"),
        (counter, |s| s.trim_end().to_string(), "line 1"),
        (counter, |_| "12x\n".into(), "line 1"),
        (
            ledger,
            |s| s.replacen("2026-02-08", "2026-02-31", 1),
            "line 2",
        ),
    ];
    for (file, damage, expected) in cases {
        let sb = with_history();
        let path = sb.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, damage(&text)).unwrap();
        let before = sb.tree();
        let err = sb.fails(&["generate", "--mode", "sample", "--date", "2026-02-09"]);
        assert!(
            err.contains(file) && err.contains(expected) && err.contains("corrupt state file"),
            "{file}: {err}"
        );
        assert_untouched(&sb, &before);
    }
}

#[test]
fn a_missing_data_directory_is_refused() {
    let sb = with_history();
    let before = sb.tree();
    let err = sb.fails(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        "2026-02-09",
        "--data-dir",
        "no/such/parent/data",
    ]);
    assert!(err.contains("no/such/parent/data"), "{err}");
    assert_untouched(&sb, &before);
    assert!(!sb.path().join("no").exists());
}

#[test]
fn a_read_only_data_directory_is_refused() {
    let sb = with_history();
    let data = sb.path().join("data");
    let mut cmd = if is_root() {
        // root writes anywhere: run as nobody, who owns the state but not the data.
        for path in walk_all(sb.path()) {
            std::fs::set_permissions(
                &path,
                std::fs::Permissions::from_mode(if path.is_dir() { 0o755 } else { 0o644 }),
            )
            .unwrap();
        }
        for path in walk_all(&sb.path().join("state")) {
            std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        }
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        cmd
    } else {
        Command::new(BIN)
    };
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(data.join("sample"), std::fs::Permissions::from_mode(0o555)).unwrap();
    let before = sb.tree();
    let out = cmd
        .current_dir(sb.path())
        .args(["generate", "--mode", "sample", "--date", "2026-02-09"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("data") && err.contains("Permission denied"),
        "{err}"
    );
    assert_untouched(&sb, &before);
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `dir` and everything below it.
fn walk_all(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    crate::common::snapshot(dir, dir)
        .into_keys()
        .map(|relative| dir.join(relative))
        .collect()
}

#[test]
fn a_disk_write_failure_midway_leaves_nothing_behind() {
    let sb = with_history();
    let before = sb.tree();
    // A real write failure: the file-size limit makes the kernel refuse
    // writes past 48 KiB (EFBIG) once a batch file grows that far.
    let out = Command::new("bash")
        .current_dir(sb.path())
        .env("RUST_LOG", "warn")
        .args(["-c", "trap '' XFSZ; ulimit -f 48; exec \"$0\" \"$@\"", BIN])
        .args([
            "generate",
            "--mode",
            "sample",
            "--date",
            "2026-02-09",
            "--encounters",
            "300",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // Whichever file crosses the limit first (notes.jsonl grows fastest), the
    // failure names it and happened while staging.
    assert!(
        err.contains("data/.staging/sample/2026-02-09/") && err.contains("File too large"),
        "{err}"
    );
    assert_untouched(&sb, &before);

    // Nothing was lost: the same date generates fine afterwards.
    sb.generate("sample", "2026-02-09", &["--encounters", "300"]);
}

#[test]
fn serve_refuses_a_bad_or_busy_address_clearly() {
    let sb = Sandbox::new();
    let err = sb.fails(&["serve", "--bind", "256.0.0.1:80"]);
    assert!(
        err.contains("server.bind") && err.contains("256.0.0.1:80"),
        "{err}"
    );
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let err = sb.fails(&["serve", "--bind", &address]);
    assert!(
        err.contains(&format!("cannot listen on {address}")) && !err.contains("invalid request"),
        "{err}"
    );
}

/// The README's exit codes, case by case: input, exit code, message. Every
/// refused input leaves data/ and state/ as they were.
#[test]
fn exit_codes_and_messages_are_as_documented() {
    let sb = with_history();
    let before = sb.tree();
    const RANGE: &str = "outside the supported range 1900-01-01..2199-12-31";
    let refused: &[(&[&str], i32, &str)] = &[
        // Usage errors: 2.
        (
            &["generate", "--date", "2026-02-30"],
            2,
            "no such calendar date",
        ),
        (&["generate", "--date", "1899-12-31"], 2, RANGE),
        (&["generate", "--date", "2200-01-01"], 2, RANGE),
        (&["generate", "--date", "0001-01-01"], 2, RANGE),
        (&["generate", "--date", "9999-12-31"], 2, RANGE),
        (
            &["generate", "--from", "2199-12-30", "--to", "2200-01-01"],
            2,
            RANGE,
        ),
        (
            &["generate", "--from", "2026-02-10", "--to", "2026-02-09"],
            2,
            "--from 2026-02-10 is after --to 2026-02-09",
        ),
        (&["generate", "--from", "2026-02-10"], 2, "--to <TO>"),
        (&["generate"], 2, "required"),
        (
            &[
                "generate",
                "--date",
                "2026-02-08",
                "--from",
                "2026-02-01",
                "--to",
                "2026-02-02",
            ],
            2,
            "cannot be used with",
        ),
        (
            &["generate", "--mode", "full", "--date", "2026-02-08"],
            2,
            "'full'",
        ),
        (
            &["generate", "--date", "2026-02-08", "--encounters", "-1"],
            2,
            "'-1'",
        ),
        (
            &["generate", "--date", "2026-02-08", "--seed", "x"],
            2,
            "--seed",
        ),
        (&["frobnicate"], 2, "unrecognized subcommand"),
        (&["validate"], 2, "<DIR>"),
        // Runtime errors: 1.
        (
            &[
                "generate",
                "--date",
                "2026-02-08",
                "--config",
                "missing.yaml",
            ],
            1,
            "cannot read config file",
        ),
        (&["validate", "no/such/dir"], 1, "_manifest.json"),
        (&["serve", "--bind", "nonsense"], 1, "server.bind"),
        // Dates run forward one day at a time per mode.
        (
            &["generate", "--mode", "sample", "--date", "2026-02-10"],
            1,
            "the next sample batch is 2026-02-09, not 2026-02-10",
        ),
        (
            &["generate", "--mode", "sample", "--date", "2026-02-07"],
            1,
            "2026-02-07 comes before the last sample batch, 2026-02-08, and was never generated",
        ),
        (
            &[
                "generate",
                "--mode",
                "sample",
                "--from",
                "2026-02-10",
                "--to",
                "2026-02-11",
            ],
            1,
            "the next sample batch is 2026-02-09, not 2026-02-10",
        ),
    ];
    for (args, code, message) in refused {
        let out = sb.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "datagen {args:?}: {stderr}");
        assert!(stderr.contains(message), "datagen {args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "datagen {args:?} printed a result");
        assert_untouched(&sb, &before);
    }

    // The first date of a mode whose facility starts with no patients, and
    // nobody new: nobody can be seen.
    let fresh = Sandbox::new();
    let out = fresh.run_with(
        &[("DATAGEN__VOLUMES__RAW__POPULATION", "0")],
        &[
            "generate",
            "--mode",
            "raw",
            "--date",
            "2026-02-07",
            "--new-patients",
            "0",
            "--encounters",
            "5",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("there are no patients to see"), "{stderr}");
    let files: Vec<_> = fresh
        .tree()
        .into_iter()
        .filter(|(_, f)| f.is_some())
        .collect();
    assert!(files.is_empty(), "a refused first run wrote {files:?}");

    // Success: 0, the bounds of the range included (each the first date of
    // its mode), and the batches are valid.
    for (args, message) in [
        (&["--help"][..], "Usage"),
        (
            &["generate", "--mode", "sample", "--date", "2026-02-08"],
            "exists",
        ),
        (
            &["generate", "--mode", "sample", "--date", "2026-02-09"],
            "created",
        ),
        (
            &["generate", "--mode", "raw", "--date", "1900-01-01"],
            "created",
        ),
    ] {
        let out = sb.run(args);
        assert_eq!(out.status.code(), Some(0), "datagen {args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(message),
            "datagen {args:?}"
        );
    }
    fresh.generate("sample", "2199-12-31", &[]);
    sb.ok(&["validate", sb.batch("raw", "1900-01-01").to_str().unwrap()]);
    fresh.ok(&[
        "validate",
        fresh.batch("sample", "2199-12-31").to_str().unwrap(),
    ]);
}

#[test]
fn object_store_urls_that_cannot_work_are_refused_before_anything_is_written() {
    let sb = with_history();
    let before = sb.tree();
    for (flags, why) in [
        (
            vec!["--data-url", "s3://bucket/datagen/data"],
            "paths.state_url must be a bucket too",
        ),
        (
            vec!["--state-url", "s3://bucket/datagen/state"],
            "paths.data_url must be a bucket too",
        ),
        (
            vec![
                "--data-url",
                "s3://bucket/datagen",
                "--state-url",
                "s3://bucket/datagen",
            ],
            "give each its own prefix",
        ),
        (
            vec![
                "--data-url",
                "gs://bucket/data",
                "--state-url",
                "gs://bucket/state",
            ],
            "the gs:// scheme is not supported",
        ),
        (
            vec!["--data-url", "s3:///data", "--state-url", "s3://b/state"],
            "names no bucket",
        ),
    ] {
        let mut args = vec!["generate", "--mode", "sample", "--date", "2026-02-09"];
        args.extend_from_slice(&flags);
        let err = sb.fails(&args);
        assert!(err.contains(why), "{flags:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_untouched(&sb, &before);
}

#[test]
fn a_file_url_or_plain_path_just_moves_the_local_folders() {
    let sb = Sandbox::new();
    let elsewhere = sb.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let data_url = format!("file://{}", elsewhere.join("data").display());
    let state = elsewhere.join("state");
    sb.ok(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        "2026-02-08",
        "--data-url",
        &data_url,
        "--state-url",
        state.to_str().unwrap(),
    ]);
    assert!(
        elsewhere
            .join("data/sample/2026-02-08/_manifest.json")
            .is_file()
    );
    assert!(state.join("sample/ledger.csv").is_file());
    assert!(!sb.path().join("data").exists() && !sb.path().join("state").exists());
}

#[test]
fn a_bucket_never_takes_over_the_folders_of_a_local_feed() {
    let sb = with_history();
    let before = sb.tree();
    let err = sb.fails(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        "2026-02-09",
        "--data-url",
        "s3://bucket/datagen/data",
        "--state-url",
        "s3://bucket/datagen/state",
    ]);
    assert!(err.contains("holds a state of its own"), "{err}");
    assert!(err.contains("give the bucket empty folders"), "{err}");
    assert_untouched(&sb, &before);
}
