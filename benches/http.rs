//! HTTP benchmark: the release `datagen` binary as a server on loopback.
//!
//! 1. Throughput of a streamed tar POST of a 50,000-encounter raw batch
//!    against the CLI generating the same batch (same seed, date, volumes,
//!    fresh state each run): rows of all files per second, wall clock, the
//!    HTTP side measured until the last byte of the archive arrived.
//! 2. Latency of sample-mode POSTs (JSON manifest) for new dates, and for a
//!    date already committed.
//!
//! `cargo bench --bench http` prints a JSON object and a table.

use std::process::Command;
use std::time::Instant;

#[path = "common/server.rs"]
mod server;
use server::Server;

const BIN: &str = env!("CARGO_BIN_EXE_datagen");
const ENCOUNTERS: &str = "50000";
const NEW_PATIENTS: &str = "20000";
const RUNS: usize = 3;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut cli = Vec::new();
    let mut http = Vec::new();
    for _ in 0..RUNS {
        cli.push(cli_run());
        http.push(runtime.block_on(http_run()));
    }
    let latency = runtime.block_on(sample_latency());

    let best = |xs: &[(f64, f64)]| {
        xs.iter()
            .map(|(rows, secs)| rows / secs)
            .fold(0.0, f64::max)
    };
    let median = |xs: &[(f64, f64)]| {
        let mut r: Vec<f64> = xs.iter().map(|(rows, secs)| rows / secs).collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    let result = serde_json::json!({
        "encounters": ENCOUNTERS,
        "cli_rows_per_s_median": median(&cli).round(),
        "http_tar_rows_per_s_median": median(&http).round(),
        "http_over_cli_median": median(&http) / median(&cli),
        "cli_rows_per_s_best": best(&cli).round(),
        "http_tar_rows_per_s_best": best(&http).round(),
        "runs": RUNS,
        "sample_post_new_ms": latency.new,
        "sample_post_existing_ms": latency.existing,
    });
    println!("{result}");
    println!();
    println!("| path | rows/s (median of {RUNS}) | best |");
    println!("|---|---:|---:|");
    println!(
        "| CLI `generate` | {:.0} | {:.0} |",
        median(&cli),
        best(&cli)
    );
    println!(
        "| HTTP `POST` tar stream | {:.0} | {:.0} |",
        median(&http),
        best(&http)
    );
    println!();
    println!(
        "HTTP / CLI (medians): {:.0}%",
        100.0 * median(&http) / median(&cli)
    );
    println!("sample POST, new date (ms): {}", latency.new);
    println!("sample POST, existing date (ms): {}", latency.existing);
}

/// (rows, seconds) of a CLI run in a fresh directory.
fn cli_run() -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .args(["generate", "--mode", "raw", "--date", "2026-02-09"])
        .args(["--encounters", ENCOUNTERS, "--new-patients", NEW_PATIENTS])
        .output()
        .expect("run datagen");
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (rows_in(&dir.path().join("data/raw/2026-02-09")), secs)
}

fn rows_in(batch: &std::path::Path) -> f64 {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(batch.join("_manifest.json")).expect("manifest"))
            .expect("json");
    manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["rows"].as_f64().unwrap_or(0.0))
        .sum()
}

/// (rows, seconds until the last byte) of a tar POST on a fresh server.
async fn http_run() -> (f64, f64) {
    let server = Server::start(&[]).await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut response = client
        .post(format!(
            "{}/batches/2026-02-09?mode=raw&encounters={ENCOUNTERS}&new_patients={NEW_PATIENTS}",
            server.url
        ))
        .header("accept", "application/x-tar")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 201);
    let mut bytes = 0usize;
    while let Some(chunk) = response.chunk().await.expect("body") {
        bytes += chunk.len();
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(bytes > 1_000_000);
    (
        rows_in(&server.dir.path().join("data/raw/2026-02-09")),
        secs,
    )
}

struct Latency {
    new: serde_json::Value,
    existing: serde_json::Value,
}

async fn sample_latency() -> Latency {
    let server = Server::start(&[]).await;
    let client = reqwest::Client::new();
    let date = |i: u32| {
        (chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
            + chrono::Days::new(u64::from(i)))
        .format("%Y-%m-%d")
        .to_string()
    };
    let post = async |d: &str| {
        let started = Instant::now();
        let r = client
            .post(format!("{}/batches/{d}?mode=sample", server.url))
            .send()
            .await
            .expect("POST");
        assert!(r.status().is_success());
        r.bytes().await.expect("body");
        started.elapsed().as_secs_f64() * 1000.0
    };
    let mut new = Vec::new();
    for i in 0..60 {
        new.push(post(&date(i)).await);
    }
    let mut existing = Vec::new();
    for i in 0..60 {
        existing.push(post(&date(i)).await);
    }
    Latency {
        new: summary(new),
        existing: summary(existing),
    }
}

fn summary(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| (ms[((ms.len() - 1) as f64 * q).round() as usize] * 100.0).round() / 100.0;
    serde_json::json!({ "n": ms.len(), "p50": at(0.5), "p95": at(0.95), "max": at(1.0) })
}
