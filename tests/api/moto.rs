//! A real local S3 server for the object-store tests: moto's server
//! (`moto[server]` from PyPI, which honours `If-None-Match` and `If-Match`
//! on PutObject), started per test on a free loopback port with a bucket.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::common::python_with;

pub const BUCKET: &str = "datagen";

pub struct Moto {
    pub endpoint: String,
    child: Child,
    store: Arc<dyn ObjectStore>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    /// Starts the server and creates [`BUCKET`]; `None` when moto is not
    /// installed (outside CI).
    pub async fn start() -> Option<Moto> {
        let python = python_with("moto.server", "an object-store test")?;
        let port = free_port();
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            // moto takes unsigned requests: a plain PUT creates the bucket.
            match client.put(format!("{endpoint}/{BUCKET}")).send().await {
                Ok(r) if r.status().is_success() => break,
                _ if started.elapsed() > Duration::from_secs(30) => {
                    panic!("moto did not start on {endpoint}")
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let store = AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(&endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .unwrap();
        Some(Moto {
            endpoint,
            child,
            store: Arc::new(store),
        })
    }

    /// The `AWS_*` variables a datagen process needs to reach it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ]
    }

    /// The `AWS_*` variables and the config keys that put a datagen's data
    /// and state under `s3://datagen/<prefix>/`.
    pub fn settings(&self, prefix: &str) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        all.push((
            "DATAGEN__PATHS__DATA_URL".into(),
            format!("s3://{BUCKET}/{prefix}/data"),
        ));
        all.push((
            "DATAGEN__PATHS__STATE_URL".into(),
            format!("s3://{BUCKET}/{prefix}/state"),
        ));
        all
    }

    /// Every object under `prefix`, by key relative to it.
    pub async fn objects(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        use futures_util::StreamExt;
        let root = Key::from(prefix);
        let metas: Vec<_> = self
            .store
            .list(Some(&root))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|m| m.unwrap())
            .collect();
        let mut out = BTreeMap::new();
        for meta in metas {
            let bytes = self
                .store
                .get(&meta.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let name = meta.location.as_ref()[prefix.len() + 1..].to_string();
            out.insert(name, bytes.to_vec());
        }
        out
    }

    /// Stops answering (SIGSTOP), as a server that hangs or a network that
    /// drops packets would; [`Moto::resume`] undoes it.
    pub fn pause(&self) {
        signal("-STOP", self.child.id());
    }

    pub fn resume(&self) {
        signal("-CONT", self.child.id());
    }
}

fn signal(which: &str, pid: u32) {
    let status = Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = signal_quietly(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal_quietly(pid: u32) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
}
