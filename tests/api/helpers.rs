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
        ("DATAGEN__VOLUMES__RAW__POPULATION".into(), "5000".into()),
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
    let server = tokio::spawn(datagen::http::run(
        listener,
        Engine::new(config).unwrap(),
        async {
            let _ = rx.await;
        },
    ));
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
    assert_validates(&[], dir);
}

/// Checks a mode's batches as one feed with `datagen validate --feed`.
pub fn assert_valid_feed(dir: &std::path::Path) {
    assert_validates(&["--feed"], dir);
}

fn assert_validates(flags: &[&str], dir: &std::path::Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_datagen"))
        .arg("validate")
        .args(flags)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real `datagen serve` binary on an ephemeral port in its own temp
/// directory, with every stderr line kept for the test to read.
pub struct ServerProcess {
    pub address: String,
    pub dir: TempDir,
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `datagen serve` with `args` after `serve` and `env` on top of a
    /// clean environment, and waits for its "listening" line.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::start_limited(args, env, None)
    }

    /// [`ServerProcess::start`] with at most `open_files` file descriptors
    /// (`prlimit --nofile`), as `ulimit -n` would set.
    pub fn start_limited(
        args: &[&str],
        env: &[(&str, &str)],
        open_files: Option<u64>,
    ) -> ServerProcess {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut command = match open_files {
            Some(n) => {
                let mut c = std::process::Command::new("prlimit");
                c.arg(format!("--nofile={n}"))
                    .arg(env!("CARGO_BIN_EXE_datagen"));
                c
            }
            None => std::process::Command::new(env!("CARGO_BIN_EXE_datagen")),
        };
        command
            .current_dir(dir.path())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DATAGEN") {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().unwrap();
        let mut reader = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = reader.next().expect("server exited early").unwrap();
            if let Some(address) = listening_address(&line) {
                break address;
            }
        };
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in reader.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        ServerProcess {
            address,
            dir,
            child,
            lines,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The stderr lines written so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address of a "datagen listening" line, in text or JSON log format.
fn listening_address(line: &str) -> Option<String> {
    if !line.contains("datagen listening") {
        return None;
    }
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return json["fields"]["address"].as_str().map(String::from);
    }
    let rest = line.split("address=").nth(1)?;
    rest.split_whitespace().next().map(String::from)
}
