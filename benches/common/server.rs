//! The release `datagen serve` in its own temp directory on a free loopback
//! port, for the benchmarks that talk to it over HTTP; killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_datagen");

pub struct Server {
    pub child: Child,
    pub url: String,
    /// Its working directory: `data/` and `state/` are inside.
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server with `env` added to its environment and waits
    /// until `/readyz` answers 200 (up to 4 s).
    pub async fn start(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new(BIN)
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stderr(Stdio::null())
            .spawn()
            .expect("start server");
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{}/readyz", server.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
