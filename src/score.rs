//! `datagen score`: how much of the labelled mess a pipeline under test
//! caught. It reads the ground truth of a batch (or of every batch of a
//! mode's folder) and the pipeline's own list of the rows it rejected or
//! flagged, and gives recall per kind (labelled defects it flagged) and
//! precision (flags that are defects).
//!
//! The list is JSON Lines, one flagged row per line:
//! `{"file": "vitals.csv", "line": 12}` or `{"file": "vitals.csv", "key":
//! "E0000000001-V003"}`, with `"batch": "2026-03-02"` when scoring a mode's
//! folder (or `"file": "2026-03-02/vitals.csv"`), and optionally the
//! `"kind"` the pipeline thinks it is (which attributes its false alarms).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::defects::{Kind, Label};
use crate::validate::read_labels;

/// One line of the pipeline's list.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flagged {
    #[serde(default)]
    pub batch: Option<String>,
    pub file: String,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub kind: Option<Kind>,
}

/// Recall and precision of one kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindScore {
    /// Defects of this kind in the truth.
    pub labelled: u64,
    /// Of those, flagged by the pipeline.
    pub caught: u64,
    /// Flags that claimed this kind and matched no defect.
    pub false_alarms: u64,
    pub recall: Option<f64>,
    pub precision: Option<f64>,
}

/// The whole score.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Score {
    pub kinds: BTreeMap<Kind, KindScore>,
    pub labelled: u64,
    pub caught: u64,
    pub flagged: u64,
    /// Flags that matched no defect (all of them, kind claimed or not).
    pub false_alarms: u64,
    pub recall: Option<f64>,
    pub precision: Option<f64>,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Reads the ground truth under `truth`: a batch folder, or a mode's folder
/// of batches; labels keyed by batch (empty for a single batch).
pub fn read_truth(truth: &Path) -> Result<Vec<(String, Label)>, String> {
    let single = truth.join(crate::manifest::MANIFEST_FILE).exists();
    let batches: Vec<(String, std::path::PathBuf)> = if single {
        vec![(String::new(), truth.to_path_buf())]
    } else {
        let mut dates: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(truth)
            .map_err(|e| format!("{}: cannot be read: {e}", truth.display()))?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                name.parse::<crate::model::BatchDate>().ok()?;
                Some((name, e.path()))
            })
            .collect();
        dates.sort();
        dates
    };
    if batches.is_empty() {
        return Err(format!(
            "{} holds no batch: give a batch folder (data/raw/2026-03-02) or a mode's folder (data/raw)",
            truth.display()
        ));
    }
    let mut labels = Vec::new();
    let mut any = false;
    for (batch, dir) in batches {
        let path = dir.join("_defects.jsonl");
        if !path.exists() {
            continue;
        }
        any = true;
        for label in read_labels(&path).map_err(|e| format!("{}: {e}", path.display()))? {
            labels.push((batch.clone(), label));
        }
    }
    if !any {
        return Err(format!(
            "{} has no _defects.jsonl: it was generated without a defects profile (--defects light|heavy|custom)",
            truth.display()
        ));
    }
    Ok(labels)
}

/// Reads the pipeline's list.
pub fn read_flagged(path: &Path) -> Result<Vec<Flagged>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot be read: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let f: Flagged = serde_json::from_str(l)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            if f.line.is_none() && f.key.is_none() {
                return Err(format!(
                    "{} line {}: a flagged row needs \"line\" or \"key\"",
                    path.display(),
                    i + 1
                ));
            }
            Ok(f)
        })
        .collect()
}

