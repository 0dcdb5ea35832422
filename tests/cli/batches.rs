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

/// Encounter rows form an upsert feed: an encounter appears when first
/// touched and once more only to finish; every number the counter issued is
/// either in the feed or waiting in the census. Patients keep their
/// identity, and the snapshot is exactly who the day's rows refer to.
#[test]
fn ids_stay_unique_and_stable_across_dates_and_counters_advance() {
    let sb = Sandbox::new();
    // Encounter ID -> whether its last row was finished, and its window.
    let mut seen: HashMap<String, bool> = HashMap::new();
    let mut windows: HashMap<String, (String, i64, Option<i64>)> = HashMap::new();
    let mut master_before: Vec<HashMap<String, String>> = Vec::new();
    let mut counter_before = 0u64;
    // Finished encounters carried for results to come, and the day each
    // encounter's results arrived.
    let (mut pending, mut resulted) = (Vec::new(), Vec::new());
    for date in DATES {
        sb.generate("sample", date, &[]);
        let dir = sb.batch("sample", date);
        let encounters = read_csv(&dir.join("encounters.csv"));
        let patients = read_csv(&dir.join("patients.csv"));
        let vitals = read_csv(&dir.join("vitals.csv"));
        let labs = read_csv(&dir.join("labs.csv"));
        let master = read_csv(&sb.state("sample").join("patients_master.csv"));
        let census = read_csv(&sb.state("sample").join("census.csv"));
        let counter: u64 =
            std::fs::read_to_string(sb.state("sample").join("encounter_id_counter.txt"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
        assert!(counter >= counter_before, "the counter never goes back");

        for r in &encounters.rows {
            let id = &r["encounter_id"];
            let number: u64 = id[1..].parse().unwrap();
            assert!(number >= 1 && number <= counter, "{id} beyond the counter");
            let finished = r["status"] == "finished";
            match seen.insert(id.clone(), finished) {
                None => {
                    // New numbers come from today's counter, or are stays
                    // planned yesterday that began today (an emergency visit
                    // admitted after midnight).
                    assert!(
                        number > counter_before || !r["source_encounter_id"].is_empty(),
                        "{date}: {id} new but issued earlier"
                    );
                }
                Some(was_finished) => {
                    assert!(!was_finished, "{date}: {id} again after it finished");
                    assert!(finished, "{date}: {id} repeated without finishing");
                }
            }
            let discharge =
                (!r["discharge_time"].is_empty()).then(|| timestamp(&r["discharge_time"]));
            assert_eq!(
                finished,
                discharge.is_some(),
                "{date}: {id} status and discharge disagree"
            );
            windows.insert(
                id.clone(),
                (
                    r["patient_id"].clone(),
                    timestamp(&r["admit_time"]),
                    discharge,
                ),
            );
        }
        // Issued numbers are in the feed or waiting in the census: no gaps.
        let census_ids: HashSet<String> = census
            .rows
            .iter()
            .map(|r| r["encounter_id"].clone())
            .collect();
        for n in 1..=counter {
            let id = format!("E{n:010}");
            assert!(
                seen.contains_key(&id) || census_ids.contains(&id),
                "{date}: {id} issued but neither in the feed nor in the census"
            );
        }
        // Open encounters are carried; so are finished ones whose results
        // are still to come (checked below, once later batches are in).
        for (id, finished) in &seen {
            if !finished {
                assert!(census_ids.contains(id), "{date}: {id} open but not carried");
            } else if census_ids.contains(id) {
                pending.push((date, id.clone()));
            }
        }
        for l in &labs.rows {
            resulted.push((date, l["encounter_id"].clone()));
        }
        counter_before = counter;

        // Earlier patients keep their ID and identity; only the postal code
        // and a date of death may be added.
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

        // The snapshot is exactly: registered today, plus everyone today's
        // encounter, vitals and labs rows refer to.
        let registered_today: BTreeSet<String> = master
            .rows
            .iter()
            .filter(|r| r["registered_date"] == date)
            .map(|r| r["patient_id"].clone())
            .collect();
        let referred: BTreeSet<String> = [&encounters, &vitals, &labs]
            .iter()
            .flat_map(|t| t.rows.iter().map(|r| r["patient_id"].clone()))
            .collect();
        let snapshot: Vec<String> = patients
            .rows
            .iter()
            .map(|r| r["patient_id"].clone())
            .collect();
        let expected: Vec<String> = registered_today.union(&referred).cloned().collect();
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
                "deceased_date",
            ] {
                assert_eq!(
                    p[column], m[column],
                    "snapshot {column} agrees with the master"
                );
            }
            assert_eq!(p["snapshot_date"], date);
        }

        // Referential integrity and windows, checked independently of the
        // validator: every vital belongs to an encounter already in the
        // feed, on the batch date, inside what is known of its window.
        assert!(!vitals.rows.is_empty());
        for v in &vitals.rows {
            let (patient, admit, discharge) = &windows[v["encounter_id"].as_str()];
            assert_eq!(&v["patient_id"], patient);
            assert!(
                v["measured_at"].starts_with(date),
                "{} not measured on {date}",
                v["vital_id"]
            );
            let at = timestamp(&v["measured_at"]);
            assert!(
                *admit <= at && discharge.is_none_or(|d| at <= d),
                "{} outside its window",
                v["vital_id"]
            );
            assert!(v["vital_id"].starts_with(&v["encounter_id"]));
        }
        master_before = master.rows;
    }
    // A finished encounter carried past a day has results on a later day
    // (or after the last batch checked).
    for (date, id) in pending {
        if date == DATES[DATES.len() - 1] {
            continue;
        }
        assert!(
            resulted
                .iter()
                .any(|(later, of)| *later > date && *of == id),
            "{date}: {id} finished but carried, and no later result"
        );
    }
}

