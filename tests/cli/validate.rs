//! `datagen validate` catches what a consumer must not load, naming the file,
//! the line and the rule.

use crate::helpers::Sandbox;

fn batch() -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    sb.generate("sample", "2026-02-09", &[]);
    let dir = sb.batch("sample", "2026-02-09");
    (sb, dir)
}

#[test]
fn a_changed_byte_fails_the_checksum() {
    let (sb, dir) = batch();
    let path = dir.join("vitals.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("-V001,", "-V001 ,", 1)).unwrap();
    let err = sb.fails(&["validate", dir.to_str().unwrap()]);
    assert!(
        err.contains("vitals.csv") && err.contains("sha256"),
        "{err}"
    );
}

/// Rewrites a file and fixes its manifest entry, as a careless producer
/// would, so only the content rules can catch it.
fn tamper(dir: &std::path::Path, file: &str, edit: impl Fn(&str) -> String) {
    use sha2::Digest;
    let path = dir.join(file);
    let text = edit(&std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &text).unwrap();
    let manifest_path = dir.join("_manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for entry in manifest["files"].as_array_mut().unwrap() {
        if entry["name"] == file {
            entry["bytes"] = text.len().into();
            entry["sha256"] = hex::encode(sha2::Sha256::digest(text.as_bytes())).into();
        }
    }
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

#[test]
fn schema_violations_name_file_line_and_column() {
    let (sb, dir) = batch();
    tamper(&dir, "vitals.csv", |text| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let mut fields: Vec<String> = lines[3].split(',').map(String::from).collect();
        fields[4] = "400".into();
        lines[3] = fields.join(",");
        lines.join("\n") + "\n"
    });
    let err = sb.fails(&["validate", dir.to_str().unwrap()]);
    assert!(
        err.contains("vitals.csv line 4") && err.contains("heart_rate") && err.contains("400"),
        "{err}"
    );
}

#[test]
fn broken_links_and_counts_are_caught() {
    let (sb, dir) = batch();
    tamper(&dir, "patients.csv", |text| {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(1);
        lines.join("\n") + "\n"
    });
    let err = sb.fails(&["validate", dir.to_str().unwrap()]);
    assert!(
        err.contains("patients.csv") && err.contains("rows, the manifest says"),
        "{err}"
    );
    assert!(err.contains("is not in patients.csv"), "{err}");
}

#[test]
fn a_missing_manifest_or_stray_file_is_reported() {
    let (sb, dir) = batch();
    std::fs::write(dir.join("extra.csv"), "x\n").unwrap();
    let err = sb.fails(&["validate", dir.to_str().unwrap()]);
    assert!(
        err.contains("extra.csv") && err.contains("not listed"),
        "{err}"
    );
    std::fs::remove_file(dir.join("_manifest.json")).unwrap();
    let err = sb.fails(&["validate", dir.to_str().unwrap()]);
    assert!(err.contains("_manifest.json"), "{err}");
}

#[test]
fn a_lab_flag_that_disagrees_with_its_value_is_caught() {
    let (sb, dir) = batch_with_labs();
    tamper(&dir, "labs.csv", |text| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        // Flip the flag of the first normal result.
        let i = lines.iter().position(|l| l.contains(",N,")).unwrap();
        lines[i] = lines[i].replacen(",N,", ",HH,", 1);
        lines.join("\n") + "\n"
    });
    let err = sb.fails(&["validate", dir.to_str().unwrap()]);
    assert!(
        err.contains("labs.csv line") && err.contains("abnormal_flag HH disagrees"),
        "{err}"
    );
}

