//! Load benchmark: the release `datagen` binary as a server on loopback under
//! mixed load, with its resident memory sampled every second.
//!
//! Set-up: one raw batch of 200,000 encounters (its `labs.csv` is about
//! 90 MB). Then, for each round, `CLIENTS` (50) clients for `LOAD_SECS` (60):
//! 70% full GETs of that `labs.csv`, 15% `GET /batches`, 15% `GET /metrics`,
//! plus one more client POSTing new raw dates one after the other (default
//! volumes). Between and after rounds the server idles for `IDLE_SECS` (60).
//!
//! It prints one JSON object and a table: the idle baseline, and per round
//! the peak RSS under load and the RSS at the end of the idle period after
//! it. Targets (issue #8): peak at most 250 MB, back to at most twice the
//! idle baseline within 60 s.
//!
//! `cargo bench --bench load`; `LOAD_ROUNDS`, `LOAD_SECS`, `IDLE_SECS` and
//! `CLIENTS` override the defaults.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "common/server.rs"]
mod server;
use server::Server;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A field of /proc/<pid>/status, as a number (`VmRSS` is in KiB).
fn status(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// Resident set size of a process in MiB.
fn rss_mib(pid: u32) -> f64 {
    status(pid, "VmRSS:") / 1024.0
}

/// Samples RSS and threads every second until `stop`: (max RSS, last RSS,
/// max threads).
fn sample(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(f64, f64, f64)> {
    std::thread::spawn(move || {
        let (mut max, mut last, mut threads) = (0.0f64, 0.0, 0.0f64);
        while !stop.load(Ordering::Relaxed) {
            last = rss_mib(pid);
            max = max.max(last);
            threads = threads.max(status(pid, "Threads:"));
            std::thread::sleep(Duration::from_secs(1));
        }
        (max, last, threads)
    })
}

fn main() {
    let rounds = setting("LOAD_ROUNDS", 2);
    let load_secs = setting("LOAD_SECS", 60);
    let idle_secs = setting("IDLE_SECS", 60);
    let clients = setting("CLIENTS", 50);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");

    let client = reqwest::Client::new();
    let server = runtime.block_on(Server::start(&[(
        "DATAGEN__SERVER__MAX_ENCOUNTERS",
        "200000",
    )]));
    let pid = server.child.id();
    runtime.block_on(async {
        let r = client
            .post(format!(
                "{}/batches/2026-01-01?mode=raw&encounters=200000&new_patients=80000",
                server.url
            ))
            .send()
            .await
            .expect("set-up POST");
        assert_eq!(r.status(), 201, "set-up batch");
    });
    let labs_bytes = std::fs::metadata(server.dir.path().join("data/raw/2026-01-01/labs.csv"))
        .map(|m| m.len())
        .unwrap_or(0);
    std::thread::sleep(Duration::from_secs(5));
    let baseline = rss_mib(pid);
    eprintln!("idle baseline {baseline:.1} MiB, labs.csv {labs_bytes} bytes");

    let mut results = Vec::new();
    let next_day = Arc::new(AtomicU64::new(1));
    for round in 1..=rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = sample(pid, stop.clone());
        let (requests, bytes, posts) =
            runtime.block_on(load(&server.url, clients, load_secs, next_day.clone()));
        stop.store(true, Ordering::Relaxed);
        let (peak, end, threads) = sampler.join().expect("sampler");
        // Idle: how far memory comes back down.
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = sample(pid, stop.clone());
        std::thread::sleep(Duration::from_secs(idle_secs));
        stop.store(true, Ordering::Relaxed);
        let (_, after_idle, _) = sampler.join().expect("sampler");
        eprintln!(
            "round {round}: {requests} requests, {:.0} MB received, {posts} POSTs, peak {peak:.1} MiB, end {end:.1} MiB, after {idle_secs} s idle {after_idle:.1} MiB, up to {threads} threads",
            bytes as f64 / 1e6
        );
        results.push(serde_json::json!({
            "round": round,
            "requests": requests,
            "mb_received": (bytes as f64 / 1e6).round(),
            "posts": posts,
            "peak_rss_mib": (peak * 10.0).round() / 10.0,
            "end_rss_mib": (end * 10.0).round() / 10.0,
            "after_idle_rss_mib": (after_idle * 10.0).round() / 10.0,
            "max_threads": threads,
        }));
    }
    let summary = serde_json::json!({
        "clients": clients,
        "load_secs": load_secs,
        "idle_secs": idle_secs,
        "labs_csv_bytes": labs_bytes,
        "baseline_rss_mib": (baseline * 10.0).round() / 10.0,
        "rounds": results,
    });
    println!("{summary}");
    println!();
    println!(
        "| round | requests | MB received | POSTs | peak RSS MiB | RSS after {idle_secs} s idle MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r["round"],
            r["requests"],
            r["mb_received"],
            r["posts"],
            r["peak_rss_mib"],
            r["after_idle_rss_mib"]
        );
    }
    println!();
    println!("idle baseline: {baseline:.1} MiB");
}

/// Runs the mixed load; returns (requests, bytes received, POSTs).
async fn load(url: &str, clients: u64, secs: u64, next_day: Arc<AtomicU64>) -> (u64, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let client = reqwest::Client::new();
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, url) = (client.clone(), url.to_string());
        let (requests, bytes) = (requests.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while Instant::now() < deadline {
                let path = match i % 20 {
                    0..=13 => "/batches/2026-01-01/labs?mode=raw",
                    14..=16 => "/batches?mode=raw",
                    _ => "/metrics",
                };
                i += 1;
                if let Ok(mut r) = client.get(format!("{url}{path}")).send().await {
                    while let Ok(Some(chunk)) = r.chunk().await {
                        bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let poster = setting("POSTER", 1) == 1;
    let posts = {
        let (client, url) = (client.clone(), url.to_string());
        tokio::spawn(async move {
            let mut posts = 0u64;
            while poster && Instant::now() < deadline {
                let day = next_day.fetch_add(1, Ordering::Relaxed);
                let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")
                    + chrono::Days::new(day);
                let r = client
                    .post(format!(
                        "{url}/batches/{}?mode=raw",
                        date.format("%Y-%m-%d")
                    ))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status().is_success()) {
                    posts += 1;
                }
            }
            posts
        })
    };
    for t in tasks {
        let _ = t.await;
    }
    let posts = posts.await.unwrap_or(0);
    (
        requests.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed),
        posts,
    )
}
