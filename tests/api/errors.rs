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
    assert_eq!(app.tree(), before);
    app.stop().await;
}

#[tokio::test]
async fn path_parameters_never_reach_outside_the_data_directory() {
    let app = spawn_app().await;
    // Something a traversal would find if it escaped.
    std::fs::write(app.dir.path().join("secret.csv"), "secret\n").unwrap();
    assert_eq!(
        app.post("/batches/2026-02-08?mode=sample").await.status(),
        201
    );
    let before = app.tree();
    for path in [
        "/batches/..%2F..%2Fsecret.csv?mode=sample",
        "/batches/2026-02-08/..%2F..%2F..%2Fsecret?mode=sample",
        "/batches/2026-02-08/%2Fetc%2Fpasswd?mode=sample",
        "/batches/%2Fetc%2Fpasswd?mode=sample",
        "/batches/2026-02-08/..?mode=sample",
        "/schemas/..%2F..%2FCargo.toml",
    ] {
        let response = app.get(path).await;
        let status = response.status().as_u16();
        assert!(status == 400 || status == 404, "{path}: {status}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("secret") || body.contains("detail"),
            "{path} leaked: {body}"
        );
        assert!(!body.contains("root:"), "{path} leaked /etc/passwd");
    }
    for path in [
        "/batches/..%2F..%2Fx?mode=sample",
        "/batches/%2Ftmp%2Fx?mode=sample",
    ] {
        let status = app.post(path).await.status().as_u16();
        assert_eq!(status, 400, "{path}");
    }
    assert_eq!(app.tree(), before);
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
async fn middleware_adds_request_ids_limits_bodies_and_times_out_slow_heads() {
    let app = spawn_app_with(&[
        ("DATAGEN__SERVER__REQUEST_TIMEOUT_SECS", "1"),
        ("DATAGEN__SERVER__MAX_ENCOUNTERS", "50000"),
    ])
    .await;
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

    // A JSON answer that needs longer than the configured head timeout.
    let slow = app
        .post("/batches/2026-02-09?mode=raw&encounters=20000&new_patients=8000")
        .await;
    problem(slow, 503).await;
    app.stop().await;
}
