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

#[test]
fn a_note_outside_its_encounter_or_not_json_is_caught() {
    let (sb, dir) = batch_with_labs();
    tamper(&dir, "notes.jsonl", |text| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let mut note: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        note["authored_at"] = "1999-01-01T00:00:00Z".into();
        lines[0] = note.to_string();
        lines[1] = "{not json".into();
        lines.join("\n") + "\n"
    });
    let err = sb.fails(&["validate", dir.to_str().unwrap()]);
    assert!(
        err.contains("notes.jsonl line 1") && err.contains("outside encounter"),
        "{err}"
    );
    assert!(
        err.contains("notes.jsonl line 2") && err.contains("not a JSON object"),
        "{err}"
    );
}

fn batch_with_labs() -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    sb.generate("raw", "2026-02-09", &["--encounters", "300"]);
    let dir = sb.batch("raw", "2026-02-09");
    (sb, dir)
}
