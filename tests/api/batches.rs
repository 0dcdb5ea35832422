//! The batch routes over real HTTP.

use std::collections::HashSet;
use std::io::Read;

use crate::helpers::{
    assert_valid_batch, assert_valid_feed, problem, sha256_hex, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn post_creates_a_batch_then_returns_the_same_manifest_with_200() {
    let app = spawn_app().await;
    let first = app.post("/batches/2026-02-08?mode=sample").await;
    assert_eq!(first.status(), 201);
    assert_eq!(
        first.headers()["location"],
        "/batches/2026-02-08?mode=sample"
    );
    assert_eq!(first.headers()["content-type"], "application/json");
    let manifest: serde_json::Value = first.json().await.unwrap();
    assert_eq!(manifest["date"], "2026-02-08");
    assert_eq!(manifest["mode"], "sample");
    for file in manifest["files"].as_array().unwrap() {
        let bytes = std::fs::read(
            app.batch_dir("sample", "2026-02-08")
                .join(file["name"].as_str().unwrap()),
        )
        .unwrap();
        assert_eq!(sha256_hex(&bytes), file["sha256"]);
    }

    let before = app.tree();
    let again = app.post("/batches/2026-02-08?mode=sample").await;
    assert_eq!(again.status(), 200);
    let same: serde_json::Value = again.json().await.unwrap();
    assert_eq!(same, manifest);
    assert_eq!(app.tree(), before, "nothing regenerated");

    // The manifest is also readable with GET, and the mode defaults to raw.
    let got: serde_json::Value = app
        .get("/batches/2026-02-08?mode=sample")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, manifest);
    problem(app.get("/batches/2026-02-08").await, 404).await;
    app.stop().await;
}

