//! Batches as downstream ETL sees them: contract files, schemas, IDs across
//! dates, snapshot membership, referential integrity, determinism, idempotency.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::helpers::{Sandbox, read_csv, timestamp};

const DATES: [&str; 4] = ["2026-02-06", "2026-02-07", "2026-02-08", "2026-02-09"];

#[test]
fn every_row_of_every_file_matches_its_schema_in_both_modes() {
    let sb = Sandbox::new();
    for mode in ["sample", "raw"] {
        for date in &DATES[..2] {
            let extra: &[&str] = if mode == "raw" {
                &["--encounters", "400", "--new-patients", "150"]
            } else {
                &[]
            };
            sb.generate(mode, date, extra);
            let dir = sb.batch(mode, date);
            let listing: BTreeSet<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(
                listing,
                [
                    "_manifest.json",
                    "encounters.csv",
                    "labs.csv",
                    "notes.jsonl",
                    "patients.csv",
                    "vitals.csv"
                ]
                .map(String::from)
                .into()
            );
            // The validator checks each row against the JSON Schema and the
            // manifest's sizes, checksums and counts.
            let out = sb.ok(&["validate", dir.to_str().unwrap()]);
            assert!(out.starts_with("valid "), "{out}");
            for dataset in ["patients", "encounters", "vitals", "labs"] {
                assert_header_matches_schema(&dir.join(format!("{dataset}.csv")), dataset);
            }
            assert_note_keys_match_schema(&dir.join("notes.jsonl"));
        }
    }
}

/// A schema from the schemas/ folder on disk (not from the binary), and its
/// property names in order.
fn schema_on_disk(dataset: &str) -> (serde_json::Value, Vec<String>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{dataset}.schema.json"));
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let properties = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    (schema, properties)
}

/// The header must be the schema's properties in order, and every column required.
fn assert_header_matches_schema(csv_path: &std::path::Path, dataset: &str) {
    let (schema, properties) = schema_on_disk(dataset);
    let required: Vec<String> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(read_csv(csv_path).header, properties, "{dataset}");
    assert_eq!(required, properties, "{dataset}: every column is required");
}

/// Every notes.jsonl object is one line whose keys are the schema's
/// properties in order, and the manifest declares every file's schema version.
fn assert_note_keys_match_schema(path: &std::path::Path) {
    let (_, properties) = schema_on_disk("notes");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'));
    let mut lines = 0;
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, properties);
        lines += 1;
    }
    assert!(lines > 0);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.with_file_name("_manifest.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "patients.csv",
            "encounters.csv",
            "vitals.csv",
            "labs.csv",
            "notes.jsonl"
        ]
    );
    for file in manifest["files"].as_array().unwrap() {
        let name = file["name"].as_str().unwrap();
        let (schema, _) = schema_on_disk(name.split('.').next().unwrap());
        assert_eq!(file["schema_version"], schema["x-schema-version"], "{name}");
    }
}

