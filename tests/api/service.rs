//! Schemas, the OpenAPI document, health, readiness, metrics, Swagger UI and
//! graceful shutdown of the real binary.

use std::process::Command;
use std::time::Duration;

use crate::helpers::{ServerProcess, assert_valid_batch, problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn every_dataset_schema_is_served() {
    let app = spawn_app().await;
    for dataset in ["patients", "encounters", "vitals", "labs", "notes"] {
        let response = app.get(&format!("/schemas/{dataset}")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/schema+json"
        );
        let served = response.text().await.unwrap();
        let on_disk = std::fs::read_to_string(format!(
            "{}/schemas/{dataset}.schema.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(served, on_disk);
    }
    assert!(
        problem(app.get("/schemas/nope").await, 404)
            .await
            .contains("nope")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_committed_openapi_document_is_the_one_served_and_printed() {
    // The embedded defaults' volume limits, as committed.
    let app = spawn_app_with(&[("DATAGEN__SERVER__MAX_ENCOUNTERS", "200000")]).await;
    let served = app.get("/openapi.json").await.text().await.unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    assert!(
        served == committed,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
    let printed = Command::new(env!("CARGO_BIN_EXE_datagen"))
        .arg("openapi")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(printed.stdout).unwrap(), committed);

    let spec: serde_json::Value = serde_json::from_str(&served).unwrap();
    let datasets = &spec["components"]["schemas"]["Dataset"]["enum"];
    assert_eq!(
        *datasets,
        serde_json::json!([
            "patients",
            "encounters",
            "vitals",
            "labs",
            "notes",
            "defects"
        ])
    );
    for path in [
        "/batches/{date}",
        "/batches",
        "/batches/{date}/{dataset}",
        "/schemas/{dataset}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} undocumented");
    }
    let post = &spec["paths"]["/batches/{date}"]["post"];
    for status in ["200", "201", "400", "401", "406", "500", "503"] {
        assert!(
            post["responses"][status].is_object(),
            "POST {status} undocumented"
        );
    }
    let content = &post["responses"]["201"]["content"];
    for media in [
        "application/json",
        "application/x-tar",
        "text/csv",
        "application/x-ndjson",
    ] {
        assert!(content[media].is_object(), "{media} undocumented");
    }

    // Dates: the supported range, as a pattern a generator can follow.
    let date = &spec["components"]["schemas"]["BatchDate"];
    assert_eq!(date["format"], "date");
    assert!(
        date["pattern"]
            .as_str()
            .unwrap()
            .starts_with("^(?:(?:19|20|21)")
    );

    let docs = app.get("/docs/").await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
    app.stop().await;
}

#[tokio::test]
async fn the_served_document_publishes_this_servers_volume_limits() {
    let app = spawn_app_with(&[
        ("DATAGEN__SERVER__MAX_ENCOUNTERS", "300"),
        ("DATAGEN__SERVER__MAX_NEW_PATIENTS", "40"),
    ])
    .await;
    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let parameters = spec["paths"]["/batches/{date}"]["post"]["parameters"]
        .as_array()
        .unwrap();
    let maximum = |name: &str| {
        parameters.iter().find(|p| p["name"] == name).unwrap()["schema"]["maximum"].clone()
    };
    assert_eq!(maximum("encounters"), 300);
    assert_eq!(maximum("new_patients"), 40);
    let over = app
        .post("/batches/2026-02-08?mode=sample&encounters=301")
        .await;
    assert!(problem(over, 400).await.contains("maximum of 300"));
    app.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let health: serde_json::Value = app.get("/healthz").await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(app.get("/readyz").await.status(), 200);

    app.post("/batches/2026-02-08?mode=sample").await;
    let metrics = app.get("/metrics").await;
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    for line in [
        "datagen_batches_total{mode=\"sample\",outcome=\"created\"} 1",
        "datagen_rows_written_total{dataset=\"vitals\"}",
        "datagen_generation_duration_seconds_count{mode=\"sample\"} 1",
        "datagen_http_requests_in_flight",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }

    // A crashed writer's journal, with nobody holding the lock: recovery pending.
    std::fs::create_dir(app.dir.path().join("state/raw/.txn")).unwrap();
    let detail = problem(app.get("/readyz").await, 503).await;
    assert!(
        detail.contains("raw") && detail.contains("recovery"),
        "{detail}"
    );
    // The next write to that mode recovers, and readiness returns.
    assert_eq!(app.post("/batches/2026-02-08?mode=raw").await.status(), 201);
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.stop().await;
}

/// The real binary: SIGTERM during a generation lets it commit, answer, and exit 0.
#[test]
fn sigterm_during_a_generation_finishes_the_commit_then_exits_cleanly() {
    let mut server = ServerProcess::start(&[], &[]);
    // A batch big enough to still be generating when the signal lands.
    let url = server.url("/batches/2026-02-08?mode=raw&encounters=20000&new_patients=8000");
    let request = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            reqwest::Client::new()
                .post(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    let status = server.terminate();
    assert_eq!(
        request.join().unwrap().unwrap(),
        201,
        "the in-flight generation completed"
    );
    assert!(status.success(), "exit status {status}");
    assert_valid_batch(&server.dir.path().join("data/raw/2026-02-08"));
}