/// An inpatient stay names the emergency visit it continued as, also on a
/// day whose patients cannot take every visit asked for: a visit no patient
/// could take leaves its place in the plan unused, and stays planned after
/// such gaps once lost their link.
#[test]
fn a_stay_names_its_emergency_visit_on_a_day_too_busy_for_every_visit() {
    let sb = Sandbox::new();
    sb.generate("sample", "2026-03-02", &[]);
    let day = "2026-03-03";
    sb.generate(
        "sample",
        day,
        &["--encounters", "4000", "--new-patients", "50"],
    );
    let rows = read_csv(&sb.batch("sample", day).join("encounters.csv")).rows;
    let admitted_today = rows
        .iter()
        .filter(|e| e["admit_time"].starts_with(day))
        .count();
    assert!(
        admitted_today < 4000,
        "{admitted_today}: every visit was taken"
    );
    // Each admitted emergency visit that ended today, by patient and time.
    let visits: HashMap<(&str, &str), &str> = rows
        .iter()
        .filter(|e| e["encounter_type"] == "emergency" && e["disposition"] == "admitted")
        .map(|e| {
            let at = (e["patient_id"].as_str(), e["discharge_time"].as_str());
            (at, e["encounter_id"].as_str())
        })
        .collect();
    let mut stays = 0;
    for e in rows.iter().filter(|e| e["encounter_type"] == "inpatient") {
        let at = (e["patient_id"].as_str(), e["admit_time"].as_str());
        if let Some(visit) = visits.get(&at) {
            stays += 1;
            assert_eq!(e["source_encounter_id"], *visit, "{}", e["encounter_id"]);
        }
    }
    assert!(stays >= 10, "{stays} stays continued an emergency visit");
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
        let snapshot: HashMap<String, String> =
            read_csv(&sb.batch("raw", date).join("patients.csv"))
                .rows
                .into_iter()
                .map(|p| (p["patient_id"].clone(), p["postal_code"].clone()))
                .collect();
        // Who moved today, by the master: the snapshot shows where they live now.
        for p in read_csv(&sb.state("raw").join("patients_master.csv")).rows {
            let (id, code) = (&p["patient_id"], &p["postal_code"]);
            if let Some(old) = codes.insert(id.clone(), code.clone())
                && old != *code
            {
                moved += 1;
                assert_eq!(snapshot.get(id), Some(code), "{id} moved on {date}");
            }
        }
    }
    // 2% of ~900 returning patients a day over the three days after the first.
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

/// A mode's batches run forward one day at a time: a gap is refused naming
/// the next date, and `--catch-up` fills it in order, to the same bytes as
/// asking for each day.
#[test]
fn dates_run_forward_and_catch_up_fills_a_gap_in_order() {
    let sb = Sandbox::new();
    sb.generate("sample", "2026-02-08", &[]);
    let before = sb.tree();
    let err = sb.fails(&["generate", "--mode", "sample", "--date", "2026-02-11"]);
    assert!(
        err.contains("the next sample batch is 2026-02-09, not 2026-02-11")
            && err.contains("--catch-up"),
        "{err}"
    );
    assert_eq!(sb.tree(), before, "a refused date wrote something");

    let out = sb.generate("sample", "2026-02-11", &["--catch-up"]);
    let created: Vec<&str> = out.lines().filter(|l| l.starts_with("created")).collect();
    assert_eq!(created.len(), 3, "{out}");
    for (line, date) in created
        .iter()
        .zip(["2026-02-09", "2026-02-10", "2026-02-11"])
    {
        assert!(line.contains(date), "{out}");
    }
    // Caught up: asking again is the usual answer for a committed date.
    assert!(
        sb.generate("sample", "2026-02-11", &["--catch-up"])
            .contains("exists")
    );

    let each = Sandbox::new();
    for date in ["2026-02-08", "2026-02-09", "2026-02-10", "2026-02-11"] {
        each.generate("sample", date, &[]);
    }
    assert_eq!(
        sb.tree(),
        each.tree(),
        "catching up differs from asking day by day"
    );

    // A mode's first date is free, with or without catching up.
    let fresh = Sandbox::new();
    let out = fresh.generate("sample", "2026-03-01", &["--catch-up"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("created")).count(),
        1,
        "{out}"
    );
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
