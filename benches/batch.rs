//! Batch benchmark: runs the real `datagen` binary (built with the bench
//! profile) on raw batches and reports, per run, rows per second for each
//! file and for the whole batch, and peak RSS (GNU time's maxresident).
//!
//! `cargo bench --bench batch` prints one JSON object per run, then a table.
//! Vitals, labs and notes are written in one pass; each file's seconds are
//! its own share of that pass.
//! The "dense" run charts inpatients every 30 minutes instead of every 4
//! hours: many more vitals rows for the same encounters, so it shows whether
//! memory grows with vitals rows (it must not: rows are streamed).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

struct Run {
    label: &'static str,
    encounters: u32,
    dense: bool,
}

fn main() {
    let runs = [
        Run {
            label: "raw 12.5k",
            encounters: 12_500,
            dense: false,
        },
        Run {
            label: "raw 50k",
            encounters: 50_000,
            dense: false,
        },
        Run {
            label: "raw 50k dense",
            encounters: 50_000,
            dense: true,
        },
    ];
    let mut table = Vec::new();
    for run in &runs {
        let result = measure(run);
        println!("{}", serde_json::to_string(&result).unwrap_or_default());
        table.push(result);
    }
    println!();
    println!(
        "| run | encounters | vitals rows | vitals rows/s | labs rows | labs rows/s | notes | notes/s | batch rows | batch rows/s | batch s | peak RSS MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &table {
        let file = |name: &str, field: &str| r["files"][name][field].as_f64().unwrap_or(0.0);
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.3} | {:.1} |",
            r["run"].as_str().unwrap_or(""),
            r["encounters"],
            file("vitals.csv", "rows"),
            file("vitals.csv", "rows_per_s"),
            file("labs.csv", "rows"),
            file("labs.csv", "rows_per_s"),
            file("notes.jsonl", "rows"),
            file("notes.jsonl", "rows_per_s"),
            r["batch_rows"].as_f64().unwrap_or(0.0),
            r["batch_rows_per_s"].as_f64().unwrap_or(0.0),
            r["batch_seconds"].as_f64().unwrap_or(0.0),
            r["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
        );
    }
}

fn measure(run: &Run) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args: Vec<String> = Vec::new();
    if run.dense {
        let dense = datagen::config::EMBEDDED_DEFAULTS
            .replace("interval_minutes: 240", "interval_minutes: 30")
            .replace(
                "stable_interval_minutes: 720",
                "stable_interval_minutes: 30",
            )
            .replace("jitter_minutes: 30", "jitter_minutes: 10");
        std::fs::write(dir.path().join("dense.yaml"), dense).expect("write config");
        args.extend(["--config".into(), "dense.yaml".into()]);
    }
    let rss_file = dir.path().join("rss");
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .current_dir(dir.path())
        .env("RUST_LOG", "datagen=debug")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_datagen"))
        .args(&args)
        .args([
            "--log-format",
            "json",
            "generate",
            "--mode",
            "raw",
            "--date",
            "2026-02-09",
        ])
        .args(["--encounters", &run.encounters.to_string()])
        .args(["--new-patients", &(run.encounters * 2 / 5).to_string()])
        .output()
        .expect("run datagen (needs GNU time at /usr/bin/time)");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut files: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut batch_seconds = wall;
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let fields = &event["fields"];
        match fields["message"].as_str() {
            Some("file written") => {
                let name = fields["file"].as_str().unwrap_or("").to_string();
                files.insert(
                    name,
                    (
                        fields["rows"].as_f64().unwrap_or(0.0),
                        fields["seconds"].as_f64().unwrap_or(0.0),
                    ),
                );
            }
            Some("batch committed") => batch_seconds = fields["seconds"].as_f64().unwrap_or(wall),
            _ => {}
        }
    }
    let peak_rss_kib: f64 = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0.0);
    let (vitals_rows, vitals_seconds) = files.get("vitals.csv").copied().unwrap_or_default();
    let batch_rows: f64 = files.values().map(|(rows, _)| rows).sum();
    let mut per_file = serde_json::Map::new();
    for (name, (rows, seconds)) in &files {
        per_file.insert(
            name.clone(),
            serde_json::json!({ "rows": rows, "seconds": seconds, "rows_per_s": (rows / seconds.max(1e-9)).round() }),
        );
    }
    serde_json::json!({
        "run": run.label,
        "encounters": run.encounters,
        "vitals_rows": vitals_rows,
        "vitals_rows_per_s": (vitals_rows / vitals_seconds.max(1e-9)).round(),
        "batch_rows": batch_rows,
        "batch_seconds": batch_seconds,
        "batch_rows_per_s": (batch_rows / batch_seconds.max(1e-9)).round(),
        "process_wall_seconds": wall,
        "peak_rss_kib": peak_rss_kib,
        "files": per_file,
    })
}