#[test]
fn ids_stay_unique_and_stable_across_dates_and_counters_advance() {
    let sb = Sandbox::new();
    let mut all_encounters = HashSet::new();
    let mut master_before: Vec<HashMap<String, String>> = Vec::new();
    let mut last_encounter = 0u64;
    for date in DATES {
        sb.generate("sample", date, &[]);
        let dir = sb.batch("sample", date);
        let encounters = read_csv(&dir.join("encounters.csv"));
        let patients = read_csv(&dir.join("patients.csv"));
        let vitals = read_csv(&dir.join("vitals.csv"));
        let master = read_csv(&sb.state("sample").join("patients_master.csv"));

        // Encounter IDs continue the previous date's counter without gaps.
        let numbers: Vec<u64> = encounters
            .rows
            .iter()
            .map(|r| r["encounter_id"][1..].parse().unwrap())
            .collect();
        assert_eq!(
            numbers,
            ((last_encounter + 1)..=(last_encounter + numbers.len() as u64)).collect::<Vec<_>>()
        );
        last_encounter += numbers.len() as u64;
        let counter =
            std::fs::read_to_string(sb.state("sample").join("encounter_id_counter.txt")).unwrap();
        assert_eq!(counter, format!("{last_encounter}\n"));
        for r in &encounters.rows {
            assert!(
                all_encounters.insert(r["encounter_id"].clone()),
                "reused {}",
                r["encounter_id"]
            );
        }

        // Earlier patients keep their ID and identity; only the postal code may change.
        for (old, new) in master_before.iter().zip(&master.rows) {
            for column in [
                "patient_id",
                "mrn",
                "first_name",
                "last_name",
                "sex",
                "birth_date",
                "registered_date",
            ] {
                assert_eq!(
                    old[column], new[column],
                    "{column} changed for {}",
                    old["patient_id"]
                );
            }
        }
        let ids: Vec<String> = master
            .rows
            .iter()
            .map(|r| r["patient_id"].clone())
            .collect();
        let expected: Vec<String> = (1..=ids.len()).map(|n| format!("P{n:08}")).collect();
        assert_eq!(ids, expected, "patient ids are 1..n without gaps");

        // The snapshot is exactly: registered today, plus seen today.
        let registered_today: BTreeSet<String> = master
            .rows
            .iter()
            .filter(|r| r["registered_date"] == date)
            .map(|r| r["patient_id"].clone())
            .collect();
        let seen_today: BTreeSet<String> = encounters
            .rows
            .iter()
            .map(|r| r["patient_id"].clone())
            .collect();
        let snapshot: Vec<String> = patients
            .rows
            .iter()
            .map(|r| r["patient_id"].clone())
            .collect();
        let expected: Vec<String> = registered_today.union(&seen_today).cloned().collect();
        assert_eq!(
            snapshot, expected,
            "{date}: snapshot membership (sorted, once each)"
        );
        let by_id: HashMap<&str, &HashMap<String, String>> = master
            .rows
            .iter()
            .map(|r| (r["patient_id"].as_str(), r))
            .collect();
        for p in &patients.rows {
            let m = by_id[p["patient_id"].as_str()];
            for column in [
                "mrn",
                "first_name",
                "last_name",
                "sex",
                "birth_date",
                "postal_code",
                "registered_date",
            ] {
                assert_eq!(
                    p[column], m[column],
                    "snapshot {column} agrees with the master"
                );
            }
            assert_eq!(p["snapshot_date"], date);
        }

        // Referential integrity and encounter windows, checked independently
        // of the validator.
        let windows: HashMap<&str, (&str, i64, i64)> = encounters
            .rows
            .iter()
            .map(|r| {
                (
                    r["encounter_id"].as_str(),
                    (
                        r["patient_id"].as_str(),
                        timestamp(&r["admit_time"]),
                        timestamp(&r["discharge_time"]),
                    ),
                )
            })
            .collect();
        for r in &encounters.rows {
            assert!(
                r["admit_time"].starts_with(date),
                "admitted on the batch date"
            );
        }
        assert!(!vitals.rows.is_empty());
        for v in &vitals.rows {
            let (patient, admit, discharge) = windows[v["encounter_id"].as_str()];
            assert_eq!(v["patient_id"], patient);
            assert!(snapshot.contains(&v["patient_id"]));
            let at = timestamp(&v["measured_at"]);
            assert!(
                admit <= at && at <= discharge,
                "{} outside its window",
                v["vital_id"]
            );
            assert!(v["vital_id"].starts_with(&v["encounter_id"]));
        }
        master_before = master.rows;
    }
}

#[test]
fn some_returning_patients_move_and_the_snapshot_shows_the_new_postal_code() {
    let sb = Sandbox::new();
    let mut codes: HashMap<String, String> = HashMap::new();
    let mut moved = 0;
    for (i, date) in ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
        .iter()
        .enumerate()
    {
        let extra = [
            "--new-patients",
            if i == 0 { "1500" } else { "100" },
            "--encounters",
            "1500",
        ];
        sb.generate("raw", date, &extra);
        for p in read_csv(&sb.batch("raw", date).join("patients.csv")).rows {
            if let Some(old) = codes.insert(p["patient_id"].clone(), p["postal_code"].clone())
                && old != p["postal_code"]
            {
                moved += 1;
            }
        }
    }
    // 2% of ~900 returning patients a day over three days.
    assert!((20..=110).contains(&moved), "{moved} moves");
}

