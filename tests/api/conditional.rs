//! Committed files answer conditional and range requests as RFC 9110 says,
//! with one ETag (the file's sha256) on every answer that carries one.

use reqwest::Method;

use crate::helpers::{TestApp, problem, sha256_hex, spawn_app};

struct File {
    url: String,
    bytes: Vec<u8>,
    etag: String,
    last_modified: String,
}

async fn committed_file(app: &TestApp) -> File {
    assert_eq!(
        app.post("/batches/2026-02-11?mode=sample").await.status(),
        201
    );
    let bytes = std::fs::read(app.batch_dir("sample", "2026-02-11").join("vitals.csv")).unwrap();
    let url = app.url("/batches/2026-02-11/vitals?mode=sample");
    let head = app.client.get(&url).send().await.unwrap();
    File {
        etag: format!("\"{}\"", sha256_hex(&bytes)),
        last_modified: head.headers()["last-modified"]
            .to_str()
            .unwrap()
            .to_string(),
        url,
        bytes,
    }
}

async fn get(app: &TestApp, file: &File, headers: &[(&str, &str)]) -> reqwest::Response {
    request(app, Method::GET, file, headers).await
}

async fn request(
    app: &TestApp,
    method: Method,
    file: &File,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.client.request(method, &file.url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// A 200 with the whole file and its validators.
async fn assert_whole(response: reqwest::Response, file: &File, why: &str) {
    assert_eq!(response.status(), 200, "{why}");
    assert_eq!(response.headers()["etag"], file.etag.as_str(), "{why}");
    assert_eq!(response.headers()["accept-ranges"], "bytes", "{why}");
    assert!(!response.headers().contains_key("content-range"), "{why}");
    assert_eq!(response.bytes().await.unwrap(), file.bytes, "{why}");
}

#[tokio::test]
async fn invalid_unknown_and_multiple_ranges_are_ignored_with_200() {
    let app = spawn_app().await;
    let file = committed_file(&app).await;
    for range in [
        "null",
        "items=0-5",
        "bytes=5-2",
        "bytes=abc",
        "bytes=0-1, 5-6",
        "bytes=-1,-2",
    ] {
        assert_whole(get(&app, &file, &[("range", range)]).await, &file, range).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn single_ranges_get_206_and_ranges_past_the_end_get_416() {
    let app = spawn_app().await;
    let file = committed_file(&app).await;
    let len = file.bytes.len();
    for (range, from, to) in [
        ("bytes=10-109".to_string(), 10, 109),
        ("bytes=-10".to_string(), len - 10, len - 1),
        (format!("bytes={}-", len - 5), len - 5, len - 1),
        (format!("bytes=0-{}", len * 2), 0, len - 1),
    ] {
        let response = get(&app, &file, &[("range", &range)]).await;
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes {from}-{to}/{len}").as_str(),
            "{range}"
        );
        assert_eq!(response.headers()["etag"], file.etag.as_str());
        assert_eq!(
            response.bytes().await.unwrap(),
            file.bytes[from..=to],
            "{range}"
        );
    }
    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 10, len + 20),
        "bytes=-0".into(),
    ] {
        let response = get(&app, &file, &[("range", &range)]).await;
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes */{len}").as_str(),
            "{range}"
        );
        assert_eq!(
            response.headers().get_all("etag").iter().count(),
            0,
            "{range}"
        );
        problem(response, 416).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn if_range_applies_the_range_only_to_the_current_file() {
    let app = spawn_app().await;
    let file = committed_file(&app).await;
    let stale = get(
        &app,
        &file,
        &[("range", "bytes=0-9"), ("if-range", "\"nope\"")],
    )
    .await;
    assert_whole(stale, &file, "If-Range with another ETag").await;
    let weak = format!("W/{}", file.etag);
    let weak = get(&app, &file, &[("range", "bytes=0-9"), ("if-range", &weak)]).await;
    assert_whole(weak, &file, "If-Range needs a strong ETag").await;
    for validator in [&file.etag, &file.last_modified] {
        let current = get(
            &app,
            &file,
            &[("range", "bytes=0-9"), ("if-range", validator)],
        )
        .await;
        assert_eq!(current.status(), 206, "{validator}");
        assert_eq!(current.bytes().await.unwrap(), file.bytes[..10]);
    }
    app.stop().await;
}

#[tokio::test]
async fn preconditions_give_304_and_412_with_the_one_sha256_etag() {
    let app = spawn_app().await;
    let file = committed_file(&app).await;

    assert_whole(
        get(&app, &file, &[("if-match", &file.etag)]).await,
        &file,
        "If-Match current",
    )
    .await;
    assert_whole(
        get(&app, &file, &[("if-match", "*")]).await,
        &file,
        "If-Match *",
    )
    .await;
    let failed = get(&app, &file, &[("if-match", "\"nope\"")]).await;
    assert!(!failed.headers().contains_key("etag"));
    assert!(problem(failed, 412).await.contains(&file.etag));
    problem(
        get(
            &app,
            &file,
            &[("if-unmodified-since", "Mon, 01 Jan 2001 00:00:00 GMT")],
        )
        .await,
        412,
    )
    .await;

    let listed = format!("\"other\", W/{}", file.etag);
    for headers in [
        vec![("if-none-match", file.etag.as_str())],
        vec![("if-none-match", listed.as_str())],
        vec![("if-modified-since", file.last_modified.as_str())],
    ] {
        let response = get(&app, &file, &headers).await;
        assert_eq!(response.status(), 304, "{headers:?}");
        let etags: Vec<_> = response.headers().get_all("etag").iter().collect();
        assert_eq!(
            etags,
            [file.etag.as_str()],
            "{headers:?}: one ETag, the sha256"
        );
        assert!(response.bytes().await.unwrap().is_empty());
    }
    assert_whole(
        get(&app, &file, &[("if-none-match", "\"other\"")]).await,
        &file,
        "If-None-Match with another ETag",
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let app = spawn_app().await;
    let file = committed_file(&app).await;
    let head = request(&app, Method::HEAD, &file, &[]).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["etag"], file.etag.as_str());
    assert_eq!(
        head.headers()["content-length"],
        file.bytes.len().to_string().as_str()
    );
    assert_eq!(head.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(head.bytes().await.unwrap().is_empty());

    let partial = request(&app, Method::HEAD, &file, &[("range", "bytes=0-9")]).await;
    assert_eq!(partial.status(), 206);
    assert_eq!(partial.headers()["content-length"], "10");
    let cached = request(&app, Method::HEAD, &file, &[("if-none-match", &file.etag)]).await;
    assert_eq!(cached.status(), 304);
    app.stop().await;
}
