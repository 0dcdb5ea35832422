//! Batches and state in an S3 bucket (a real local moto server): read back
//! and validated, two replicas racing on one bucket, a writer killed
//! mid-upload, and the store going away mid-run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::helpers::{ServerProcess, assert_valid_feed, problem, sha256_hex};
use crate::moto::Moto;

const DATES: [&str; 5] = [
    "2026-03-01",
    "2026-03-02",
    "2026-03-03",
    "2026-03-04",
    "2026-03-05",
];

/// The real binary in `dir` with `settings` (and no inherited `DATAGEN*`).
fn datagen(dir: &Path, settings: &[(String, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_datagen"));
    command.current_dir(dir).env("RUST_LOG", "warn");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DATAGEN") {
            command.env_remove(key);
        }
    }
    command.envs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command.args(args);
    command
}

fn run_ok(dir: &Path, settings: &[(String, String)], args: &[&str]) -> Output {
    let out = datagen(dir, settings, args).output().unwrap();
    assert!(
        out.status.success(),
        "datagen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The files of the local sample batches `dates`, generated in order with
/// the same config, by `<date>/<file>`: what the bucket must hold.
fn local_reference(dates: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    for date in dates {
        run_ok(
            dir.path(),
            &[],
            &["generate", "--mode", "sample", "--date", date],
        );
    }
    let mut files = BTreeMap::new();
    for date in dates {
        let batch = dir.path().join("data/sample").join(date);
        for entry in std::fs::read_dir(&batch).unwrap() {
            let entry = entry.unwrap();
            files.insert(
                format!("{date}/{}", entry.file_name().to_string_lossy()),
                std::fs::read(entry.path()).unwrap(),
            );
        }
    }
    files
}

/// The bucket's batch objects under `prefix`, without the `_SUCCESS`
/// markers, after checking each marker names its manifest.
/// Commits `DATES[0]` into the bucket, then starts `DATES[1]` and kills the
/// writer (SIGKILL) at crash point `point` of its upload.
fn cut_at(work: &Path, settings: &[(String, String)], point: &str) {
    use std::io::BufRead;
    run_ok(
        work,
        settings,
        &["generate", "--mode", "sample", "--date", DATES[0]],
    );
    let mut child = datagen(
        work,
        settings,
        &["generate", "--mode", "sample", "--date", DATES[1]],
    )
    .env("DATAGEN_CRASHPOINT", point)
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let reached = std::io::BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains(&format!("crashpoint {point}")));
    assert!(reached, "never reached {point}");
    child.kill().unwrap();
    child.wait().unwrap();
}

async fn committed_objects(moto: &Moto, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let objects = moto.objects(&format!("{prefix}/data/sample")).await;
    let mut files = BTreeMap::new();
    for (key, bytes) in objects {
        if let Some(date) = key.strip_suffix("/_SUCCESS") {
            let manifest = &moto_manifest(&files, date, prefix, moto).await;
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                format!("{}\n", sha256_hex(manifest)),
                "{key} names another manifest"
            );
        } else {
            files.insert(key, bytes);
        }
    }
    files
}

async fn moto_manifest(
    seen: &BTreeMap<String, Vec<u8>>,
    date: &str,
    prefix: &str,
    moto: &Moto,
) -> Vec<u8> {
    let key = format!("{date}/_manifest.json");
    match seen.get(&key) {
        Some(bytes) => bytes.clone(),
        None => moto
            .objects(&format!("{prefix}/data/sample/{date}"))
            .await
            .remove("_manifest.json")
            .expect("a _SUCCESS without a manifest"),
    }
}

/// The dates under `prefix` with a `_SUCCESS`.
async fn successes(moto: &Moto, prefix: &str) -> Vec<String> {
    moto.objects(&format!("{prefix}/data/sample"))
        .await
        .keys()
        .filter_map(|k| k.strip_suffix("/_SUCCESS").map(String::from))
        .collect()
}

async fn head(moto: &Moto, prefix: &str) -> serde_json::Value {
    let objects = moto.objects(&format!("{prefix}/state/sample")).await;
    serde_json::from_slice(&objects["HEAD.json"]).unwrap()
}

