//! Batch benchmark: the whole batch, end to end, against a hand-written
//! writer, in the same run.
//!
//! - **Whole batch:** the release `datagen generate` (process start to exit)
//!   of one raw date from a fresh state: all five files written and fsynced,
//!   the manifest, the state written, the commit. MB/s is every byte of the
//!   batch directory over that wall time; rows/s per dataset is that file's
//!   rows over the same wall time. Medians of `RUNS`, with `--threads 1` and
//!   with the default threads (one per core).
//! - **Hand-written writer:** a single-thread writer of vitals-like CSV rows
//!   (itoa into a 64 KiB `BufWriter`, then fsync), the same number of bytes as
//!   the batch. The ratio of the batch's MB/s to it is the headline.
//! - **Peak RSS** of the whole batch at 20,000 and 200,000 encounters
//!   (GNU time's maxresident), default threads.
//! - **Defects:** the same whole batch with `--defects heavy` (every kind,
//!   about 5% of rows spoiled, `_defects.jsonl` written and committed),
//!   default threads; its throughput against `none` is the same batch's
//!   wall time over the heavy one's (the heavy batch writes more bytes, so
//!   MB/s would flatter it).
//! - **Parquet:** the same whole batch with `--format parquet` (five zstd
//!   Parquet files instead of the text files), default threads: seconds,
//!   MB/s of the Parquet bytes, rows/s, and each file's size against its
//!   text file's.
//!
//! `cargo bench --bench batch` prints one JSON object, then a table.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_datagen");
const ENCOUNTERS: u32 = 100_000;
const RUNS: usize = 3;