/// Rules that come from the catalog published in labs.schema.json: a test's
/// name and unit, its decimals, and the reference range for the patient's sex.
#[test]
fn lab_rows_that_break_the_published_catalog_are_caught() {
    type Edit = fn(&str) -> String;
    let cases: [(&str, Edit, &str); 4] = [
        (
            "a sodium row named potassium",
            |line| line.replacen(",Sodium,", ",Potassium,", 1),
            "column test_name",
        ),
        (
            "a sodium value with a decimal",
            |line| {
                let mut fields: Vec<String> = line.split(',').map(String::from).collect();
                fields[5] = format!("{}.0", fields[5]);
                fields.join(",")
            },
            "has 1 decimals; the catalog reports it with 0",
        ),
        (
            "a reference range off the catalog",
            |line| line.replacen(",135,145,", ",136,145,", 1),
            "reference_low",
        ),
        (
            "a sodium value outside its plausible range",
            |line| {
                let mut fields: Vec<String> = line.split(',').map(String::from).collect();
                fields[5] = "190".into();
                fields.join(",")
            },
            "column value",
        ),
    ];
    for (what, edit, expected) in cases {
        let (sb, dir) = batch_with_labs();
        tamper(&dir, "labs.csv", |text| {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            let i = lines
                .iter()
                .position(|l| l.contains(",2951-2,Sodium,"))
                .unwrap();
            lines[i] = edit(&lines[i]);
            lines.join("\n") + "\n"
        });
        let err = sb.fails(&["validate", dir.to_str().unwrap()]);
        assert!(
            err.contains("labs.csv line") && err.contains(expected),
            "{what}: {err}"
        );
    }

    // Hemoglobin's range follows the patient's sex: a man's row with a
    // woman's range is caught.
    let (sb, dir) = batch_with_labs();
    let patients = std::fs::read_to_string(dir.join("patients.csv")).unwrap();
    let men: Vec<&str> = patients
        .lines()
        .filter(|l| l.split(',').nth(4) == Some("male"))
        .map(|l| l.split(',').next().unwrap())
        .collect();
    tamper(&dir, "labs.csv", |text| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let i = lines
            .iter()
            .position(|l| l.contains(",718-7,") && men.iter().any(|m| l.contains(m)))
            .unwrap();
        lines[i] = lines[i].replacen(",13.5,17.5,", ",12.0,15.5,", 1);
        lines.join("\n") + "\n"
    });
    let err = sb.fails(&["validate", dir.to_str().unwrap()]);
    assert!(err.contains("for a male patient"), "{err}");
}

/// A batch holds what happened on its date: a note from another day, one
/// written before its encounter began, or one that is not JSON is caught.
#[test]
fn a_note_off_its_day_or_outside_its_encounter_or_not_json_is_caught() {
    let (sb, dir) = batch_with_labs();
    let encounters = crate::helpers::read_csv(&dir.join("encounters.csv"));
    // An encounter admitted during the batch day, after its first minute.
    let late = encounters
        .rows
        .iter()
        .find(|e| e["admit_time"].starts_with("2026-02-09T1"))
        .unwrap();
    tamper(&dir, "notes.jsonl", |text| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let mut note: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        note["authored_at"] = "1999-01-01T00:00:00Z".into();
        lines[0] = note.to_string();
        lines[1] = "{not json".into();
        let i = 2 + lines[2..]
            .iter()
            .position(|l| l.contains(&format!("\"{}\"", late["encounter_id"])))
            .unwrap();
        let mut note: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
        note["authored_at"] = "2026-02-09T00:01:00Z".into();
        lines[i] = note.to_string();
        lines.join("\n") + "\n"
    });
    let err = sb.fails(&["validate", dir.to_str().unwrap()]);
    assert!(
        err.contains("notes.jsonl line 1")
            && err.contains("authored_at is not on the batch date 2026-02-09"),
        "{err}"
    );
    assert!(
        err.contains("notes.jsonl line 2") && err.contains("not a JSON object"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "authored_at is before encounter {}'s admission",
            late["encounter_id"]
        )),
        "{err}"
    );
}

fn batch_with_labs() -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    sb.generate("raw", "2026-02-09", &["--encounters", "300"]);
    let dir = sb.batch("raw", "2026-02-09");
    (sb, dir)
}

const FEED: [&str; 4] = ["2026-02-08", "2026-02-09", "2026-02-10", "2026-02-11"];

/// Four raw days of a small facility (a few hundred patients of its own),
/// so that patients come back within the feed.
fn feed() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok_with(
        &[("DATAGEN__VOLUMES__RAW__POPULATION", "300")],
        &[
            "generate",
            "--mode",
            "raw",
            "--from",
            FEED[0],
            "--to",
            FEED[3],
            "--encounters",
            "300",
            "--new-patients",
            "100",
        ],
    );
    sb
}

