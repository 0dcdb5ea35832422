//! Labelled mess on purpose (`--defects`): every kind at its rate, labels
//! that are exactly true (checked against a clean twin run of the same
//! seed), `validate` finding what is labelled and nothing else, the same
//! bytes for any thread count, a profile that belongs to its state, crash
//! safety with rows pending, and `score`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::helpers::{CRASH_POINTS, Sandbox, rewrite_in_batch};

const FROM: &str = "2026-03-01";
const TO: &str = "2026-03-07";
const DATES: [&str; 7] = [
    "2026-03-01",
    "2026-03-02",
    "2026-03-03",
    "2026-03-04",
    "2026-03-05",
    "2026-03-06",
    "2026-03-07",
];
const FILES: [&str; 5] = [
    "patients.csv",
    "encounters.csv",
    "vitals.csv",
    "labs.csv",
    "notes.jsonl",
];
const ROW_KINDS: [&str; 12] = [
    "missing_required",
    "out_of_range",
    "unit_error",
    "duplicate_exact",
    "duplicate_new_id",
    "orphan_reference",
    "late_arrival",
    "correction",
    "timestamp_format",
    "number_format",
    "enum_case",
    "whitespace",
];
/// The heavy profile's rates (README, "Testing your pipeline with defects").
const HEAVY_ROW_RATE: f64 = 0.005;
const HEAVY_BOM_RATE: f64 = 0.2;
const HEAVY_DRIFT_RATE: f64 = 0.15;

fn week(sb: &Sandbox, extra: &[&str]) {
    let mut args = vec!["generate", "--mode", "raw", "--from", FROM, "--to", TO];
    args.extend_from_slice(extra);
    sb.ok(&args);
}

/// A file's rows, by physical line: each a map of schema column -> value
/// (`None` for empty or null), read through the header the manifest
/// announces (a drifted file's renamed column keeps its place).
fn rows(batch: &Path, file: &str) -> BTreeMap<u64, HashMap<String, Option<String>>> {
    let text = std::fs::read_to_string(batch.join(file)).unwrap();
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = BTreeMap::new();
    if file.ends_with(".jsonl") {
        for (i, line) in text.lines().enumerate() {
            let value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap();
            let row = value
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::Null => None,
                        serde_json::Value::String(s) => Some(s),
                        other => Some(other.to_string()),
                    };
                    (k, v)
                })
                .collect();
            out.insert(i as u64 + 1, row);
        }
        return out;
    }
    let schema: Vec<String> = {
        let name = file.trim_end_matches(".csv");
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{name}.schema.json")),
            )
            .unwrap(),
        )
        .unwrap();
        schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header: Vec<String> = records
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if schema.contains(h) || header.len() != schema.len() {
                h.clone()
            } else {
                schema[i].clone()
            }
        })
        .collect();
    for (i, record) in records.enumerate() {
        let record = record.unwrap();
        // A column added by drift is not the schema's: left out.
        let row = names
            .iter()
            .zip(record.iter())
            .filter(|(n, _)| schema.contains(n))
            .map(|(n, v)| (n.clone(), (!v.is_empty()).then(|| v.to_string())))
            .collect();
        out.insert(i as u64 + 2, row);
    }
    out
}

