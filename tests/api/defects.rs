//! Defects over HTTP: `?defects=` on POST, the ground truth in the tar
//! stream and at `GET /batches/{date}/defects`, and a profile that belongs
//! to its state.

use std::io::Read;

use crate::helpers::{assert_valid_batch, problem, spawn_app};

#[tokio::test]
async fn a_heavy_batch_streams_its_truth_and_serves_it() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/batches/2026-03-01?mode=raw&defects=heavy&encounters=800"))
        .header("accept", "application/x-tar")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body = response.bytes().await.unwrap();
    let mut archive = tar::Archive::new(&body[..]);
    let mut names = Vec::new();
    let mut truth = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name.ends_with("_defects.jsonl") {
            entry.read_to_end(&mut truth).unwrap();
        }
        names.push(name.trim_start_matches("2026-03-01/").to_string());
    }
    assert_eq!(
        names,
        [
            "patients.csv",
            "encounters.csv",
            "vitals.csv",
            "labs.csv",
            "notes.jsonl",
            "_defects.jsonl",
            "_manifest.json"
        ]
    );
    let dir = app.batch_dir("raw", "2026-03-01");
    assert_eq!(truth, std::fs::read(dir.join("_defects.jsonl")).unwrap());
    assert!(String::from_utf8_lossy(&truth).lines().count() > 20);
    assert_valid_batch(&dir);

    let got = app.get("/batches/2026-03-01/defects?mode=raw").await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "application/x-ndjson");
    assert_eq!(got.bytes().await.unwrap(), truth);
    let manifest: serde_json::Value = app
        .get("/batches/2026-03-01?mode=raw")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["defects"], "heavy");
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "_defects.jsonl")
    );

    // The same date again with its own profile: 200, nothing regenerated.
    let again = app
        .post("/batches/2026-03-01?mode=raw&defects=heavy&encounters=800")
        .await;
    assert_eq!(again.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn another_profile_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    assert_eq!(
        app.post("/batches/2026-03-01?mode=sample&defects=light")
            .await
            .status(),
        201
    );
    let before = app.tree();
    for query in ["", "&defects=heavy", "&defects=none"] {
        let detail = problem(
            app.post(&format!("/batches/2026-03-02?mode=sample{query}"))
                .await,
            409,
        )
        .await;
        assert!(
            detail.contains("started with the defects profile light"),
            "{detail}"
        );
    }
    assert_eq!(app.tree(), before);
    // A clean batch has no truth to stream or serve.
    let detail = problem(
        app.post("/batches/2026-03-01?mode=raw&dataset=defects")
            .await,
        409,
    )
    .await;
    assert!(detail.contains("needs a defects profile"), "{detail}");
    assert_eq!(app.post("/batches/2026-03-01?mode=raw").await.status(), 201);
    let detail = problem(app.get("/batches/2026-03-01/defects?mode=raw").await, 404).await;
    assert!(detail.contains("has no _defects.jsonl"), "{detail}");
    problem(
        app.post("/batches/2026-03-02?mode=raw&defects=messy").await,
        400,
    )
    .await;
    app.stop().await;
}