/// The dates a server lists for the sample mode, newest first.
async fn listed(client: &reqwest::Client, server: &ServerProcess) -> Vec<String> {
    let list: serde_json::Value = client
        .get(server.url("/batches?mode=sample"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["date"].as_str().unwrap().to_string())
        .collect()
}

fn server(moto: &Moto, prefix: &str, extra: &[(&str, &str)]) -> ServerProcess {
    let settings = moto.settings(prefix);
    let mut env: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend_from_slice(extra);
    ServerProcess::start(&[], &env)
}

#[tokio::test]
async fn batches_generated_into_a_bucket_read_back_validate_and_equal_a_local_run() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let out = run_ok(
        work.path(),
        &moto.settings("t"),
        &[
            "generate", "--mode", "sample", "--from", DATES[0], "--to", DATES[2],
        ],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created"));

    // Read back from the bucket alone: every date has _SUCCESS naming its
    // manifest, the files validate as a feed, and they are the bytes a
    // local run writes.
    assert_eq!(successes(&moto, "t").await, &DATES[..3]);
    let objects = committed_objects(&moto, "t").await;
    let copy = tempfile::tempdir().unwrap();
    for (key, bytes) in &objects {
        let path = copy.path().join("sample").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    for date in &DATES[..3] {
        let marker = moto.objects(&format!("t/data/sample/{date}")).await;
        std::fs::write(
            copy.path().join("sample").join(date).join("_SUCCESS"),
            &marker["_SUCCESS"],
        )
        .unwrap();
    }
    assert_valid_feed(&copy.path().join("sample"));
    assert_eq!(objects, local_reference(&DATES[..3]));
    let state = head(&moto, "t").await;
    assert!(state["pending"].is_null(), "{state}");

    // Another replica, with an empty cache, serves the bucket's batches and
    // carries on from its state.
    let replica = server(&moto, "t", &[]);
    let client = reqwest::Client::new();
    assert_eq!(
        listed(&client, &replica).await,
        ["2026-03-03", "2026-03-02", "2026-03-01"]
    );
    let vitals = client
        .get(replica.url("/batches/2026-03-02/vitals?mode=sample"))
        .send()
        .await
        .unwrap();
    assert_eq!(vitals.status(), 200);
    assert_eq!(
        vitals.bytes().await.unwrap().to_vec(),
        objects["2026-03-02/vitals.csv"]
    );
    // A committed batch as a tar stream: the replica fetches what its cache
    // lacks first.
    let tar = client
        .post(replica.url(&format!("/batches/{}?mode=sample", DATES[0])))
        .header("accept", "application/x-tar")
        .send()
        .await
        .unwrap();
    assert_eq!(tar.status(), 200);
    let body = tar.bytes().await.unwrap();
    let mut members = BTreeMap::new();
    for entry in tar::Archive::new(&body[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        members.insert(name, bytes);
    }
    let expected: BTreeMap<String, Vec<u8>> = objects
        .iter()
        .filter(|(k, _)| k.starts_with(DATES[0]))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(members, expected);
    // A new date, streamed as it is committed.
    let posted = client
        .post(replica.url(&format!("/batches/{}?mode=sample", DATES[3])))
        .header("accept", "application/x-tar")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let streamed = posted.bytes().await.unwrap();
    let names: Vec<String> = tar::Archive::new(&streamed[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert_eq!(successes(&moto, "t").await, &DATES[..4]);
    assert_eq!(
        committed_objects(&moto, "t").await,
        local_reference(&DATES[..4])
    );
}

/// The day before [`DATES`].
const FIRST: &str = "2026-02-28";

/// POSTs `date` until it is not refused for coming before its turn, as a
/// scheduler retrying would; the final status.
async fn post_in_turn(client: reqwest::Client, url: String) -> u16 {
    loop {
        let response = client.post(&url).send().await.unwrap();
        let status = response.status().as_u16();
        if status == 409 {
            let body: serde_json::Value = response.json().await.unwrap();
            let early = body["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("the next sample batch is"));
            if body["type"] == "urn:datagen:problem:date-order" && early {
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                continue;
            }
            panic!("409 {body}");
        }
        return status;
    }
}

#[tokio::test]
async fn two_servers_on_one_bucket_take_20_concurrent_posts_over_5_dates_and_commit_each_once() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let servers = [server(&moto, "race", &[]), server(&moto, "race", &[])];
    let client = reqwest::Client::new();
    // The mode's first day comes first (a fresh mode may start on any date).
    let first = client
        .post(servers[0].url(&format!("/batches/{FIRST}?mode=sample")))
        .send()
        .await
        .unwrap();
    created(first, &servers[0]).await;
    let mut posts = tokio::task::JoinSet::new();
    for round in 0..4 {
        for date in DATES {
            let url = servers[round % 2].url(&format!("/batches/{date}?mode=sample"));
            posts.spawn(post_in_turn(client.clone(), url));
        }
    }
    let mut statuses = BTreeMap::new();
    while let Some(status) = posts.join_next().await {
        *statuses.entry(status.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(statuses, BTreeMap::from([(200, 15), (201, 5)]));

    // One batch per date, the bytes of a single writer's run: no date was
    // written twice and no ID issued twice.
    let all: Vec<&str> = [FIRST].into_iter().chain(DATES).collect();
    assert_eq!(successes(&moto, "race").await, all);
    let objects = committed_objects(&moto, "race").await;
    assert_eq!(objects, local_reference(&all));
    let mut encounters = std::collections::HashSet::new();
    for date in DATES {
        let text = String::from_utf8(objects[&format!("{date}/encounters.csv")].clone()).unwrap();
        for line in text.lines().skip(1) {
            // A stay is sent again as it changes; its ID stays its own.
            encounters.insert((line.split(',').next().unwrap().to_string(), date));
        }
    }
    let ids: std::collections::HashSet<_> = encounters.iter().map(|(id, _)| id).collect();
    assert!(ids.len() > 50, "{} encounters", ids.len());

    // Both replicas answer with the same manifest for every date.
    for date in DATES {
        let manifests: Vec<serde_json::Value> =
            futures_util::future::join_all(servers.iter().map(|s| {
                let client = client.clone();
                let url = s.url(&format!("/batches/{date}?mode=sample"));
                async move { client.get(url).send().await.unwrap().json().await.unwrap() }
            }))
            .await;
        assert_eq!(manifests[0], manifests[1]);
    }
    assert!(head(&moto, "race").await["pending"].is_null());
    // The race did happen: a replica that generated a date lost the head
    // to the other and took the winner's batch instead (the same bytes,
    // as checked above), or finished the other's commit.
    let log: Vec<String> = servers.iter().flat_map(|s| s.log()).collect();
    let lost = log
        .iter()
        .filter(|l| l.contains("moved the state first"))
        .count();
    let finished = log
        .iter()
        .filter(|l| l.contains("finishing a commit"))
        .count();
    eprintln!("lost races: {lost}, commits finished for another replica: {finished}");
    assert!(lost + finished > 0, "the two replicas never raced");
}

/// The points of an object-store commit, in order (see `src/crashpoint.rs`):
/// the head claims the commit, the first file is up, all files are up, the
/// manifest is up, `_SUCCESS` is up.
const UPLOAD_POINTS: [&str; 5] = [
    "pending",
    "uploading",
    "uploaded",
    "manifested",
    "succeeded",
];

#[tokio::test]
async fn a_writer_killed_mid_upload_leaves_no_success_and_the_next_post_completes_the_same_bytes() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let reference = local_reference(&DATES[..2]);
    for (i, point) in UPLOAD_POINTS.iter().enumerate() {
        let prefix = format!("kill-{point}");
        let settings = moto.settings(&prefix);
        let work = tempfile::tempdir().unwrap();
        cut_at(work.path(), &settings, point);

        let state = head(&moto, &prefix).await;
        assert_eq!(state["pending"]["dates"][0], DATES[1], "{point}: {state}");
        let committed = successes(&moto, &prefix).await;
        if *point == "succeeded" {
            assert_eq!(committed, &DATES[..2], "{point}");
        } else {
            assert_eq!(
                committed,
                &DATES[..1],
                "{point}: no _SUCCESS for the cut date"
            );
        }

        // The next request finishes it: from the same machine (its cache
        // holds the batch) or, every other point, from a fresh replica that
        // regenerates it from the state it was made from.
        if i % 2 == 0 {
            let out = run_ok(
                work.path(),
                &settings,
                &["generate", "--mode", "sample", "--date", DATES[1]],
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("already committed"));
        } else {
            let replica = server(&moto, &prefix, &[]);
            // Until it is finished, readers do not see the cut date.
            let client = reqwest::Client::new();
            assert_eq!(listed(&client, &replica).await, &DATES[..1], "{point}");
            let cut = client
                .get(replica.url(&format!("/batches/{}?mode=sample", DATES[1])))
                .send()
                .await
                .unwrap();
            assert_eq!(cut.status(), 404, "{point}");
            let response = client
                .post(replica.url(&format!("/batches/{}?mode=sample", DATES[1])))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{point}");
        }
        assert_eq!(
            committed_objects(&moto, &prefix).await,
            reference,
            "{point}"
        );
        assert!(head(&moto, &prefix).await["pending"].is_null(), "{point}");
    }
}

/// Asserts a 201, showing the answer's body and the server's log if it is
/// not one.
async fn created(response: reqwest::Response, server: &ServerProcess) {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 201, "{body}\n{}", server.log().join("\n"));
}

#[tokio::test]
async fn with_the_store_stopped_a_post_fails_clearly_commits_nothing_and_recovers_after() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let replica = server(
        &moto,
        "stop",
        &[
            ("DATAGEN__OBJECT_STORE__TIMEOUT_SECS", "3"),
            ("DATAGEN__OBJECT_STORE__MAX_RETRIES", "0"),
        ],
    );
    let client = reqwest::Client::new();
    let post = |date: &str| {
        client
            .post(replica.url(&format!("/batches/{date}?mode=sample")))
            .send()
    };
    created(post(DATES[0]).await.unwrap(), &replica).await;
    let before = moto.objects("stop").await;

    moto.pause();
    let detail = problem(post(DATES[1]).await.unwrap(), 503).await;
    let listing = client
        .get(replica.url("/batches?mode=sample"))
        .send()
        .await
        .unwrap();
    let ready = client.get(replica.url("/readyz")).send().await.unwrap();
    moto.resume();
    assert_eq!(ready.status(), 503);
    assert!(
        detail.contains("s3://datagen/stop/state/sample/HEAD.json"),
        "{detail}"
    );
    assert!(detail.contains("Nothing was committed"), "{detail}");
    assert_eq!(listing.status(), 503);
    assert_eq!(moto.objects("stop").await, before, "nothing was written");

    // Back up: the same POST commits, with a single writer's bytes.
    created(post(DATES[1]).await.unwrap(), &replica).await;
    assert_eq!(
        committed_objects(&moto, "stop").await,
        local_reference(&DATES[..2])
    );

    // The CLI says the same, and exits 1.
    moto.pause();
    let work = tempfile::tempdir().unwrap();
    let mut settings = moto.settings("stop");
    settings.push(("DATAGEN__OBJECT_STORE__TIMEOUT_SECS".into(), "3".into()));
    settings.push(("DATAGEN__OBJECT_STORE__MAX_RETRIES".into(), "0".into()));
    let out = datagen(
        work.path(),
        &settings,
        &["generate", "--mode", "sample", "--date", DATES[2]],
    )
    .output()
    .unwrap();
    moto.resume();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read s3://datagen/stop/state/sample/HEAD.json"),
        "{stderr}"
    );
    assert_eq!(successes(&moto, "stop").await, &DATES[..2]);
}

#[tokio::test]
async fn a_replica_with_another_config_refuses_to_finish_a_pending_commit() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let settings = moto.settings("mixed");
    let work = tempfile::tempdir().unwrap();
    cut_at(work.path(), &settings, "uploading");
    let before = moto.objects("mixed").await;

    // Another seed would make other bytes for the same dates: it must not
    // publish them under the pending commit.
    let mut other = settings.clone();
    other.push(("DATAGEN__SEED".into(), "7".into()));
    let elsewhere = tempfile::tempdir().unwrap();
    let out = datagen(
        elsewhere.path(),
        &other,
        &["generate", "--mode", "sample", "--date", DATES[1]],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("every replica on one bucket must run the same config"),
        "{stderr}"
    );
    assert_eq!(moto.objects("mixed").await, before, "nothing was written");

    // The right config finishes it.
    run_ok(
        elsewhere.path(),
        &settings,
        &["generate", "--mode", "sample", "--date", DATES[1]],
    );
    assert_eq!(successes(&moto, "mixed").await, &DATES[..2]);
}