fn main() {
    let mut rows = Vec::new();
    for threads in ["1", "0"] {
        let runs: Vec<Run> = (0..RUNS).map(|_| batch(ENCOUNTERS, threads, &[])).collect();
        rows.push((threads, median_run(runs)));
    }
    let bytes = rows[0].1.bytes;
    let hand: Vec<f64> = (0..RUNS).map(|_| hand_written(bytes)).collect();
    let hand_mbps = median(hand);
    let memory: Vec<(u32, f64)> = [20_000u32, 200_000]
        .iter()
        .map(|&n| (n, batch(n, "0", &[]).peak_rss_mib))
        .collect();
    let heavy = median_run(
        (0..RUNS)
            .map(|_| batch(ENCOUNTERS, "0", &["--defects", "heavy"]))
            .collect(),
    );
    let none_seconds = rows[1].1.seconds;
    let parquet = median_run(
        (0..RUNS)
            .map(|_| batch(ENCOUNTERS, "0", &["--format", "parquet"]))
            .collect(),
    );
    let sizes: Vec<(String, u64, u64)> = rows[1]
        .1
        .files
        .iter()
        .filter_map(|(name, text)| {
            let stem = name.split('.').next()?;
            let (_, bytes) = parquet
                .files
                .iter()
                .find(|(n, _)| n == &format!("{stem}.parquet"))?;
            Some((stem.to_string(), *text, *bytes))
        })
        .collect();
    let heavy_ratio = none_seconds / heavy.seconds;

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let result = serde_json::json!({
        "encounters": ENCOUNTERS,
        "runs": RUNS,
        "cores": cores,
        "batch_bytes": bytes,
        "hand_written_vitals_writer_mb_per_s": round(hand_mbps),
        "whole_batch": rows.iter().map(|(threads, r)| serde_json::json!({
            "threads": if *threads == "0" { cores.to_string() } else { threads.to_string() },
            "seconds": round(r.seconds),
            "mb_per_s": round(r.mb_per_s()),
            "ratio_to_hand_written": (r.mb_per_s() / hand_mbps * 1000.0).round() / 1000.0,
            "rows_per_s": r.rows.iter().map(|(name, n)| (name.clone(), serde_json::json!((*n as f64 / r.seconds).round()))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
        "peak_rss_mib": memory.iter().map(|(n, mib)| serde_json::json!({"encounters": n, "mib": round(*mib)})).collect::<Vec<_>>(),
        "parquet": {
            "threads": cores,
            "seconds": round(parquet.seconds),
            "mb_per_s": round(parquet.mb_per_s()),
            "peak_rss_mib": round(parquet.peak_rss_mib),
            "rows_per_s": parquet.rows.iter().map(|(name, n)| (name.clone(), serde_json::json!((*n as f64 / parquet.seconds).round()))).collect::<serde_json::Map<_, _>>(),
            "bytes": sizes.iter().map(|(name, text, pq)| (name.clone(), serde_json::json!({"text": text, "parquet": pq}))).collect::<serde_json::Map<_, _>>(),
        },
        "defects_heavy": {
            "threads": cores,
            "seconds": round(heavy.seconds),
            "none_seconds": round(none_seconds),
            "throughput_vs_none": (heavy_ratio * 1000.0).round() / 1000.0,
        },
    });
    println!("{result}");
    println!();
    println!("| writer | threads | seconds | MB/s | ratio |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| hand-written single-thread vitals writer (itoa, BufWriter, fsync) | 1 | | {hand_mbps:.0} | 1.00 |"
    );
    for (threads, r) in &rows {
        let shown = if *threads == "0" {
            cores.to_string()
        } else {
            threads.to_string()
        };
        println!(
            "| `datagen generate --encounters {ENCOUNTERS}`, all five files fsynced and committed | {shown} | {:.3} | {:.0} | {:.2} |",
            r.seconds,
            r.mb_per_s(),
            r.mb_per_s() / hand_mbps
        );
    }
    println!();
    for (threads, r) in &rows {
        let per: Vec<String> = r
            .rows
            .iter()
            .map(|(name, n)| format!("{name} {:.0}", *n as f64 / r.seconds))
            .collect();
        println!(
            "rows/s over the whole batch, threads {threads}: {}",
            per.join(", ")
        );
    }
    for (n, mib) in &memory {
        println!("peak RSS at {n} encounters: {mib:.1} MiB");
    }
    println!(
        "--format parquet, threads {cores}: {:.3} s ({:.0} MB/s of Parquet; CSV: {:.3} s), peak RSS {:.1} MiB",
        parquet.seconds,
        parquet.mb_per_s(),
        none_seconds,
        parquet.peak_rss_mib
    );
    for (name, text, pq) in &sizes {
        println!(
            "  {name}: text {text} bytes, parquet {pq} bytes ({:.0}%)",
            *pq as f64 / *text as f64 * 100.0
        );
    }
    println!(
        "--defects heavy, threads {cores}: {:.3} s against none's {none_seconds:.3} s: throughput {:.0}% of none",
        heavy.seconds,
        heavy_ratio * 100.0
    );
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

struct Run {
    seconds: f64,
    bytes: u64,
    /// Each file of the batch and its size.
    files: Vec<(String, u64)>,
    rows: Vec<(String, u64)>,
    peak_rss_mib: f64,
}

impl Run {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds
    }
}

fn median_run(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    runs.swap_remove(runs.len() / 2)
}

/// One whole batch from a fresh state, under GNU time for its peak RSS.
fn batch(encounters: u32, threads: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let new_patients = (encounters * 2 / 5).to_string();
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args([
            "-f",
            "maxrss_kib=%M",
            BIN,
            "generate",
            "--mode",
            "raw",
            "--date",
            "2026-02-09",
        ])
        .args([
            "--encounters",
            &encounters.to_string(),
            "--new-patients",
            &new_patients,
        ])
        .args(["--threads", threads])
        .args(extra)
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run datagen under GNU time");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let peak_rss_mib = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0;
    let batch = dir.path().join("data/raw/2026-02-09");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(batch.join("_manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let rows = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            let name = f["name"]
                .as_str()
                .unwrap_or("")
                .split('.')
                .next()
                .unwrap_or("");
            (name.to_string(), f["rows"].as_u64().unwrap_or(0))
        })
        .collect();
    let files = std::fs::read_dir(&batch)
        .expect("batch dir")
        .filter_map(|e| {
            let e = e.ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().ok()?.len(),
            ))
        })
        .collect();
    Run {
        seconds,
        bytes: dir_bytes(&batch),
        files,
        rows,
        peak_rss_mib,
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("batch dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Appends `n` zero-padded to `width` digits.
fn pad(out: &mut Vec<u8>, buf: &mut itoa::Buffer, n: u64, width: usize) {
    let digits = buf.format(n).as_bytes();
    out.resize(out.len() + width.saturating_sub(digits.len()), b'0');
    out.extend_from_slice(digits);
}

/// MB/s of a tight single-thread writer of vitals-like rows (no per-row
/// allocation, no `format!`): `bytes` of them, then fsync.
fn hand_written(bytes: u64) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vitals.csv");
    let started = Instant::now();
    let file = std::fs::File::create(&path).expect("create");
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    let mut buf = itoa::Buffer::new();
    let mut line: Vec<u8> = Vec::with_capacity(128);
    let mut written = 0u64;
    let mut i = 0u64;
    out.write_all(b"vital_id,encounter_id,patient_id,measured_at,heart_rate,systolic_bp,diastolic_bp,respiratory_rate,temperature_c,spo2\n")
        .expect("write");
    while written < bytes {
        let encounter = 1 + i / 4;
        line.clear();
        line.push(b'E');
        pad(&mut line, &mut buf, encounter, 10);
        line.extend_from_slice(b"-V");
        pad(&mut line, &mut buf, 1 + i % 4, 3);
        line.extend_from_slice(b",E");
        pad(&mut line, &mut buf, encounter, 10);
        line.extend_from_slice(b",P");
        pad(&mut line, &mut buf, 1 + encounter / 3, 8);
        line.extend_from_slice(b",2026-02-09T10:");
        pad(&mut line, &mut buf, i % 60, 2);
        line.extend_from_slice(b":00Z,");
        for v in [60 + i % 60, 100 + i % 50, 60 + i % 30, 12 + i % 10] {
            line.extend_from_slice(buf.format(v).as_bytes());
            line.push(b',');
        }
        line.extend_from_slice(buf.format(36 + i % 3).as_bytes());
        line.push(b'.');
        line.extend_from_slice(buf.format(i % 10).as_bytes());
        line.push(b',');
        line.extend_from_slice(buf.format(90 + i % 10).as_bytes());
        line.push(b'\n');
        out.write_all(&line).expect("write");
        written += line.len() as u64;
        i += 1;
    }
    let file = out.into_inner().expect("flush");
    file.sync_all().expect("fsync");
    written as f64 / 1e6 / started.elapsed().as_secs_f64()
}