fn encounters(sb: &Sandbox, date: &str) -> Vec<std::collections::HashMap<String, String>> {
    crate::helpers::read_csv(&sb.batch("raw", date).join("encounters.csv")).rows
}

/// The encounters.csv line of `id` in `date`'s batch.
fn encounter_line(sb: &Sandbox, date: &str, id: &str) -> String {
    std::fs::read_to_string(sb.batch("raw", date).join("encounters.csv"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap()
        .to_string()
}

/// Rewrites the first line of `file` in `date`'s batch that contains
/// `needle`, through `edit`; the manifest is fixed.
fn edit_line(sb: &Sandbox, date: &str, file: &str, needle: &str, edit: impl Fn(&str) -> String) {
    tamper(&sb.batch("raw", date), file, |text| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let i = 1 + lines[1..].iter().position(|l| l.contains(needle)).unwrap();
        lines[i] = edit(&lines[i]);
        lines.join("\n") + "\n"
    });
}

/// Appends `line` to `file` in `date`'s batch; the manifest is fixed,
/// its row count included.
fn append_line(sb: &Sandbox, date: &str, file: &str, line: &str) {
    let dir = sb.batch("raw", date);
    tamper(&dir, file, |text| format!("{text}{line}\n"));
    count_one_more_row(&dir, file);
}

fn count_one_more_row(dir: &std::path::Path, file: &str) {
    let path = dir.join("_manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for entry in manifest["files"].as_array_mut().unwrap() {
        if entry["name"] == file {
            entry["rows"] = (entry["rows"].as_u64().unwrap() + 1).into();
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

/// The feed's own rules, each broken once in an otherwise valid feed: every
/// batch alone still passes, and `validate --feed` names the rule.
#[test]
fn a_feed_that_breaks_the_upsert_rules_is_caught() {
    let sb = feed();
    let out = sb.ok(&["validate", "--feed", "data/raw"]);
    assert!(out.starts_with("valid feed data/raw: 4 batches"), "{out}");
    // The folder above the modes, or none at all, is not a feed.
    let err = sb.fails(&["validate", "--feed", "data"]);
    assert!(err.contains("data: holds no batches"), "{err}");
    let err = sb.fails(&["validate", "--feed", "data/nothing"]);
    assert!(err.contains("data/nothing: cannot be read"), "{err}");

    type Break = fn(&Sandbox) -> String;
    let cases: [(&str, Break); 10] = [
        ("a finished encounter sent again", |sb| {
            let first = encounters(sb, FEED[0]);
            let done = first
                .iter()
                .find(|e| e["status"] == "finished" && e["discharge_time"].starts_with(FEED[0]))
                .unwrap();
            let line = encounter_line(sb, FEED[0], &done["encounter_id"]);
            // Finished again the next day, as a row of that day.
            let mut f: Vec<String> = line.split(',').map(String::from).collect();
            for i in [7, 10] {
                f[i] = f[i].replacen(FEED[0], FEED[1], 1);
            }
            append_line(sb, FEED[1], "encounters.csv", &f.join(","));
            // Its patient, in that day's snapshot too.
            let patient = &done["patient_id"];
            let next =
                std::fs::read_to_string(sb.batch("raw", FEED[1]).join("patients.csv")).unwrap();
            if !next.contains(&format!("\n{patient},")) {
                let row = std::fs::read_to_string(sb.batch("raw", FEED[0]).join("patients.csv"))
                    .unwrap()
                    .lines()
                    .find(|l| l.starts_with(&format!("{patient},")))
                    .unwrap()
                    .to_string();
                let row = match row.rsplit_once(',') {
                    Some((head, _)) => format!("{head},{}", FEED[1]),
                    None => row,
                };
                append_line(sb, FEED[1], "patients.csv", &row);
            }
            format!("encounter {} was already finished", done["encounter_id"])
        }),
        ("an open encounter sent open again", |sb| {
            let first = encounters(sb, FEED[0]);
            let open = first
                .iter()
                .find(|e| {
                    e["status"] == "in_progress"
                        && !encounters(sb, FEED[1])
                            .iter()
                            .any(|l| l["encounter_id"] == e["encounter_id"])
                })
                .unwrap();
            let line = encounter_line(sb, FEED[0], &open["encounter_id"]);
            append_line(sb, FEED[1], "encounters.csv", &line);
            format!(
                "encounter {} is sent in_progress twice",
                open["encounter_id"]
            )
        }),
        ("a vital of an encounter the feed has not sent yet", |sb| {
            let later = encounters(sb, FEED[3]);
            let new = later
                .iter()
                .find(|e| e["admit_time"].starts_with(FEED[3]))
                .unwrap();
            let id = new["encounter_id"].clone();
            // Day 2's first vital, moved to an encounter that begins on day 4.
            edit_line(sb, FEED[1], "vitals.csv", "-V", move |l| {
                let mut f: Vec<String> = l.split(',').map(String::from).collect();
                f[0] = format!("{id}-V999");
                f[1] = id.clone();
                f.join(",")
            });
            "has not appeared in this or an earlier batch".into()
        }),
        ("a vital after the discharge an earlier batch sent", |sb| {
            let first = encounters(sb, FEED[0]);
            let done = first
                .iter()
                .find(|e| e["status"] == "finished" && e["encounter_type"] == "inpatient")
                .unwrap();
            let (id, patient) = (done["encounter_id"].clone(), done["patient_id"].clone());
            // The patient joins day 2's snapshot, and a vital of the
            // finished stay is measured on day 2.
            let day1 = sb.batch("raw", FEED[0]);
            let snapshot = std::fs::read_to_string(day1.join("patients.csv")).unwrap();
            let row = snapshot.lines().find(|l| l.starts_with(&patient)).unwrap();
            let row = format!("{},{}", row.rsplit_once(',').unwrap().0, FEED[1]);
            let day2 =
                std::fs::read_to_string(sb.batch("raw", FEED[1]).join("patients.csv")).unwrap();
            if !day2.contains(&patient) {
                append_line(sb, FEED[1], "patients.csv", &row);
            }
            let vitals =
                std::fs::read_to_string(sb.batch("raw", FEED[1]).join("vitals.csv")).unwrap();
            let mut f: Vec<String> = vitals
                .lines()
                .nth(1)
                .unwrap()
                .split(',')
                .map(String::from)
                .collect();
            f[0] = format!("{id}-V999");
            f[1] = id.clone();
            f[2] = patient;
            append_line(sb, FEED[1], "vitals.csv", &f.join(","));
            format!("measured_at is after encounter {id}'s discharge")
        }),
        ("a link to an emergency visit that never appeared", |sb| {
            let day = FEED
                .iter()
                .find(|d| {
                    encounters(sb, d)
                        .iter()
                        .any(|e| !e["source_encounter_id"].is_empty())
                })
                .unwrap();
            let rows = encounters(sb, day);
            let stay = rows
                .iter()
                .find(|e| !e["source_encounter_id"].is_empty())
                .unwrap();
            let source = stay["source_encounter_id"].clone();
            edit_line(sb, day, "encounters.csv", &format!(",{source}"), |l| {
                l.replacen(&format!(",{source}"), ",E0999999999", 1)
            });
            format!(
                "{}'s source_encounter_id E0999999999 never appeared",
                stay["encounter_id"]
            )
        }),
        ("a patient back after dying", |sb| {
            // A patient with a finished encounter and a later one: the first
            // now ends in death.
            let mut first_end: std::collections::HashMap<String, (String, String)> =
                std::collections::HashMap::new();
            for date in FEED {
                for e in encounters(sb, date) {
                    if let Some((day, id)) = first_end.get(&e["patient_id"])
                        && day.as_str() < date
                        && e["admit_time"].starts_with(date)
                    {
                        let (day, id) = (day.clone(), id.clone());
                        edit_line(sb, &day, "encounters.csv", &id, |l| {
                            let mut f: Vec<String> = l.split(',').map(String::from).collect();
                            f[8] = "expired".into();
                            f.join(",")
                        });
                        return format!(
                            "encounters.csv across the batches: patient {} died, and",
                            e["patient_id"]
                        );
                    }
                    if e["status"] == "finished" && e["encounter_type"] == "outpatient" {
                        first_end
                            .entry(e["patient_id"].clone())
                            .or_insert((date.to_string(), e["encounter_id"].clone()));
                    }
                }
            }
            panic!("no returning patient in the feed");
        }),
        ("two encounters of one patient at once", |sb| {
            // A patient's second encounter of a day now begins with the first.
            for date in FEED {
                let rows = encounters(sb, date);
                let admitted: Vec<_> = rows
                    .iter()
                    .filter(|e| e["admit_time"].starts_with(date))
                    .collect();
                for (i, a) in admitted.iter().enumerate() {
                    if let Some(b) = admitted[i + 1..].iter().find(|b| {
                        b["patient_id"] == a["patient_id"]
                            && b["source_encounter_id"] != a["encounter_id"]
                    }) {
                        let (start, id) = (a["admit_time"].clone(), b["encounter_id"].clone());
                        let open = b["status"] == "in_progress";
                        edit_line(sb, date, "encounters.csv", &id, move |l| {
                            let mut f: Vec<String> = l.split(',').map(String::from).collect();
                            f[6] = start.clone();
                            if open {
                                f[10] = start.clone();
                            }
                            f.join(",")
                        });
                        return format!(
                            "patient {}'s encounters {} and {} overlap",
                            a["patient_id"], a["encounter_id"], b["encounter_id"]
                        );
                    }
                }
            }
            panic!("no patient with two encounters on one day");
        }),
        ("an open encounter with a discharge", |sb| {
            let rows = encounters(sb, FEED[1]);
            let open = rows.iter().find(|e| e["status"] == "in_progress").unwrap();
            let id = open["encounter_id"].clone();
            edit_line(sb, FEED[1], "encounters.csv", &id, |l| {
                let mut f: Vec<String> = l.split(',').map(String::from).collect();
                f[7] = format!("{}T23:59:00Z", FEED[1]);
                f[8] = "home".into();
                f.join(",")
            });
            "column discharge_time: \"2026-02-09T23:59:00Z\" is not of type \"null\"".into()
        }),
        ("a vital ID sent again in a later batch", |sb| {
            let vitals =
                std::fs::read_to_string(sb.batch("raw", FEED[0]).join("vitals.csv")).unwrap();
            // A vital of a stay still in the house the next day, sent again
            // with the next day's time.
            let next =
                std::fs::read_to_string(sb.batch("raw", FEED[1]).join("vitals.csv")).unwrap();
            let line = vitals
                .lines()
                .skip(1)
                .find(|l| {
                    let encounter = l.split(',').nth(1).unwrap();
                    next.contains(&format!(",{encounter},"))
                })
                .unwrap();
            let mut f: Vec<String> = line.split(',').map(String::from).collect();
            let (id, encounter) = (f[0].clone(), f[1].clone());
            f[3] = format!("{}T00:00:00Z", FEED[1]);
            // Just before the encounter's first vital of the day, so the
            // day's own sequence still counts up.
            let repeated = f.join(",");
            tamper(&sb.batch("raw", FEED[1]), "vitals.csv", |text| {
                let mut lines: Vec<&str> = text.lines().collect();
                let at = lines
                    .iter()
                    .position(|l| l.starts_with(&format!("{encounter}-V")))
                    .unwrap();
                lines.insert(at, &repeated);
                lines.join("\n") + "\n"
            });
            count_one_more_row(&sb.batch("raw", FEED[1]), "vitals.csv");
            format!("{id} repeats an ID of an earlier batch")
        }),
        ("a day missing from the feed", |sb| {
            std::fs::remove_dir_all(sb.batch("raw", FEED[2])).unwrap();
            format!(
                "{}: follows {}: the days in between are missing",
                FEED[3], FEED[1]
            )
        }),
    ];
    for (what, break_it) in cases {
        let sb = feed();
        let expected = break_it(&sb);
        let err = sb.fails(&["validate", "--feed", "data/raw"]);
        assert!(
            err.contains(&expected),
            "{what}: expected {expected:?} in {err}"
        );
        // A row its schema refuses is not taken in, so the rows of its
        // encounter are reported too; every other break is one problem.
        if what != "an open encounter with a discharge" {
            assert!(
                err.contains("(1 problem)"),
                "{what}: one problem only: {err}"
            );
        }
    }
}