#[tokio::test]
async fn a_tar_stream_extracts_to_exactly_the_committed_bytes() {
    let app = spawn_app().await;
    for expected_status in [201, 200] {
        let response = app
            .client
            .post(app.url("/batches/2026-02-09?mode=raw&encounters=800"))
            .header("accept", "application/x-tar")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected_status);
        assert_eq!(response.headers()["content-type"], "application/x-tar");
        let body = response.bytes().await.unwrap();
        let mut archive = tar::Archive::new(&body[..]);
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            let name = path.strip_prefix("2026-02-09/").unwrap().to_string();
            let on_disk = std::fs::read(app.batch_dir("raw", "2026-02-09").join(&name)).unwrap();
            assert_eq!(content, on_disk, "{name}");
            names.push(name);
        }
        assert_eq!(
            names,
            [
                "patients.csv",
                "encounters.csv",
                "vitals.csv",
                "labs.csv",
                "notes.jsonl",
                "_manifest.json"
            ]
        );
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(app.batch_dir("raw", "2026-02-09").join("_manifest.json")).unwrap(),
        )
        .unwrap();
        for file in manifest["files"].as_array().unwrap() {
            let on_disk = std::fs::read(
                app.batch_dir("raw", "2026-02-09")
                    .join(file["name"].as_str().unwrap()),
            )
            .unwrap();
            assert_eq!(sha256_hex(&on_disk), file["sha256"]);
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn one_dataset_streams_as_csv() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/batches/2026-02-10?mode=sample&dataset=vitals"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let body = response.bytes().await.unwrap();
    assert_eq!(
        &body[..],
        &std::fs::read(app.batch_dir("sample", "2026-02-10").join("vitals.csv")).unwrap()[..]
    );

    let csv_without_dataset = app
        .client
        .post(app.url("/batches/2026-02-10?mode=sample"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(problem(csv_without_dataset, 400).await.contains("dataset"));
    // The curl form: no Accept header, the media type follows the dataset.
    let no_accept = app
        .post("/batches/2026-02-10?mode=sample&dataset=patients")
        .await;
    assert_eq!(no_accept.status(), 200, "already committed");
    assert_eq!(
        no_accept.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        no_accept.bytes().await.unwrap(),
        std::fs::read(app.batch_dir("sample", "2026-02-10").join("patients.csv")).unwrap()
    );
    for accept in ["*/*", "text/*", "application/json;q=0.5, text/csv"] {
        let response = app
            .client
            .post(app.url("/batches/2026-02-10?mode=sample&dataset=labs"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{accept}");
        assert_eq!(
            response.headers()["content-type"],
            "text/csv; charset=utf-8"
        );
    }
    // An Accept that excludes the dataset's type contradicts it: 406.
    for accept in [
        "application/json",
        "application/x-tar",
        "application/x-ndjson",
    ] {
        let before = app.tree();
        let contradicting = app
            .client
            .post(app.url("/batches/2026-02-11?mode=sample&dataset=vitals"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        let detail = problem(contradicting, 406).await;
        assert!(
            detail.contains("vitals.csv is served as text/csv"),
            "{accept}: {detail}"
        );
        assert_eq!(app.tree(), before, "{accept}: wrote something");
    }
    let unknown = app
        .client
        .post(app.url("/batches/2026-02-10?mode=sample&dataset=labz"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(problem(unknown, 400).await.contains("labz"));
    app.stop().await;
}

#[tokio::test]
async fn an_unsupported_accept_gets_406_and_writes_nothing() {
    let app = spawn_app().await;
    let before = app.tree();
    let response = app
        .client
        .post(app.url("/batches/2026-02-10?mode=sample"))
        .header("accept", "image/png")
        .send()
        .await
        .unwrap();
    assert!(problem(response, 406).await.contains("image/png"));
    assert_eq!(app.tree(), before);
    app.stop().await;
}

#[tokio::test]
async fn committed_files_support_etag_range_and_gzip() {
    let app = spawn_app().await;
    app.post("/batches/2026-02-11?mode=sample").await;
    let path = app.batch_dir("sample", "2026-02-11").join("vitals.csv");
    let on_disk = std::fs::read(&path).unwrap();
    let url = app.url("/batches/2026-02-11/vitals?mode=sample");

    let full = app.client.get(&url).send().await.unwrap();
    assert_eq!(full.status(), 200);
    let etag = full.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&on_disk)));
    assert!(full.headers().contains_key("last-modified"));
    assert_eq!(full.bytes().await.unwrap(), on_disk);

    let not_modified = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);

    let range = app
        .client
        .get(&url)
        .header("range", "bytes=10-109")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().await.unwrap(), on_disk[10..110]);

    let gzipped = app
        .client
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(
        gzipped.headers()["etag"].to_str().unwrap(),
        format!("W/{etag}")
    );
    let compressed = gzipped.bytes().await.unwrap();
    assert!(compressed.len() < on_disk.len() / 2 && compressed.starts_with(&[0x1f, 0x8b]));

    // POSTs are never compressed, even when the client would accept it.
    let post = app
        .client
        .post(app.url("/batches/2026-02-11?mode=sample"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(!post.headers().contains_key("content-encoding"));

    problem(app.get("/batches/2026-02-11/labz?mode=sample").await, 404).await;
    problem(app.get("/batches/2026-02-12/vitals?mode=sample").await, 404).await;
    app.stop().await;
}

/// A mode's days run forward: a gap is a 409 naming the next date, and
/// `catch_up=true` fills it (within `server.max_catch_up_days`); the list
/// shows every day, newest first.
#[tokio::test]
async fn dates_run_forward_catch_up_fills_a_gap_and_the_list_is_newest_first() {
    let app = spawn_app_with(&[("DATAGEN__SERVER__MAX_CATCH_UP_DAYS", "1")]).await;
    assert_eq!(
        app.post("/batches/2026-02-09?mode=sample").await.status(),
        201
    );
    let before = app.tree();
    let detail = problem(app.post("/batches/2026-02-11?mode=sample").await, 409).await;
    assert!(
        detail.contains("the next sample batch is 2026-02-10, not 2026-02-11"),
        "{detail}"
    );
    let detail = problem(app.post("/batches/2026-02-08?mode=sample").await, 409).await;
    assert!(
        detail.contains("comes before the last sample batch"),
        "{detail}"
    );
    assert_eq!(app.tree(), before, "a refused date wrote something");

    let caught: serde_json::Value = app
        .post("/batches/2026-02-11?mode=sample&catch_up=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(caught["date"], "2026-02-11");
    // Two days missing is more than this server lets one request catch up.
    let before = app.tree();
    let detail = problem(
        app.post("/batches/2026-02-14?mode=sample&catch_up=true")
            .await,
        409,
    )
    .await;
    assert!(
        detail.contains("generating 2 sample batches first, from 2026-02-12")
            && detail.contains("server.max_catch_up_days"),
        "{detail}"
    );
    assert_eq!(app.tree(), before);

    let list: serde_json::Value = app.get("/batches?mode=sample").await.json().await.unwrap();
    let dates: Vec<&str> = list["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2026-02-11", "2026-02-10", "2026-02-09"]);
    let first = &list["batches"][0];
    assert!(first["rows"]["vitals"].as_u64().unwrap() > 0);
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    let raw: serde_json::Value = app.get("/batches").await.json().await.unwrap();
    assert_eq!(raw["batches"].as_array().unwrap().len(), 0);
    for date in ["2026-02-09", "2026-02-10", "2026-02-11"] {
        assert_valid_batch(&app.batch_dir("sample", date));
    }
    app.stop().await;
}

#[tokio::test]
async fn concurrent_posts_of_one_date_generate_it_once() {
    let app = spawn_app().await;
    let requests = (0..8).map(|_| app.post("/batches/2026-03-01?mode=raw"));
    let responses = futures_util::future::join_all(requests).await;
    let mut statuses = Vec::new();
    let mut manifests = HashSet::new();
    for r in responses {
        statuses.push(r.status().as_u16());
        manifests.insert(r.text().await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 201]);
    assert_eq!(manifests.len(), 1, "all got the same manifest");
    app.stop().await;
}

/// Concurrent catching-up POSTs of different dates of both modes: however
/// they interleave, each day is generated once, in order, and the feed is
/// the one a single caller asking day by day would get.
#[tokio::test]
async fn concurrent_posts_of_different_dates_and_modes_keep_ids_unique() {
    let app = spawn_app().await;
    let dates = ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"];
    let paths: Vec<String> = dates
        .iter()
        .flat_map(|date| {
            ["raw", "sample"].map(|mode| format!("/batches/{date}?mode={mode}&catch_up=true"))
        })
        .collect();
    let mut created = 0;
    for r in futures_util::future::join_all(paths.iter().map(|p| app.post(p))).await {
        assert!([200, 201].contains(&r.status().as_u16()), "{}", r.status());
        created += usize::from(r.status() == 201);
    }
    assert!(created >= 2, "each mode created its batches");
    for mode in ["raw", "sample"] {
        let mut encounters = HashSet::new();
        let mut vitals = HashSet::new();
        for date in dates {
            let dir = app.batch_dir(mode, date);
            let mut rdr = csv::Reader::from_path(dir.join("encounters.csv")).unwrap();
            // An encounter appears when it starts and again when it
            // finishes: (id, status) is unique.
            for r in rdr.records() {
                let r = r.unwrap();
                assert!(
                    encounters.insert((r[0].to_string(), r[9].to_string())),
                    "duplicate encounter row in {mode}"
                );
            }
            let mut rdr = csv::Reader::from_path(dir.join("vitals.csv")).unwrap();
            for r in rdr.records() {
                assert!(
                    vitals.insert(r.unwrap()[0].to_string()),
                    "duplicate vital id in {mode}"
                );
            }
            assert_valid_batch(&dir);
        }
        let counter = std::fs::read_to_string(
            app.dir
                .path()
                .join("state")
                .join(mode)
                .join("encounter_id_counter.txt"),
        )
        .unwrap();
        let issued: HashSet<&String> = encounters.iter().map(|(id, _)| id).collect();
        let census =
            std::fs::read_to_string(app.dir.path().join("state").join(mode).join("census.csv"))
                .unwrap();
        let waiting = census
            .lines()
            .skip(1)
            .filter(|l| !issued.contains(&l.split(',').nth(2).unwrap().to_string()))
            .count();
        assert_eq!(
            counter.trim().parse::<usize>().unwrap(),
            issued.len() + waiting,
            "{mode}: the counter matches the encounters issued"
        );
        assert_valid_feed(&app.dir.path().join("data").join(mode));
    }
    app.stop().await;
}

#[tokio::test]
async fn per_request_volumes_are_exact_and_bounded() {
    let app = spawn_app_with(&[("DATAGEN__SERVER__MAX_ENCOUNTERS", "100")]).await;
    let ok: serde_json::Value = app
        .post("/batches/2026-03-06?mode=raw&encounters=100&new_patients=40")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ok["volumes"]["encounters"], 100);
    assert_eq!(ok["volumes"]["new_patients"], 40);
    let before = app.tree();
    let detail = problem(
        app.post("/batches/2026-03-07?mode=raw&encounters=101")
            .await,
        400,
    )
    .await;
    assert!(
        detail.contains("encounters=101") && detail.contains("100"),
        "{detail}"
    );
    assert_eq!(app.tree(), before);
    app.stop().await;
}

#[tokio::test]
async fn a_large_tar_stream_starts_before_its_batch_is_committed() {
    let app = spawn_app_with(&[("DATAGEN__SERVER__MAX_ENCOUNTERS", "20000")]).await;
    let mut response = app
        .client
        .post(app.url("/batches/2026-02-12?mode=raw&encounters=20000&new_patients=8000"))
        .header("accept", "application/x-tar")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let first = response.chunk().await.unwrap().unwrap();
    // The first bytes are patients.csv's tar header, and they arrived while
    // vitals were still being generated: nothing is committed yet.
    assert_eq!(&first[..21], b"2026-02-12/patients.c");
    assert!(
        !app.batch_dir("raw", "2026-02-12").exists(),
        "the stream waited for the commit"
    );
    let mut total = first.len();
    while let Some(chunk) = response.chunk().await.unwrap() {
        total += chunk.len();
    }
    assert!(
        app.batch_dir("raw", "2026-02-12")
            .join("_manifest.json")
            .exists()
    );
    let on_disk: u64 = std::fs::read_dir(app.batch_dir("raw", "2026-02-12"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total as u64 > on_disk, "the archive holds every file");
    app.stop().await;
}

#[tokio::test]
async fn notes_stream_as_json_lines_and_labs_as_csv() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/batches/2026-02-13?mode=raw&dataset=notes"))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = response.bytes().await.unwrap();
    let on_disk = std::fs::read(app.batch_dir("raw", "2026-02-13").join("notes.jsonl")).unwrap();
    assert_eq!(&body[..], &on_disk[..]);
    for line in std::str::from_utf8(&body).unwrap().lines() {
        let note: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(note["text"].as_str().unwrap().len() > 10);
    }
    let get = app.get("/batches/2026-02-13/notes?mode=raw").await;
    assert_eq!(get.headers()["content-type"], "application/x-ndjson");
    assert_eq!(get.bytes().await.unwrap(), on_disk);
    let labs = app.get("/batches/2026-02-13/labs?mode=raw").await;
    assert_eq!(labs.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        labs.bytes().await.unwrap(),
        std::fs::read(app.batch_dir("raw", "2026-02-13").join("labs.csv")).unwrap()
    );

    // Asking for notes as CSV contradicts the dataset: 406.
    let wrong = app
        .client
        .post(app.url("/batches/2026-02-13?mode=raw&dataset=notes"))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(problem(wrong, 406).await.contains("application/x-ndjson"));
    // Without Accept, notes come as JSON Lines.
    let inferred = app.post("/batches/2026-02-13?mode=raw&dataset=notes").await;
    assert_eq!(inferred.status(), 200);
    assert_eq!(inferred.headers()["content-type"], "application/x-ndjson");
    assert_eq!(inferred.bytes().await.unwrap(), on_disk);
    app.stop().await;
}