/// Scores `flagged` against `truth` (`single`: the truth is one batch).
pub fn score(truth: &[(String, Label)], flagged: &[Flagged], single: bool) -> Score {
    // Where each label is, by line and by key.
    let mut by_line: HashMap<(&str, &str, u64), usize> = HashMap::new();
    let mut by_key: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    for (i, (batch, label)) in truth.iter().enumerate() {
        by_line.insert((batch, &label.file, label.line), i);
        if let Some(key) = &label.key {
            by_key.entry((batch, &label.file, key)).or_default().push(i);
        }
    }
    let mut caught = vec![false; truth.len()];
    let mut result = Score::default();
    for f in flagged {
        let (batch, file) = match (&f.batch, f.file.split_once('/')) {
            (Some(b), _) => (b.as_str(), f.file.as_str()),
            (None, Some((b, file))) if !single => (b, file),
            (None, _) => ("", f.file.as_str()),
        };
        let batch = if single { "" } else { batch };
        let mut hits: Vec<usize> = Vec::new();
        if let Some(line) = f.line
            && let Some(&i) = by_line.get(&(batch, file, line))
        {
            hits.push(i);
        }
        if let Some(key) = &f.key
            && let Some(found) = by_key.get(&(batch, file, key.as_str()))
        {
            hits.extend(found);
        }
        result.flagged += 1;
        if hits.is_empty() {
            result.false_alarms += 1;
            if let Some(kind) = f.kind {
                result.kinds.entry(kind).or_default().false_alarms += 1;
            }
        }
        for i in hits {
            caught[i] = true;
        }
    }
    for ((_, label), caught) in truth.iter().zip(&caught) {
        let k = result.kinds.entry(label.kind).or_default();
        k.labelled += 1;
        result.labelled += 1;
        if *caught {
            k.caught += 1;
            result.caught += 1;
        }
    }
    for k in result.kinds.values_mut() {
        k.recall = ratio(k.caught, k.labelled);
        k.precision = ratio(k.caught, k.caught + k.false_alarms);
    }
    result.recall = ratio(result.caught, result.labelled);
    result.precision = ratio(result.flagged - result.false_alarms, result.flagged);
    result
}

impl Score {
    /// The score as a table, one kind per row.
    pub fn table(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
        let mut out = format!(
            "{:<18} {:>9} {:>7} {:>12} {:>8} {:>10}\n",
            "kind", "labelled", "caught", "false_alarms", "recall", "precision"
        );
        for (kind, k) in &self.kinds {
            out.push_str(&format!(
                "{:<18} {:>9} {:>7} {:>12} {:>8} {:>10}\n",
                kind.as_str(),
                k.labelled,
                k.caught,
                k.false_alarms,
                pct(k.recall),
                pct(k.precision)
            ));
        }
        out.push_str(&format!(
            "{:<18} {:>9} {:>7} {:>12} {:>8} {:>10}\n",
            "all",
            self.labelled,
            self.caught,
            self.false_alarms,
            pct(self.recall),
            pct(self.precision)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(file: &str, line: u64, key: Option<&str>, kind: Kind) -> Label {
        Label {
            file: file.into(),
            line,
            key: key.map(String::from),
            column: None,
            kind,
            clean: None,
            original_batch: None,
        }
    }

    #[test]
    fn flags_match_labels_by_line_or_key() {
        let truth = vec![
            (
                "d1".to_string(),
                label("vitals.csv", 5, Some("E1-V1"), Kind::OutOfRange),
            ),
            (
                "d1".to_string(),
                label("vitals.csv", 9, Some("E1-V2"), Kind::OutOfRange),
            ),
            ("d2".to_string(), label("labs.csv", 1, None, Kind::BomCrlf)),
        ];
        let flag = |batch: Option<&str>, file: &str, line, key: Option<&str>| Flagged {
            batch: batch.map(String::from),
            file: file.into(),
            line,
            key: key.map(String::from),
            kind: None,
        };
        let flagged = vec![
            flag(Some("d1"), "vitals.csv", Some(5), None),
            flag(None, "d1/vitals.csv", None, Some("E1-V2")),
            flag(Some("d1"), "vitals.csv", Some(7), None),
        ];
        let s = score(&truth, &flagged, false);
        assert_eq!(
            (s.labelled, s.caught, s.flagged, s.false_alarms),
            (3, 2, 3, 1)
        );
        assert_eq!(s.kinds[&Kind::OutOfRange].recall, Some(1.0));
        assert_eq!(s.kinds[&Kind::BomCrlf].recall, Some(0.0));
        assert_eq!(s.precision, Some(2.0 / 3.0));
    }
}
