//! Parquet over HTTP: `?format=` on POST, the Parquet files in the tar
//! stream, one streamed alone, and `GET /batches/{date}/{dataset}?format=parquet`.

use std::io::Read;

use crate::helpers::{assert_valid_batch, problem, spawn_app};

#[tokio::test]
async fn parquet_files_stream_and_serve_like_the_others() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/batches/2026-03-01?mode=raw&format=both"))
        .header("accept", "application/x-tar")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body = response.bytes().await.unwrap();
    let dir = app.batch_dir("raw", "2026-03-01");
    let mut names = Vec::new();
    for entry in tar::Archive::new(&body[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let name = name.trim_start_matches("2026-03-01/").to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, std::fs::read(dir.join(&name)).unwrap(), "{name}");
        names.push(name);
    }
    assert_eq!(
        names,
        [
            "patients.csv",
            "patients.parquet",
            "encounters.csv",
            "encounters.parquet",
            "vitals.csv",
            "vitals.parquet",
            "labs.csv",
            "labs.parquet",
            "notes.jsonl",
            "notes.parquet",
            "_manifest.json"
        ]
    );
    assert_valid_batch(&dir);
    // A dataset written twice counts its rows once.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("_manifest.json")).unwrap()).unwrap();
    let vitals = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "vitals.csv")
        .unwrap()["rows"]
        .as_u64()
        .unwrap();
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(&format!(
            "datagen_rows_written_total{{dataset=\"vitals\"}} {vitals}\n"
        )),
        "{metrics}"
    );

    let got = app
        .get("/batches/2026-03-01/vitals?mode=raw&format=parquet")
        .await;
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    let bytes = got.bytes().await.unwrap();
    assert_eq!(bytes, std::fs::read(dir.join("vitals.parquet")).unwrap());
    assert!(bytes.starts_with(b"PAR1"));
    let csv = app
        .get("/batches/2026-03-01/vitals?mode=raw&format=csv")
        .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");

    // A Parquet-only batch streams a dataset's Parquet file.
    let one = app
        .post("/batches/2026-03-01?mode=sample&format=parquet&dataset=labs")
        .await;
    assert_eq!(one.status(), 201);
    assert_eq!(
        one.headers()["content-type"],
        "application/vnd.apache.parquet"
    );
    let bytes = one.bytes().await.unwrap();
    assert_eq!(
        bytes,
        std::fs::read(app.batch_dir("sample", "2026-03-01").join("labs.parquet")).unwrap()
    );
    let detail = problem(
        app.get("/batches/2026-03-01/labs?mode=sample&format=csv")
            .await,
        404,
    )
    .await;
    assert!(detail.contains("has no labs.csv"), "{detail}");
    let detail = problem(
        app.post("/batches/2026-03-01?mode=sample&format=csv").await,
        409,
    )
    .await;
    assert!(detail.contains("format=parquet"), "{detail}");
    problem(
        app.post("/batches/2026-03-02?mode=sample&format=orc").await,
        400,
    )
    .await;
    let detail = problem(
        app.post("/batches/2026-03-02?mode=raw&format=parquet&defects=heavy")
            .await,
        409,
    )
    .await;
    assert!(detail.contains("defects spoil the text files"), "{detail}");
    app.stop().await;
}
