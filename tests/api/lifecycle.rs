//! Requests over time: generations that outlast the request timeout, clients
//! that hang up, sockets that trickle or sit silent, and the request id on
//! every log line of the work a request caused.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ServerProcess, assert_valid_batch, problem, spawn_app_with};

/// Polls `url` until it answers 200 (the batch is committed).
async fn wait_for_200(client: &reqwest::Client, url: &str) -> reqwest::Response {
    let started = Instant::now();
    loop {
        let response = client.get(url).send().await.unwrap();
        if response.status() == 200 {
            return response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{url} never became available"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_post_that_outlasts_the_request_timeout_gets_202_and_still_commits() {
    let app = spawn_app_with(&[
        ("DATAGEN__SERVER__REQUEST_TIMEOUT_SECS", "1"),
        ("DATAGEN__SERVER__MAX_ENCOUNTERS", "100000"),
    ])
    .await;
    // A JSON answer: the generation itself outlasts the timeout. A tar
    // stream starts with its first file, so it gets 202 only when it waits
    // longer than that in the mode's queue, here behind the first.
    let mut locations = Vec::new();
    for (date, accept, encounters) in [
        ("2026-02-09", "application/json", 60000),
        ("2026-02-10", "application/x-tar", 20000),
    ] {
        let response = app
            .client
            .post(app.url(&format!(
                "/batches/{date}?mode=raw&encounters={encounters}&new_patients=8000"
            )))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{accept}");
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(location, format!("/batches/{date}?mode=raw"));
        assert_eq!(response.headers()["retry-after"], "5");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], "pending");
        assert_eq!(body["location"], location.as_str());
        locations.push((date, location));
    }
    // While they run, their locations say so.
    let (_, queued) = &locations[1];
    let pending = app.get(queued).await;
    assert_eq!(pending.headers()["retry-after"], "5");
    let detail = problem(pending, 404).await;
    assert!(detail.contains("being generated"), "{detail}");

    for (date, location) in &locations {
        let manifest: serde_json::Value = wait_for_200(&app.client, &app.url(location))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(manifest["date"], *date);
        assert_valid_batch(&app.batch_dir("raw", date));
    }
    // Once both are in, a repeated POST finds each committed (before, it
    // could wait for the other's lock past the request timeout).
    for (date, _) in &locations {
        assert_eq!(
            app.post(&format!("/batches/{date}?mode=raw"))
                .await
                .status(),
            200
        );
    }
    app.stop().await;
}

fn in_flight(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("datagen_http_requests_in_flight "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the in-flight gauge")
}

#[tokio::test]
async fn clients_that_hang_up_leave_no_request_counted_in_flight() {
    let app = spawn_app_with(&[("DATAGEN__SERVER__MAX_ENCOUNTERS", "50000")]).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    // Ten streaming POSTs at once: some are cut off while their tar streams,
    // the others while they wait in the mode's queue.
    let aborted = (10..20).map(|day| {
        let client = impatient.clone();
        let url = app.url(&format!("/batches/2026-02-{day}?mode=raw&encounters=3000"));
        async move {
            let response = client
                .post(url)
                .header("accept", "application/x-tar")
                .send()
                .await;
            match response {
                Ok(r) => r.bytes().await.is_err(),
                Err(_) => true,
            }
        }
    });
    let results = futures_util::future::join_all(aborted).await;
    assert!(
        results.iter().filter(|&&cut| cut).count() >= 9,
        "{results:?}"
    );

    // Once the server has noticed, an idle scrape counts only itself.
    let started = Instant::now();
    loop {
        let count = in_flight(&app.get("/metrics").await.text().await.unwrap());
        if count == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{count} requests still counted in flight"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}

/// Reads until the server closes the connection; false if it stays open for `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // a response (408, or an earlier answer): keep reading
        }
    }
}

