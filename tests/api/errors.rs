//! Every bad request gets its status and a precise problem+json body, and
//! writes nothing.

use std::time::Duration;

use crate::helpers::{problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn bad_dates_modes_and_parameters_are_400s_that_write_nothing() {
    let app = spawn_app().await;
    let before = app.tree();
    let cases = [
        ("/batches/2026-02-30?mode=sample", "no such calendar date"),
        ("/batches/20260208?mode=sample", "YYYY-MM-DD"),
        ("/batches/2026-02-08?mode=full", "unknown variant `full`"),
        (
            "/batches/2026-02-08?mode=sample&colour=red",
            "unknown field `colour`",
        ),
        (
            "/batches/2026-02-08?mode=sample&encounters=-1",
            "encounters",
        ),
    ];
    for (path, expected) in cases {
        let detail = problem(app.post(path).await, 400).await;
        assert!(detail.contains(expected), "{path}: {detail}");
    }
    problem(app.get("/batches?mode=full").await, 400).await;
    problem(app.get("/batches/2026-02-30").await, 400).await;
    // Just outside the supported range, on every route that takes a date.
    for date in ["1899-12-31", "2200-01-01"] {
        for response in [
            app.post(&format!("/batches/{date}?mode=sample")).await,
            app.get(&format!("/batches/{date}?mode=sample")).await,
            app.get(&format!("/batches/{date}/vitals?mode=sample"))
                .await,
        ] {
            let detail = problem(response, 400).await;
            assert!(
                detail.contains("outside the supported range 1900-01-01..2199-12-31"),
                "{date}: {detail}"
            );
        }
    }
    assert_eq!(app.tree(), before);
    // The bounds themselves give valid batches (each a mode's first date).
    for (date, mode) in [("1900-01-01", "sample"), ("2199-12-31", "raw")] {
        assert_eq!(
            app.post(&format!("/batches/{date}?mode={mode}"))
                .await
                .status(),
            201
        );
        crate::helpers::assert_valid_batch(&app.batch_dir(mode, date));
    }
    app.stop().await;
}

/// A mode's first date with nobody new: the warm start's inpatients are
/// all in the house, so nobody is free to be seen.
#[tokio::test]
async fn encounters_on_a_date_nobody_can_be_seen_are_a_409_that_writes_nothing() {
    // A facility that starts with no patients of its own.
    let app = spawn_app_with(&[("DATAGEN__VOLUMES__RAW__POPULATION", "0")]).await;
    assert_eq!(
        app.post("/batches/1950-06-01?mode=sample").await.status(),
        201
    );
    let files = |app: &crate::helpers::TestApp| {
        let mut tree = app.tree();
        tree.retain(|_, content| content.is_some());
        tree
    };
    let before = files(&app);
    let response = app
        .post("/batches/1950-06-01?mode=raw&new_patients=0&encounters=5")
        .await;
    let detail = problem(response, 409).await;
    assert!(detail.contains("there are no patients to see"), "{detail}");
    assert_eq!(files(&app), before);
    app.stop().await;
}

/// Sends `target` byte for byte (no client-side normalization of `..`,
/// backslashes or percent-encoding) and returns the whole response.
async fn raw_request(address: &str, method: &str, target: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn path_parameters_never_reach_outside_the_data_directory() {
    let app = spawn_app().await;
    // Files a traversal would find if it escaped data/<mode>/<date>/: where
    // `data/sample/../../secret/vitals.csv` points, and at an absolute path.
    const MARKER: &str = "MARKER-6d1f0c2b-outside-the-data-directory";
    let secret = app.dir.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    for name in ["vitals.csv", "_manifest.json", "vitals", "2026-02-08"] {
        std::fs::write(secret.join(name), MARKER).unwrap();
    }
    std::fs::write(app.dir.path().join("vitals.csv"), MARKER).unwrap();
    assert_eq!(
        app.post("/batches/2026-02-08?mode=sample").await.status(),
        201
    );
    let before = app.tree();
    let absolute = secret.join("vitals.csv").display().to_string();
    let encoded_absolute = absolute.replace('/', "%2F");
    let double_encoded = absolute.replace('/', "%252F");
    let mut targets = vec![
        // Encoded and double-encoded separators.
        "/batches/..%2F..%2Fsecret/vitals?mode=sample".to_string(),
        "/batches/2026-02-08/..%2F..%2F..%2Fsecret%2Fvitals?mode=sample".into(),
        "/batches/2026-02-08/..%252F..%252F..%252Fsecret%252Fvitals?mode=sample".into(),
        "/batches/%2E%2E%2F%2E%2E%2Fsecret/vitals?mode=sample".into(),
        // Backslashes, raw and encoded.
        "/batches/..\\..\\secret/vitals?mode=sample".into(),
        "/batches/2026-02-08/..\\..\\..\\secret\\vitals?mode=sample".into(),
        "/batches/2026-02-08/..%5C..%5C..%5Csecret%5Cvitals?mode=sample".into(),
        // Dot segments the server sees as they are.
        "/batches/2026-02-08/../../../secret/vitals?mode=sample".into(),
        "/batches/../../secret/vitals?mode=sample".into(),
        // Absolute paths in every parameter.
        format!("/batches/2026-02-08/{encoded_absolute}?mode=sample"),
        format!("/batches/2026-02-08/{double_encoded}?mode=sample"),
        format!("/batches/{encoded_absolute}?mode=sample"),
        format!("/batches/2026-02-08/vitals?mode={encoded_absolute}"),
        format!("/batches/2026-02-08/vitals?mode=..%2F..%2Fsecret"),
        format!("/schemas/{encoded_absolute}"),
        "/schemas/..%2F..%2Fsecret%2Fvitals.csv".into(),
        format!("/batches?mode={encoded_absolute}"),
        format!("/docs/{encoded_absolute}"),
        "/docs/..%2F..%2F..%2Fsecret%2Fvitals.csv".into(),
    ];
    targets.push(format!("/{}", absolute.trim_start_matches('/')));
    for target in &targets {
        for method in ["GET", "HEAD"] {
            let response = raw_request(&app.address, method, target).await;
            let status: u16 = response[9..12].parse().unwrap();
            assert!((400..500).contains(&status), "{method} {target}: {status}");
            assert!(
                !response.contains(MARKER),
                "{method} {target} leaked the marker:\n{response}"
            );
        }
        let post = raw_request(&app.address, "POST", target).await;
        assert!(!post.contains(MARKER), "POST {target} leaked:\n{post}");
    }
    for path in [
        "/batches/..%2F..%2Fx?mode=sample",
        "/batches/%2Ftmp%2Fx?mode=sample",
    ] {
        let status = app.post(path).await.status().as_u16();
        assert_eq!(status, 400, "{path}");
    }
    assert_eq!(app.tree(), before, "a traversal wrote something");
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = spawn_app().await;
    problem(app.get("/nope").await, 404).await;
    let put = app
        .client
        .put(app.url("/batches/2026-02-08"))
        .send()
        .await
        .unwrap();
    problem(put, 405).await;
    app.stop().await;
}

#[tokio::test]
async fn auth_when_enabled_guards_posts_and_writes_nothing_without_the_token() {
    let app = spawn_app_with(&[("DATAGEN__AUTH__TOKEN", "s3cret")]).await;
    let before = app.tree();
    let missing = app.post("/batches/2026-02-08?mode=sample").await;
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    problem(missing, 401).await;
    let wrong = app
        .client
        .post(app.url("/batches/2026-02-08?mode=sample"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    problem(wrong, 401).await;
    assert_eq!(app.tree(), before);
    let right = app
        .client
        .post(app.url("/batches/2026-02-08?mode=sample"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 201);
    // The scheme is case-insensitive.
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let response = app
            .client
            .post(app.url("/batches/2026-02-08?mode=sample"))
            .header("authorization", format!("{scheme} s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    // Reads stay open.
    assert_eq!(
        app.get("/batches/2026-02-08?mode=sample").await.status(),
        200
    );
    app.stop().await;

    // Off by default.
    let open = spawn_app().await;
    assert_eq!(
        open.post("/batches/2026-02-08?mode=sample").await.status(),
        201
    );
    open.stop().await;
}

#[tokio::test]
async fn a_write_failure_is_a_500_with_nothing_half_committed() {
    let app = spawn_app().await;
    assert_eq!(
        app.post("/batches/2026-02-08?mode=sample").await.status(),
        201
    );
    // A file where the staging directory must go makes every write fail.
    std::fs::write(app.data().join(".staging"), "in the way").unwrap();
    let before = app.tree();
    for accept in ["application/json", "application/x-tar"] {
        let response = app
            .client
            .post(app.url("/batches/2026-02-09?mode=sample"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        let detail = problem(response, 500).await;
        assert!(detail.contains("nothing was half-committed"), "{detail}");
    }
    assert_eq!(app.tree(), before);
    assert!(!app.batch_dir("sample", "2026-02-09").exists());
    std::fs::remove_file(app.data().join(".staging")).unwrap();
    assert_eq!(
        app.post("/batches/2026-02-09?mode=sample").await.status(),
        201
    );
    app.stop().await;
}

#[tokio::test]
async fn state_locked_by_another_process_is_a_503_with_retry_after() {
    let app = spawn_app_with(&[("DATAGEN__STATE__LOCK_TIMEOUT_SECS", "1")]).await;
    // A CLI run paused inside its commit holds the sample state's file lock.
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_datagen"))
        .args(["generate", "--mode", "sample", "--date", "2026-02-08"])
        .arg("--data-dir")
        .arg(app.data())
        .arg("--state-dir")
        .arg(app.dir.path().join("state"))
        .env("DATAGEN_CRASHPOINT", "staged")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = cli.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("crashpoint staged"))
    });
    assert!(reader.join().unwrap());

    let response = app.post("/batches/2026-02-09?mode=sample").await;
    assert_eq!(response.headers()["retry-after"], "5");
    let detail = problem(response, 503).await;
    assert!(
        detail.contains("locked by another datagen process"),
        "{detail}"
    );
    // The other mode is unaffected.
    assert_eq!(app.post("/batches/2026-02-09?mode=raw").await.status(), 201);

    cli.kill().unwrap();
    cli.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        app.post("/batches/2026-02-09?mode=sample").await.status(),
        201
    );
    app.stop().await;
}

#[tokio::test]
async fn middleware_adds_request_ids_and_limits_bodies() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!id.is_empty());
    assert_ne!(
        app.get("/healthz").await.headers()["x-request-id"]
            .to_str()
            .unwrap(),
        id,
        "one id per request"
    );

    let too_big = app
        .client
        .post(app.url("/batches/2026-02-08?mode=sample"))
        .body(vec![b'x'; 64 * 1024])
        .send()
        .await
        .unwrap();
    problem(too_big, 413).await;
    assert!(!app.batch_dir("sample", "2026-02-08").exists());
    app.stop().await;
}

#[tokio::test]
async fn a_damaged_state_makes_readyz_503_and_posts_name_the_file_and_the_way_out() {
    let app = spawn_app().await;
    assert_eq!(app.post("/batches/2026-02-08?mode=raw").await.status(), 201);
    assert_eq!(app.post("/batches/2026-02-09?mode=raw").await.status(), 201);
    assert_eq!(app.get("/readyz").await.status(), 200);
    // Truncate the master by a few rows.
    let master = app.dir.path().join("state/raw/patients_master.csv");
    let text = std::fs::read_to_string(&master).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&master, lines[..lines.len() - 3].join("\n") + "\n").unwrap();
    let before = app.tree();
    let root = app.dir.path().display().to_string();

    let ready = problem(app.get("/readyz").await, 503).await;
    assert!(
        ready.contains("raw:") && ready.contains("raw/patients_master.csv"),
        "{ready}"
    );
    assert!(!ready.contains(&root), "absolute path in {ready}");

    let response = app.post("/batches/2026-02-10?mode=raw").await;
    let body: serde_json::Value = serde_json::from_str(&{
        assert_eq!(response.status(), 503);
        response.text().await.unwrap()
    })
    .unwrap();
    assert_eq!(body["type"], "urn:datagen:problem:state-inconsistent");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("raw/patients_master.csv")
            && detail.contains("datagen state rebuild --mode raw"),
        "{detail}"
    );
    assert!(!detail.contains(&root), "absolute path in {detail}");
    // Committed batches can still be read; the other mode is unaffected.
    assert_eq!(app.get("/batches/2026-02-08?mode=raw").await.status(), 200);
    assert_eq!(
        app.post("/batches/2026-02-10?mode=sample").await.status(),
        201
    );
    let mut after = app.tree();
    after.retain(|p, _| !p.to_string_lossy().contains("sample"));
    let mut expected = before.clone();
    expected.retain(|p, _| !p.to_string_lossy().contains("sample"));
    assert_eq!(after, expected, "something of the raw mode was written");
    app.stop().await;
}

#[tokio::test]
async fn a_committed_date_asked_for_with_other_volumes_is_a_409() {
    let app = spawn_app().await;
    assert_eq!(
        app.post("/batches/2026-02-08?mode=sample&encounters=40&new_patients=10")
            .await
            .status(),
        201
    );
    let before = app.tree();
    let detail = problem(
        app.post("/batches/2026-02-08?mode=sample&encounters=41")
            .await,
        409,
    )
    .await;
    assert!(
        detail.contains("encounters=40") && detail.contains("encounters=41"),
        "{detail}"
    );
    // The same volumes, or none, find it as it is.
    assert_eq!(
        app.post("/batches/2026-02-08?mode=sample&encounters=40&new_patients=10")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post("/batches/2026-02-08?mode=sample").await.status(),
        200
    );
    assert_eq!(app.tree(), before);
    app.stop().await;
}