fn labels(batch: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(batch.join("_defects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn id_of(row: &HashMap<String, Option<String>>, file: &str) -> String {
    let column = match file {
        "patients.csv" => "patient_id",
        "encounters.csv" => "encounter_id",
        "vitals.csv" => "vital_id",
        "labs.csv" => "lab_id",
        _ => "note_id",
    };
    row[column].clone().unwrap_or_default()
}

#[test]
fn a_heavy_week_has_every_kind_at_its_rate_labelled_exactly_and_validate_agrees() {
    let heavy = Sandbox::new();
    week(&heavy, &["--defects", "heavy"]);
    let clean = Sandbox::new();
    week(&clean, &[]);

    // Clean rows by batch, file and ID.
    let mut twin: HashMap<(String, String, String), HashMap<String, Option<String>>> =
        HashMap::new();
    let mut clean_rows: HashMap<&str, usize> = HashMap::new();
    // Rows a unit error can apply to: a temperature to chart in Fahrenheit,
    // a glucose (below 540 mg/dL), hemoglobin or creatinine in another unit.
    let mut unit_rows: HashMap<&str, usize> = HashMap::new();
    for date in DATES {
        for file in FILES {
            for row in rows(&clean.batch("raw", date), file).into_values() {
                *clean_rows.entry(file).or_default() += 1;
                let value = |c: &str| row.get(c).cloned().flatten();
                let convertible = match file {
                    "vitals.csv" => value("temperature_c").is_some(),
                    "labs.csv" => match value("loinc_code").as_deref() {
                        Some("2345-7") => value("value")
                            .and_then(|v| v.parse::<f64>().ok())
                            .is_some_and(|v| v < 540.0),
                        Some("718-7" | "2160-0") => true,
                        _ => false,
                    },
                    _ => false,
                };
                if convertible {
                    *unit_rows.entry(file).or_default() += 1;
                }
                twin.insert((date.into(), file.into(), id_of(&row, file)), row);
            }
        }
    }

    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    for date in DATES {
        let batch = heavy.batch("raw", date);
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(batch.join("_manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["defects"], "heavy");
        let labelled: Vec<serde_json::Value> = labels(&batch);
        let mut labelled_lines: HashMap<String, Vec<u64>> = HashMap::new();
        let mut parsed: HashMap<String, BTreeMap<u64, HashMap<String, Option<String>>>> =
            HashMap::new();
        for label in &labelled {
            let (file, kind) = (
                label["file"].as_str().unwrap(),
                label["kind"].as_str().unwrap(),
            );
            let line = label["line"].as_u64().unwrap();
            labelled_lines.entry(file.into()).or_default().push(line);
            *counts.entry((kind.into(), file.into())).or_default() += 1;
            let raw = || std::fs::read(batch.join(file)).unwrap();
            match kind {
                "bom_crlf" => {
                    let raw = raw();
                    assert!(raw.starts_with("\u{feff}".as_bytes()), "{date} {file}");
                    assert!(
                        raw.windows(2)
                            .filter(|w| w[1] == b'\n')
                            .all(|w| w[0] == b'\r'),
                        "{date} {file}: not CRLF throughout"
                    );
                    continue;
                }
                "schema_drift" => {
                    let entry = manifest["files"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|f| f["name"] == file)
                        .unwrap();
                    let raw = raw();
                    let text = String::from_utf8_lossy(&raw);
                    let header = text
                        .trim_start_matches('\u{feff}')
                        .lines()
                        .next()
                        .unwrap()
                        .trim_end_matches('\r')
                        .to_string();
                    let columns: Vec<&str> = entry["columns"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap())
                        .collect();
                    assert_eq!(header, columns.join(","), "{date} {file}");
                    assert_ne!(
                        entry["schema_version"], "2.0.0",
                        "{date} {file}: drift not announced"
                    );
                    continue;
                }
                _ => {}
            }
            let file_rows = parsed
                .entry(file.to_string())
                .or_insert_with(|| rows(&batch, file));
            let row = &file_rows[&line];
            let key = label["key"].as_str().unwrap();
            assert_eq!(id_of(row, file), key, "{date} {file} line {line} {kind}");
            let column = label["column"].as_str();
            let original = label["original_batch"].as_str().unwrap_or(date);
            let clean_id = if kind == "duplicate_new_id" {
                label["clean"].as_str().unwrap()
            } else {
                key
            };
            let clean_row = twin
                .get(&(original.into(), file.into(), clean_id.into()))
                .unwrap_or_else(|| panic!("{date} {file} {kind}: no clean row {clean_id}"));
            match kind {
                "duplicate_exact" | "late_arrival" => {
                    assert_eq!(row, clean_row, "{date} {file} line {line} {kind}")
                }
                "duplicate_new_id" => {
                    let strip = |r: &HashMap<String, Option<String>>| {
                        let mut r = r.clone();
                        r.remove(column.unwrap());
                        r
                    };
                    assert_eq!(strip(row), strip(clean_row), "{date} {file} {kind}");
                }
                _ => {
                    let column = column.unwrap();
                    let clean_value = clean_row[column].clone();
                    assert_eq!(
                        label["clean"].as_str().map(String::from),
                        clean_value,
                        "{date} {file} line {line} {kind}: the label's clean value"
                    );
                    if kind == "number_format" && row[column] == clean_value {
                        // A quoted number: the same value, in quotes.
                        let raw = raw();
                        let text = String::from_utf8_lossy(&raw);
                        let physical = text.lines().nth(line as usize - 1).unwrap();
                        let value = clean_value.clone().unwrap();
                        assert!(
                            physical.contains(&format!("\"{value}\"")),
                            "{date} {file} line {line}: {physical}"
                        );
                    } else {
                        assert_ne!(row[column], clean_value, "{date} {file} line {line} {kind}");
                    }
                    // Only that column changed (a corrected lab's flag follows its value).
                    for (name, value) in row {
                        if name != column && !(kind == "correction" && name == "abnormal_flag") {
                            assert_eq!(
                                Some(value),
                                clean_row.get(name),
                                "{date} {file} line {line} {kind}: {name} changed too"
                            );
                        }
                    }
                }
            }
        }
        // Clean rows stay as they were.
        for file in FILES {
            let spoiled = labelled_lines.get(file).cloned().unwrap_or_default();
            let file_rows = parsed.remove(file).unwrap_or_else(|| rows(&batch, file));
            for (line, row) in file_rows {
                if spoiled.contains(&line) {
                    continue;
                }
                let id = id_of(&row, file);
                assert_eq!(
                    Some(&row),
                    twin.get(&(date.into(), file.into(), id.clone())),
                    "{date} {file} line {line} ({id}) is unlabelled but not clean"
                );
            }
        }
        let out = heavy.ok(&["validate", batch.to_str().unwrap()]);
        assert!(out.contains("the labels agree"), "{out}");
    }
    let out = heavy.ok(&["validate", "--feed", "data/raw"]);
    assert!(out.contains("the labels agree"), "{out}");
    assert!(!out.contains("UNLABELLED") && !out.contains("NOT FOUND"));

    // Rows still held at the week's end count towards their kind's rate.
    let ledger: serde_json::Value =
        serde_json::from_slice(&std::fs::read(heavy.state("raw").join("defects.json")).unwrap())
            .unwrap();
    assert_eq!(ledger["profile"], "heavy");
    for p in ledger["pending"].as_array().unwrap() {
        let file = match p["dataset"].as_str().unwrap() {
            "notes" => "notes.jsonl".to_string(),
            d => format!("{d}.csv"),
        };
        *counts
            .entry((p["kind"].as_str().unwrap().into(), file))
            .or_default() += 1;
    }

    // Each kind at its rate: row kinds per row of the files they apply to
    // (a unit error per row it can apply to); file kinds per file and batch.
    for kind in ROW_KINDS {
        let mut seen = 0;
        for file in FILES {
            let n = counts
                .get(&(kind.to_string(), file.to_string()))
                .copied()
                .unwrap_or(0);
            seen += n;
            let eligible = if kind == "unit_error" {
                unit_rows.get(file).copied().unwrap_or(0)
            } else {
                clean_rows[file]
            };
            let expected = HEAVY_ROW_RATE * eligible as f64;
            if n == 0 || expected < 40.0 {
                continue;
            }
            let share = n as f64 / expected;
            assert!(
                (0.7..=1.3).contains(&share),
                "{kind} in {file}: {n} rows, {expected:.0} expected at the heavy rate"
            );
        }
        assert!(seen > 0, "{kind} never appeared");
    }
    let csv_files = 4.0 * DATES.len() as f64;
    for (kind, rate) in [
        ("bom_crlf", HEAVY_BOM_RATE),
        ("schema_drift", HEAVY_DRIFT_RATE),
    ] {
        let n: usize = counts
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|(_, n)| n)
            .sum();
        let expected = rate * csv_files;
        assert!(
            n >= 1 && (n as f64) <= expected * 2.5,
            "{kind}: {n} files, {expected:.1} expected"
        );
    }
}

#[test]
fn none_writes_no_truth_and_defects_are_the_same_for_any_thread_count() {
    let clean = Sandbox::new();
    clean.ok(&["generate", "--mode", "sample", "--date", FROM]);
    assert!(!clean.batch("sample", FROM).join("_defects.jsonl").exists());
    assert!(!clean.state("sample").join("defects.json").exists());

    let mut digests = Vec::new();
    for threads in ["1", "2", "8"] {
        let sb = Sandbox::new();
        sb.ok(&[
            "--threads",
            threads,
            "generate",
            "--mode",
            "raw",
            "--from",
            FROM,
            "--to",
            "2026-03-04",
            "--defects",
            "heavy",
        ]);
        digests.push(sb.digests());
    }
    assert!(digests[0].keys().any(|p| p.ends_with("_defects.jsonl")));
    assert_eq!(digests[0], digests[1], "1 thread and 2 differ");
    assert_eq!(digests[0], digests[2], "1 thread and 8 differ");
}

#[test]
fn a_profile_belongs_to_its_state() {
    let sb = Sandbox::new();
    sb.ok(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        FROM,
        "--defects",
        "light",
    ]);
    let before = sb.tree();
    for asked in [None, Some("heavy")] {
        let mut args = vec!["generate", "--mode", "sample", "--date", "2026-03-02"];
        args.extend(asked.map(|p| ["--defects", p]).into_iter().flatten());
        let err = sb.fails(&args);
        assert!(
            err.contains("started with the defects profile light")
                && err.contains(&format!("asks for {}", asked.unwrap_or("none"))),
            "{err}"
        );
        assert_eq!(sb.tree(), before, "a refused run wrote something");
    }
    // The committed date asked for again with another profile: refused too.
    let err = sb.fails(&["generate", "--mode", "sample", "--date", FROM]);
    assert!(err.contains("defects profile light"), "{err}");
    sb.ok(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        "2026-03-02",
        "--defects",
        "light",
    ]);

    let err = sb.fails(&[
        "generate",
        "--mode",
        "raw",
        "--date",
        FROM,
        "--defects",
        "messy",
    ]);
    assert!(err.contains("unknown defects profile \"messy\""), "{err}");
    let out = sb.run_with(
        &[("DATAGEN__DEFECTS__RATES__UNIT_ERROR__PATIENTS", "0.1")],
        &[
            "generate",
            "--mode",
            "raw",
            "--date",
            FROM,
            "--defects",
            "custom",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("unit_error does not apply to patients"),
        "{err}"
    );
    assert!(!sb.batch("raw", FROM).exists());
}

#[test]
fn a_custom_table_spoils_only_what_it_names() {
    let sb = Sandbox::new();
    sb.ok_with(
        &[
            ("DATAGEN__DEFECTS__PROFILE", "custom"),
            ("DATAGEN__DEFECTS__RATES__OUT_OF_RANGE__VITALS", "0.05"),
        ],
        &["generate", "--mode", "raw", "--date", FROM],
    );
    let batch = sb.batch("raw", FROM);
    let labels = labels(&batch);
    assert!(labels.len() > 10, "{} labels", labels.len());
    assert!(
        labels
            .iter()
            .all(|l| l["kind"] == "out_of_range" && l["file"] == "vitals.csv")
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(batch.join("_manifest.json")).unwrap()).unwrap();
    assert!(manifest["defects"].as_str().unwrap().starts_with("custom:"));
    sb.ok(&["validate", batch.to_str().unwrap()]);
}

/// Rewrites a batch file and its manifest entry, as a tampering upstream
/// (or a wrong label) would.
fn tamper(batch: &Path, file: &str, edit: impl FnOnce(String) -> String) {
    let text = edit(std::fs::read_to_string(batch.join(file)).unwrap());
    rewrite_in_batch(batch, file, text.as_bytes());
}

#[test]
fn validate_reports_an_unlabelled_problem_and_a_label_it_cannot_find() {
    let sb = Sandbox::new();
    week(&sb, &["--defects", "heavy"]);
    let batch = sb.batch("raw", "2026-03-02");
    // A label dropped: its problem is found and unlabelled.
    let dropped = labels(&batch)
        .into_iter()
        .find(|l| l["kind"] == "out_of_range")
        .unwrap();
    tamper(&batch, "_defects.jsonl", |text| {
        let line = serde_json::to_string(&dropped).unwrap();
        text.lines()
            .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap() != dropped)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replace(&format!("{line}\n"), "")
    });
    // A label for a line that is clean.
    tamper(&batch, "_defects.jsonl", |text| {
        format!(
            "{text}{}\n",
            r#"{"file":"vitals.csv","line":2,"key":"x","column":"heart_rate","kind":"unit_error","clean":"80","original_batch":null}"#
        )
    });
    let out = sb.run(&["validate", batch.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "vitals.csv line {}: out_of_range (UNLABELLED)",
            dropped["line"]
        )) || stdout.contains(&format!(
            "labs.csv line {}: out_of_range (UNLABELLED)",
            dropped["line"]
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("vitals.csv line 2: unit_error (labelled, NOT FOUND)"),
        "{stdout}"
    );
}

#[test]
fn score_gives_recall_and_precision_per_kind() {
    let sb = Sandbox::new();
    week(&sb, &["--defects", "heavy"]);
    // A pipeline that flags every exact duplicate (by line) and every
    // orphan (by key), plus one clean row.
    let mut found = String::new();
    let mut expected = (0u64, 0u64);
    for date in DATES {
        for label in labels(&sb.batch("raw", date)) {
            match label["kind"].as_str().unwrap() {
                "duplicate_exact" => {
                    expected.0 += 1;
                    found.push_str(&format!(
                        "{{\"batch\":\"{date}\",\"file\":{},\"line\":{}}}\n",
                        label["file"], label["line"]
                    ));
                }
                "orphan_reference" => {
                    expected.1 += 1;
                    found.push_str(&format!(
                        "{{\"file\":\"{date}/{}\",\"key\":{}}}\n",
                        label["file"].as_str().unwrap(),
                        label["key"]
                    ));
                }
                _ => {}
            }
        }
    }
    found.push_str(
        "{\"batch\":\"2026-03-01\",\"file\":\"vitals.csv\",\"line\":2,\"kind\":\"out_of_range\"}\n",
    );
    std::fs::write(sb.path().join("found.jsonl"), &found).unwrap();
    let out = sb.ok(&[
        "score",
        "--truth",
        "data/raw",
        "--found",
        "found.jsonl",
        "--json",
    ]);
    let score: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(score["kinds"]["duplicate_exact"]["recall"], 1.0);
    assert_eq!(
        score["kinds"]["duplicate_exact"]["caught"], expected.0,
        "{out}"
    );
    assert_eq!(score["kinds"]["orphan_reference"]["recall"], 1.0);
    assert_eq!(score["kinds"]["out_of_range"]["caught"], 0);
    assert_eq!(score["kinds"]["out_of_range"]["false_alarms"], 1);
    assert_eq!(score["kinds"]["out_of_range"]["precision"], 0.0);
    assert_eq!(score["false_alarms"], 1);
    let flagged = expected.0 + expected.1 + 1;
    assert_eq!(score["flagged"], flagged);
    let table = sb.ok(&["score", "--truth", "data/raw", "--found", "found.jsonl"]);
    assert!(
        table.contains("duplicate_exact") && table.contains("100.0%"),
        "{table}"
    );

    // The README's example: a naive DuckDB loader's rejects and flags,
    // scored. It catches what a typed load and a few checks can.
    if let Some(python) = crate::feed::python_with_duckdb() {
        let loader = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/loader/naive_loader.py");
        let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
        let status = std::process::Command::new(python)
            .current_dir(sb.path())
            .args([loader, "data/raw", schemas, "loader.jsonl"])
            .status()
            .unwrap();
        assert!(status.success());
        let out = sb.ok(&[
            "score",
            "--truth",
            "data/raw",
            "--found",
            "loader.jsonl",
            "--json",
        ]);
        let score: serde_json::Value = serde_json::from_str(&out).unwrap();
        let recall = |kind: &str| score["kinds"][kind]["recall"].as_f64().unwrap();
        // A typed load rejects impossible and missing values and bad
        // timestamps; it cannot see case or spaces.
        assert!(recall("out_of_range") > 0.5, "{out}");
        assert!(recall("missing_required") > 0.5, "{out}");
        assert!(recall("timestamp_format") > 0.1, "{out}");
        assert_eq!(recall("enum_case"), 0.0, "{out}");
        assert_eq!(recall("whitespace"), 0.0, "{out}");
        assert!(score["precision"].as_f64().unwrap() > 0.9, "{out}");
    }

    // Bad input: a clean folder, and a list without line or key.
    let clean = Sandbox::new();
    clean.ok(&["generate", "--mode", "sample", "--date", FROM]);
    std::fs::write(clean.path().join("found.jsonl"), "").unwrap();
    let err = clean.fails(&["score", "--truth", "data/sample", "--found", "found.jsonl"]);
    assert!(err.contains("has no _defects.jsonl"), "{err}");
    std::fs::write(sb.path().join("bad.jsonl"), "{\"file\":\"vitals.csv\"}\n").unwrap();
    let err = sb.fails(&["score", "--truth", "data/raw", "--found", "bad.jsonl"]);
    assert!(err.contains("needs \"line\" or \"key\""), "{err}");
}

#[test]
fn a_run_killed_at_any_step_with_rows_pending_recovers_to_the_same_bytes() {
    let days = ["2026-03-01", "2026-03-02", "2026-03-03"];
    let args = |date: &'static str| -> Vec<&'static str> {
        vec![
            "generate",
            "--mode",
            "raw",
            "--date",
            date,
            "--defects",
            "heavy",
        ]
    };
    let reference = Sandbox::new();
    for d in days {
        reference.ok(&args(d));
    }
    let expected = reference.digests();
    for point in CRASH_POINTS {
        let sb = Sandbox::new();
        sb.ok(&args(days[0]));
        let pending: serde_json::Value =
            serde_json::from_slice(&std::fs::read(sb.state("raw").join("defects.json")).unwrap())
                .unwrap();
        assert!(
            !pending["pending"].as_array().unwrap().is_empty(),
            "no rows pending after the first day"
        );
        let mut child = sb.spawn_paused(point, &args(days[1]));
        child.kill().unwrap();
        child.wait().unwrap();
        let out = sb.command().args(args(days[1])).output().unwrap();
        assert!(
            out.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        sb.ok(&args(days[2]));
        assert_eq!(
            sb.digests(),
            expected,
            "{point}: bytes differ from an uninterrupted run"
        );
    }
}

#[test]
fn state_rebuild_restores_the_rows_pending_and_the_profile() {
    let sb = Sandbox::new();
    sb.ok(&[
        "generate",
        "--mode",
        "sample",
        "--from",
        FROM,
        "--to",
        "2026-03-03",
        "--defects",
        "heavy",
    ]);
    let before = sb.digests();
    assert!(
        before
            .keys()
            .any(|p| p.ends_with("state/sample/defects.json"))
    );
    std::fs::remove_dir_all(sb.state("sample")).unwrap();
    sb.ok(&["state", "rebuild", "--mode", "sample"]);
    assert_eq!(sb.digests(), before, "the rebuilt state differs");
    sb.ok(&[
        "generate",
        "--mode",
        "sample",
        "--date",
        "2026-03-04",
        "--defects",
        "heavy",
    ]);
}
