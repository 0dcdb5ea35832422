//! A sandbox per test: a temp working directory in which the real `datagen`
//! binary runs with its default relative `data/` and `state/` folders.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use tempfile::TempDir;

use crate::common::{Tree, sha256_hex, snapshot};

pub const BIN: &str = env!("CARGO_BIN_EXE_datagen");

pub struct Sandbox {
    dir: PathBuf,
    /// Removes the directory when the sandbox is dropped; `None` for a
    /// [`Sandbox::shared`] one.
    _temp: Option<TempDir>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let temp = tempfile::tempdir().unwrap();
        Sandbox {
            dir: temp.path().to_path_buf(),
            _temp: Some(temp),
        }
    }

    /// A sandbox for a fixture kept in a `static`, which is never dropped: a
    /// temp directory there would outlive every test run (150 MB a run for
    /// the 30-day feed). This one has a fixed place under the build's temp
    /// folder, emptied when it is made, so at most one copy is ever kept.
    pub fn shared(name: &str) -> Sandbox {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{dir:?}: {e}"),
            _ => {}
        }
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox { dir, _temp: None }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The binary, run inside the sandbox with no inherited `DATAGEN*` settings.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DATAGEN") {
                cmd.env_remove(key);
            }
        }
        cmd.env("RUST_LOG", "warn");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(&[], args)
    }

    /// Runs with config keys set as `DATAGEN__...` variables.
    pub fn run_with(&self, settings: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.envs(settings.iter().copied());
        cmd.args(args).output().unwrap()
    }

    /// Runs and insists on success.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(&[], args)
    }

    /// Runs with config keys set (see [`Sandbox::run_with`]) and insists on
    /// success.
    pub fn ok_with(&self, settings: &[(&str, &str)], args: &[&str]) -> String {
        let out = self.run_with(settings, args);
        assert!(
            out.status.success(),
            "datagen {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and insists on failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "datagen {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn generate(&self, mode: &str, date: &str, extra: &[&str]) -> String {
        let mut args = vec!["generate", "--mode", mode, "--date", date];
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    pub fn batch(&self, mode: &str, date: &str) -> PathBuf {
        self.path().join("data").join(mode).join(date)
    }

    pub fn state(&self, mode: &str) -> PathBuf {
        self.path().join("state").join(mode)
    }

    /// Every file and directory under data/ and state/, with file contents.
    pub fn tree(&self) -> Tree {
        let mut tree = Tree::new();
        for root in ["data", "state"] {
            tree.extend(snapshot(&self.path().join(root), self.path()));
        }
        tree
    }

    /// sha256 of every file under data/ and state/.
    pub fn digests(&self) -> BTreeMap<PathBuf, String> {
        self.tree()
            .into_iter()
            .filter_map(|(p, c)| c.map(|c| (p, sha256_hex(&c))))
            .collect()
    }

    /// Starts a generation that stops at a crash point, and waits until it is there.
    pub fn spawn_paused(&self, point: &str, args: &[&str]) -> Child {
        let mut child = self
            .command()
            .args(args)
            .env("DATAGEN_CRASHPOINT", point)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains(&format!("crashpoint {point}")) => break,
                Some(Ok(_)) => continue,
                _ => {
                    let status = child.wait().unwrap();
                    panic!("datagen exited ({status}) before reaching crash point {point}");
                }
            }
        }
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        child
    }
}

/// The crash points of a commit, in run order (see `src/crashpoint.rs`).
pub const CRASH_POINTS: [&str; 6] = [
    "vitals",
    "staged",
    "journaled",
    "committed",
    "published",
    "applied",
];

/// Replaces a batch file's bytes and mends its manifest entry to match, as
/// a tampering upstream would: only the file's content is then wrong.
pub fn rewrite_in_batch(batch: &Path, file: &str, bytes: &[u8]) {
    std::fs::write(batch.join(file), bytes).unwrap();
    let manifest_path = batch.join("_manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for entry in manifest["files"].as_array_mut().unwrap() {
        if entry["name"] == file {
            entry["bytes"] = bytes.len().into();
            entry["sha256"] = sha256_hex(bytes).into();
        }
    }
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

/// A CSV file as header + rows of named fields.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<HashMap<String, String>>,
}

pub fn read_csv(path: &Path) -> Table {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    let rows = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect();
    Table { header, rows }
}

/// Every line of a JSON Lines file.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn timestamp(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}
