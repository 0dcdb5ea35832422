//! `spawn_app()`: the real router served on an ephemeral loopback port, over
//! its own temp data and state directories, with a real HTTP client.

use std::collections::HashMap;
use std::path::PathBuf;

use datagen::config::{Config, ConfigSources};
use datagen::pipeline::Engine;
use tempfile::TempDir;

pub use crate::common::sha256_hex;
use crate::common::{Tree, snapshot};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Config keys as `DATAGEN__...` variables, injected rather than set in the
/// process environment.
pub async fn spawn_app_with(settings: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut env: HashMap<String, String> = HashMap::from([
        (
            "DATAGEN__PATHS__DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        ),
        (
            "DATAGEN__PATHS__STATE_DIR".into(),
            dir.path().join("state").display().to_string(),
        ),
        ("DATAGEN__VOLUMES__RAW__ENCOUNTERS".into(), "200".into()),
        ("DATAGEN__VOLUMES__RAW__NEW_PATIENTS".into(), "80".into()),
        ("DATAGEN__SERVER__MAX_ENCOUNTERS".into(), "5000".into()),
    ]);
    for (key, value) in settings {
        env.insert(key.to_string(), value.to_string());
    }
    let config = Config::load(&ConfigSources {
        file: Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/default.yaml"
        ))),
        env: Some(env),
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(datagen::http::run(listener, Engine::new(config), async {
        let _ = rx.await;
    }));
    let app = TestApp {
        address,
        client: reqwest::Client::new(),
        dir,
        shutdown: Some(tx),
        server: Some(server),
    };
    app.wait_until_ready().await;
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn batch_dir(&self, mode: &str, date: &str) -> PathBuf {
        self.data().join(mode).join(date)
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client.post(self.url(path)).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    async fn wait_until_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("server never became ready");
    }

    /// Every file and directory under the temp dir, with file contents.
    pub fn tree(&self) -> Tree {
        snapshot(self.dir.path(), self.dir.path())
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// Asserts a problem+json response with this status, returning its detail.
pub async fn problem(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:datagen:problem:")
    );
    assert!(body["title"].is_string());
    body["detail"].as_str().unwrap().to_string()
}

/// Runs `datagen validate` on a batch directory and insists it passes.
pub fn assert_valid_batch(dir: &std::path::Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_datagen"))
        .arg("validate")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