#[test]
fn two_fresh_runs_of_the_same_dates_are_byte_identical() {
    let a = Sandbox::new();
    let b = Sandbox::new();
    for sb in [&a, &b] {
        for date in &DATES[..3] {
            sb.generate("sample", date, &[]);
            sb.generate("raw", date, &["--encounters", "300"]);
        }
    }
    let (da, db) = (a.digests(), b.digests());
    assert!(da.len() > 10);
    assert_eq!(da, db);

    // A different seed gives different data.
    let c = Sandbox::new();
    c.generate("sample", DATES[0], &["--seed", "7"]);
    let vitals =
        |sb: &Sandbox| std::fs::read(sb.batch("sample", DATES[0]).join("vitals.csv")).unwrap();
    assert_ne!(vitals(&a), vitals(&c));
}

#[test]
fn generating_a_committed_date_again_changes_nothing_and_says_so() {
    let sb = Sandbox::new();
    sb.generate(
        "sample",
        DATES[0],
        &["--encounters", "30", "--new-patients", "12"],
    );
    let before = sb.tree();
    let out = sb.generate("sample", DATES[0], &[]);
    assert!(out.contains("already committed"), "{out}");
    let out = sb.generate("sample", DATES[0], &["--encounters", "30"]);
    assert!(out.contains("already committed"), "{out}");
    // Other volumes than the committed ones: refused with both numbers.
    let err = sb.fails(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        DATES[0],
        "--encounters",
        "999",
    ]);
    assert!(
        err.contains("encounters=30")
            && err.contains("encounters=999")
            && err.contains("never regenerated"),
        "{err}"
    );
    let out = sb.run(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        DATES[0],
        "--new-patients",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(sb.tree(), before);
}

#[test]
fn a_backfilled_earlier_date_never_sees_later_patients() {
    let sb = Sandbox::new();
    sb.generate("sample", "2026-02-10", &[]);
    sb.generate("sample", "2026-02-09", &[]);
    let later: HashSet<String> = read_csv(&sb.batch("sample", "2026-02-10").join("patients.csv"))
        .rows
        .into_iter()
        .map(|r| r["patient_id"].clone())
        .collect();
    let earlier = read_csv(&sb.batch("sample", "2026-02-09").join("encounters.csv"));
    assert!(!earlier.rows.is_empty());
    for e in earlier.rows {
        assert!(
            !later.contains(&e["patient_id"]),
            "{} seen before registration",
            e["patient_id"]
        );
    }
    // IDs keep growing in generation order, not date order.
    let first_earlier = read_csv(&sb.batch("sample", "2026-02-09").join("encounters.csv")).rows[0]
        ["encounter_id"]
        .clone();
    let last_later = read_csv(&sb.batch("sample", "2026-02-10").join("encounters.csv"))
        .rows
        .last()
        .unwrap()["encounter_id"]
        .clone();
    assert!(first_earlier > last_later);
}