#[tokio::test]
async fn slow_and_silent_connections_are_closed_after_the_header_timeout() {
    let app = spawn_app_with(&[("DATAGEN__SERVER__HEADER_READ_TIMEOUT_SECS", "1")]).await;
    let address = app.address.trim_start_matches("http://").to_string();

    // Trickling a header line every 300 ms: the head is never complete.
    let mut trickling = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        trickling.push(stream);
    }
    let trickle = tokio::spawn(async move {
        let mut closed = 0;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for stream in &mut trickling {
                if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    closed += 1;
                }
            }
        }
        (closed, trickling)
    });
    // Silent from the start, and idle after one request on a keep-alive connection.
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let mut idle = TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    // Meanwhile the service answers.
    let healthz = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);

    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "silent socket left open"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "idle keep-alive left open"
    );
    let (_, mut trickling) = trickle.await.unwrap();
    for stream in &mut trickling {
        assert!(
            closed_within(stream, Duration::from_secs(1)).await,
            "a trickling socket was still open after 6 s"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_quick_client_on_a_fresh_connection_is_not_cut_off() {
    let app = spawn_app_with(&[("DATAGEN__SERVER__HEADER_READ_TIMEOUT_SECS", "1")]).await;
    // A batch that takes longer than the header timeout to stream is fine:
    // the timer only runs while a request head is awaited.
    let response = app
        .client
        .post(app.url("/batches/2026-02-08?mode=raw&encounters=4000&new_patients=2000"))
        .header("accept", "application/x-tar")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body = response.bytes().await.unwrap();
    assert!(body.len() > 1_000_000, "{} bytes", body.len());
    app.stop().await;
}

/// The real binary with JSON logs: every line the engine writes while
/// serving a request (recovery, generation, commit, streaming) names it.
#[test]
fn every_log_line_of_a_requests_work_carries_its_request_id() {
    let server = ServerProcess::start(
        &["--log-format", "json"],
        &[("RUST_LOG", "info,datagen=debug")],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    runtime.block_on(async {
        wait_for_200(&client, &server.url("/readyz")).await;
    });

    // A CLI run killed after its commit point leaves a commit to finish: the
    // next request's recovery does it.
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_datagen"))
        .current_dir(server.dir.path())
        .args(["generate", "--mode", "sample", "--date", "2026-02-08"])
        .env("DATAGEN_CRASHPOINT", "committed")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let stderr = std::io::BufReader::new(cli.stderr.take().unwrap());
        assert!(
            stderr
                .lines()
                .map_while(Result::ok)
                .any(|l| l.contains("crashpoint committed"))
        );
    }
    cli.kill().unwrap();
    cli.wait().unwrap();

    runtime.block_on(async {
        let json = client
            .post(server.url("/batches/2026-02-09?mode=sample"))
            .header("x-request-id", "req-recover")
            .send()
            .await
            .unwrap();
        assert_eq!(json.status(), 201);
        let tar = client
            .post(server.url("/batches/2026-02-10?mode=sample"))
            .header("x-request-id", "req-stream")
            .header("accept", "application/x-tar")
            .send()
            .await
            .unwrap();
        assert_eq!(tar.status(), 201);
        tar.bytes().await.unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));

    let mut seen = std::collections::BTreeMap::<String, Vec<String>>::new();
    for line in server.log() {
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
            panic!("not a JSON log line: {line}");
        };
        let target = json["target"].as_str().unwrap_or_default();
        let message = json["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !target.starts_with("datagen") || message == "datagen listening" {
            continue;
        }
        let id = json["span"]["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("a log line of the engine without a request id: {line}"));
        seen.entry(id.to_string()).or_default().push(message);
    }
    let recover = &seen["req-recover"];
    for expected in [
        "recovery: finished an interrupted commit",
        "file written",
        "batch committed",
    ] {
        assert!(
            recover.iter().any(|m| m == expected),
            "req-recover lacks {expected:?}: {recover:?}"
        );
    }
    let stream = &seen["req-stream"];
    for expected in ["file written", "batch committed"] {
        assert!(
            stream.iter().any(|m| m == expected),
            "req-stream lacks {expected:?}: {stream:?}"
        );
    }
}

/// A batch that fails after its stream started: the client has its 201, so
/// the failure must be impossible to miss in the body itself.
#[test]
fn a_stream_whose_batch_fails_never_ends_like_a_whole_one() {
    let server = ServerProcess::start(&[], &[("DATAGEN_CRASHPOINT", "fail:vitals")]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let (tar_status, tar_bytes, tar_cut) = runtime.block_on(async {
        let mut response = client
            .post(server.url("/batches/2026-02-08?mode=raw&encounters=2000"))
            .header("accept", "application/x-tar")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        let cut = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        (status, bytes, cut)
    });
    assert_eq!(tar_status, 201, "the head was sent with the first file");
    assert!(tar_cut, "the transfer ended cleanly");
    assert!(tar_bytes.len() > 1024, "the first file arrived");

    // The bytes that did arrive fail GNU tar, and the tar crate.
    let archive = server.dir.path().join("partial.tar");
    std::fs::write(&archive, &tar_bytes).unwrap();
    let out_dir = server.dir.path().join("extracted");
    std::fs::create_dir(&out_dir).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("xf")
        .arg(&archive)
        .current_dir(&out_dir)
        .output()
        .unwrap();
    assert!(
        !tar.status.success(),
        "tar accepted a failed batch's archive"
    );
    let read: Result<Vec<_>, _> = tar::Archive::new(&tar_bytes[..])
        .entries()
        .unwrap()
        .map(|e| e.map(|e| e.path().unwrap().display().to_string()))
        .collect();
    assert!(
        read.is_err(),
        "the tar crate read a whole archive: {read:?}"
    );
    assert!(String::from_utf8_lossy(&tar_bytes).contains("the batch was not committed"));

    // One file: the transfer is cut off rather than ended.
    let (csv_status, csv_cut) = runtime.block_on(async {
        let response = client
            .post(server.url("/batches/2026-02-09?mode=raw&encounters=2000&dataset=patients"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.is_err())
    });
    assert_eq!(csv_status, 201);
    assert!(csv_cut, "a failed batch's file ended cleanly");

    // Nothing was committed or left half-written.
    runtime.block_on(async {
        for date in ["2026-02-08", "2026-02-09"] {
            let response = client
                .get(server.url(&format!("/batches/{date}?mode=raw")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{date}");
        }
    });
    assert!(!server.dir.path().join("data/raw/2026-02-08").exists());
    assert!(
        !server
            .dir
            .path()
            .join("data/.staging/raw/2026-02-08")
            .exists()
    );
}

/// Out of file descriptors, the accept loop backs off instead of spinning,
/// and once the idle sockets time out the service answers again; with
/// `server.max_connections` below the limit, it never runs out at all.
#[test]
fn idle_sockets_past_the_descriptor_limit_are_outlasted_not_spun_on() {
    for (max_connections, expect_accept_errors) in [("1000", true), ("60", false)] {
        let server = ServerProcess::start_limited(
            &[],
            &[
                ("DATAGEN__SERVER__HEADER_READ_TIMEOUT_SECS", "2"),
                ("DATAGEN__SERVER__MAX_CONNECTIONS", max_connections),
            ],
            Some(128),
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let address = server.address.clone();
            let mut idle = Vec::new();
            for _ in 0..200 {
                idle.push(TcpStream::connect(&address).await.unwrap());
            }
            // The probe waits behind the idle sockets, then is answered.
            let healthz = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap()
                .get(server.url("/healthz"))
                .send()
                .await
                .unwrap();
            assert_eq!(healthz.status(), 200);
            // Every idle socket was closed by the server.
            for stream in &mut idle {
                assert!(closed_within(stream, Duration::from_secs(30)).await);
            }
        });
        let log = server.log();
        let accept_errors = log
            .iter()
            .filter(|l| l.contains("cannot accept connections"))
            .count();
        if expect_accept_errors {
            assert!(accept_errors >= 1, "the descriptor limit was never reached");
            assert!(
                accept_errors <= 10,
                "{accept_errors} accept errors logged: spinning"
            );
        } else {
            assert_eq!(accept_errors, 0, "max_connections let descriptors run out");
        }
    }
}

/// `server.concurrency_limit` counts requests across all routes, and the
/// probes stay outside it.
#[tokio::test]
async fn the_concurrency_limit_is_global_and_spares_the_probes() {
    let app = spawn_app_with(&[
        ("DATAGEN__SERVER__CONCURRENCY_LIMIT", "1"),
        ("DATAGEN__SERVER__MAX_ENCOUNTERS", "100000"),
    ])
    .await;
    let client = app.client.clone();
    let post = tokio::spawn(
        client
            .post(app.url("/batches/2026-02-08?mode=raw&encounters=60000&new_patients=15000"))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another route waits for the one slot...
    let list = tokio::spawn(client.get(app.url("/batches?mode=sample")).send());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !post.is_finished(),
        "the POST was too quick to test anything"
    );
    assert!(
        !list.is_finished(),
        "a second request was served beside the first"
    );
    // ...while the probes answer.
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/metrics").await.status(), 200);
    assert_eq!(post.await.unwrap().unwrap().status(), 201);
    assert_eq!(list.await.unwrap().unwrap().status(), 200);
    app.stop().await;
}