#[test]
fn a_range_is_generated_in_date_order_with_plain_progress_lines() {
    let sb = Sandbox::new();
    let out = sb
        .command()
        .args([
            "generate",
            "--mode",
            "sample",
            "--from",
            "2026-02-01",
            "--to",
            "2026-02-03",
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let created: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("created"))
        .collect();
    assert_eq!(created.len(), 3, "{stdout}");
    assert!(created[0].contains("2026-02-01") && created[2].contains("2026-02-03"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("backfill progress"), "{stderr}");
    let ledger = std::fs::read_to_string(sb.state("sample").join("ledger.csv")).unwrap();
    let dates: Vec<&str> = ledger.lines().skip(1).map(|l| &l[..10]).collect();
    assert_eq!(dates, ["2026-02-01", "2026-02-02", "2026-02-03"]);
}

#[test]
fn sample_and_raw_keep_separate_state() {
    let sb = Sandbox::new();
    sb.generate("raw", DATES[0], &["--encounters", "50"]);
    sb.generate("sample", DATES[0], &[]);
    let first =
        read_csv(&sb.batch("sample", DATES[0]).join("encounters.csv")).rows[0]["encounter_id"]
            .clone();
    assert_eq!(
        first, "E0000000001",
        "sample mode does not shift raw IDs (nor the reverse)"
    );
}

#[test]
fn every_command_has_help() {
    let sb = Sandbox::new();
    for args in [
        vec!["--help"],
        vec!["generate", "--help"],
        vec!["validate", "--help"],
    ] {
        let out = sb.ok(&args);
        assert!(out.contains("Usage: datagen"), "{out}");
    }
    let out = sb.ok(&["generate", "--help"]);
    for flag in [
        "--config",
        "--data-dir",
        "--state-dir",
        "--new-patients",
        "--encounters",
        "--from",
        "--to",
    ] {
        assert!(out.contains(flag), "generate --help lacks {flag}");
    }
}

#[test]
fn patients_born_before_1900_survive_a_state_reload() {
    // A 1900 batch registers patients born in the 1800s; the next date must
    // read them back from the master.
    let sb = Sandbox::new();
    sb.generate("sample", "1900-01-01", &["--new-patients", "200"]);
    sb.generate("sample", "1900-01-02", &[]);
    let master = read_csv(&sb.state("sample").join("patients_master.csv"));
    assert!(
        master
            .rows
            .iter()
            .any(|r| r["birth_date"].as_str() < "1900-01-01")
    );
}

#[test]
fn a_range_on_a_terminal_draws_a_progress_bar() {
    // `script` (util-linux) runs the binary on a pseudo-terminal.
    let sb = Sandbox::new();
    let command = format!(
        "{} generate --mode sample --from 2026-02-01 --to 2026-02-04",
        crate::helpers::BIN
    );
    let out = std::process::Command::new("script")
        .current_dir(sb.path())
        .env("RUST_LOG", "warn")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("4/4") && screen.contains('\u{2588}'),
        "no progress bar in {screen:?}"
    );
    assert!(
        !screen.contains("backfill progress"),
        "plain log lines are for non-terminals"
    );
    assert!(sb.batch("sample", "2026-02-04").exists());
}

/// Patients live possible lives: decades later, only those still under the
/// oldest age come back, and a date when all have died has nobody to see.
#[test]
fn returning_patients_decades_later_are_never_impossibly_old() {
    let sb = Sandbox::new();
    sb.generate(
        "sample",
        "1950-06-01",
        &["--new-patients", "300", "--encounters", "10"],
    );
    sb.generate(
        "sample",
        "2000-06-01",
        &["--new-patients", "0", "--encounters", "200"],
    );
    let snapshot = read_csv(&sb.batch("sample", "2000-06-01").join("patients.csv"));
    assert!(snapshot.rows.len() > 50);
    let on = chrono::NaiveDate::from_ymd_opt(2000, 6, 1).unwrap();
    for p in &snapshot.rows {
        let born: chrono::NaiveDate = p["birth_date"].parse().unwrap();
        let age = on.years_since(born).unwrap();
        assert!(age <= 110, "{} is {age} on 2000-06-01", p["patient_id"]);
    }
    let err = sb.fails(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        "2100-06-01",
        "--new-patients",
        "0",
    ]);
    assert!(err.contains("there are no patients to see"), "{err}");
}

/// The files are the same whatever the number of threads that render them.
#[test]
fn any_thread_count_gives_the_same_bytes() {
    let digests: Vec<_> = ["1", "2", "8"]
        .iter()
        .map(|threads| {
            let sb = Sandbox::new();
            // Enough encounters for many chunks of uneven sizes.
            sb.generate(
                "raw",
                "2026-02-09",
                &["--encounters", "5300", "--threads", threads],
            );
            sb.generate("sample", "2026-02-09", &["--threads", threads]);
            sb.digests()
        })
        .collect();
    assert!(digests[0].len() > 10);
    assert_eq!(digests[0], digests[1], "1 and 2 threads differ");
    assert_eq!(digests[0], digests[2], "1 and 8 threads differ");
}
