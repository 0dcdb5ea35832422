//! The object store that batches and state live in when `paths.data_url` and
//! `paths.state_url` name a bucket (`s3://bucket/prefix`), and the keys in it.
//!
//! ```text
//! <data_url>/<mode>/<date>/<files>        the batch's files, then
//! <data_url>/<mode>/<date>/_manifest.json written only if absent, then
//! <data_url>/<mode>/<date>/_SUCCESS       written only if absent: the date is committed
//! <state_url>/<mode>/HEAD.json            which generation of the state is current,
//!                                         and the commit in flight; replaced by
//!                                         compare-and-swap on its ETag
//! <state_url>/<mode>/generations/<id>/    one generation's state files, never
//!                                         rewritten with other bytes
//! ```
//!
//! This module only moves bytes and reports who won a conditional write; the
//! protocol that uses it is [`crate::pipeline`]'s. The store's client is
//! async, the engine is not: every call runs on a small runtime of its own
//! and the calling thread waits for it, so the engine can call it from the
//! CLI and from the server's blocking pool alike.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{
    ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
    UpdateVersion,
};
use serde::{Deserialize, Serialize};

use crate::dataset::OutputFormat;
use crate::defects::Profile;
use crate::error::{Error, Result};
use crate::model::{BatchDate, Mode};
use crate::output::write_new;

/// The object marking a committed date, written last.
pub const SUCCESS_FILE: &str = "_SUCCESS";
const HEAD_FILE: &str = "HEAD.json";
const GENERATIONS: &str = "generations";
/// Files up to this size are uploaded in one PUT, larger ones in parts.
const PART_SIZE: usize = 8 << 20;

/// Where data or state goes: a local directory, or a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(std::path::PathBuf),
    Bucket(url::Url),
}

impl Location {
    /// `s3://bucket/prefix` is a bucket; `file:///path` and plain paths are
    /// local directories.
    pub fn parse(text: &str) -> std::result::Result<Location, String> {
        if !text.contains("://") {
            return Ok(Location::Local(text.into()));
        }
        let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        match url.scheme() {
            "file" => url
                .to_file_path()
                .map(Location::Local)
                .map_err(|()| format!("{text:?} is not a local file URL")),
            "s3" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(Location::Bucket(url)),
            "s3" => Err(format!("{text:?} names no bucket (s3://bucket/prefix)")),
            other => Err(format!(
                "{text:?}: the {other}:// scheme is not supported; use s3://bucket/prefix (S3 or an S3-compatible server such as MinIO), file:///path or a plain path"
            )),
        }
    }
}

/// How patient the store's client is (`object_store` in the config).
#[derive(Clone, Copy, Debug)]
pub struct Patience {
    pub timeout: Duration,
    pub retries: usize,
}

/// The state's pointer: the current generation, and the commit in flight.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// `None` before the mode's first commit.
    pub generation: Option<String>,
    pub pending: Option<Pending>,
}

/// A commit that won the head but may not have finished publishing: anyone
/// who finds it finishes it, regenerating the dates from `base` if need be
/// (generation is deterministic, so the bytes are the same).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    /// The dates it commits, in order (more than one with catch-up).
    pub dates: Vec<BatchDate>,
    /// The generation it was made from.
    pub base: Option<String>,
    /// The generation it makes.
    pub generation: String,
    /// The run's options, to make the same dates again.
    pub new_patients: Option<u32>,
    pub encounters: Option<u32>,
    pub defects: Profile,
    pub format: OutputFormat,
}

/// The head as read, with the version to swap it against (`None`: absent).
#[derive(Clone, Debug)]
pub struct ReadHead {
    pub head: Head,
    pub version: Option<UpdateVersion>,
}

/// What a conditional write of the head came to.
pub enum Swap {
    Won(UpdateVersion),
    /// Another writer changed the head first.
    Lost,
}

/// A conditional write that found an object in place.
pub enum Created {
    New,
    /// The object was there with these bytes.
    Existing(bytes::Bytes),
}

/// The bucket side of one engine.
pub struct Remote {
    data: Arc<dyn ObjectStore>,
    data_root: Key,
    state: Arc<dyn ObjectStore>,
    state_root: Key,
    data_url: url::Url,
    state_url: url::Url,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("data_url", &self.data_url.as_str())
            .field("state_url", &self.state_url.as_str())
            .finish()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside the server's async
        // context; nothing is left running on it by then.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn bucket(url: &url::Url, patience: Patience) -> Result<(Arc<dyn ObjectStore>, Key)> {
    // The standard AWS_* variables configure it (credentials, region,
    // AWS_ENDPOINT_URL and AWS_ALLOW_HTTP for a MinIO-style server).
    let seconds = |d: Duration| format!("{}s", d.as_secs().max(1));
    let store = AmazonS3Builder::from_env()
        .with_url(url.as_str())
        // Set key by key: `with_client_options` would drop what the
        // environment set (AWS_ALLOW_HTTP among them).
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
            seconds(patience.timeout),
        )
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            seconds(patience.timeout.min(Duration::from_secs(5))),
        )
        .with_retry(RetryConfig {
            max_retries: patience.retries,
            retry_timeout: patience.timeout * (patience.retries as u32 + 1),
            ..RetryConfig::default()
        })
        .build()
        .map_err(|e| Error::Config {
            origin: "paths.data_url / paths.state_url".into(),
            reason: format!("cannot use {url}: {e}"),
        })?;
    let root = Key::from_url_path(url.path()).map_err(|e| Error::Config {
        origin: "paths.data_url / paths.state_url".into(),
        reason: format!("{url}: {e}"),
    })?;
    Ok((Arc::new(store), root))
}

impl Remote {
    pub fn new(data_url: &url::Url, state_url: &url::Url, patience: Patience) -> Result<Remote> {
        let (data, data_root) = bucket(data_url, patience)?;
        let (state, state_root) = bucket(state_url, patience)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("datagen-store")
            .enable_all()
            .build()
            .map_err(|source| Error::Server {
                what: "cannot start the object store's runtime".into(),
                source,
            })?;
        Ok(Remote {
            data,
            data_root,
            state,
            state_root,
            data_url: data_url.clone(),
            state_url: state_url.clone(),
            runtime: Some(runtime),
        })
    }

    /// Runs `future` on the store's runtime and waits for it. Never called
    /// from async code: the engine runs on blocking threads.
    fn wait<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let Some(runtime) = &self.runtime else {
            return Err(self.unavailable("the object store's runtime has stopped"));
        };
        runtime.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv()
            .map_err(|_| self.unavailable("the object store's runtime has stopped"))
    }

    fn unavailable(&self, reason: &str) -> Error {
        Error::Storage {
            what: "cannot reach".into(),
            url: self.state_url.to_string(),
            source: object_store::Error::Generic {
                store: "datagen",
                source: reason.into(),
            },
        }
    }

    fn data_key(&self, mode: Mode, date: BatchDate, file: &str) -> Key {
        self.data_root
            .clone()
            .join(mode.as_str())
            .join(date.to_string())
            .join(file)
    }

    fn head_key(&self, mode: Mode) -> Key {
        self.state_root.clone().join(mode.as_str()).join(HEAD_FILE)
    }

    fn generation_key(&self, mode: Mode, generation: &str, file: &str) -> Key {
        self.state_root
            .clone()
            .join(mode.as_str())
            .join(GENERATIONS)
            .join(generation)
            .join(file)
    }

    /// Which bucket prefixes this is, in one line.
    pub fn describe(&self) -> String {
        format!("data {} state {}", self.data_url, self.state_url)
    }

    /// The URL of a batch's folder, for messages and logs.
    pub fn batch_url(&self, mode: Mode, date: BatchDate) -> String {
        format!(
            "{}/{mode}/{date}/",
            self.data_url.as_str().trim_end_matches('/')
        )
    }

    fn failed(what: &str, url: &url::Url, key: &Key, source: object_store::Error) -> Error {
        let base = url.as_str().trim_end_matches('/');
        let root = url.path().trim_matches('/');
        let rest = key.as_ref().strip_prefix(root).unwrap_or(key.as_ref());
        Error::Storage {
            what: what.to_string(),
            url: format!("{base}/{}", rest.trim_start_matches('/')),
            source,
        }
    }

    /// The mode's head; absent before its first commit.
    pub fn head(&self, mode: Mode) -> Result<ReadHead> {
        let key = self.head_key(mode);
        let store = self.state.clone();
        let got = self.wait({
            let key = key.clone();
            async move {
                let result = store.get(&key).await?;
                let version = UpdateVersion {
                    e_tag: result.meta.e_tag.clone(),
                    version: result.meta.version.clone(),
                };
                Ok::<_, object_store::Error>((result.bytes().await?, version))
            }
        })?;
        match got {
            Ok((bytes, version)) => {
                let head = serde_json::from_slice(&bytes).map_err(|e| Error::Storage {
                    what: "cannot parse".into(),
                    url: format!("{}/{mode}/{HEAD_FILE}", self.state_url),
                    source: object_store::Error::Generic {
                        store: "datagen",
                        source: Box::new(e),
                    },
                })?;
                Ok(ReadHead {
                    head,
                    version: Some(version),
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(ReadHead {
                head: Head::default(),
                version: None,
            }),
            Err(e) => Err(Self::failed("cannot read", &self.state_url, &key, e)),
        }
    }

    /// Replaces the head with `head` if it is still the version read.
    pub fn swap_head(&self, mode: Mode, read: &ReadHead, head: &Head) -> Result<Swap> {
        let key = self.head_key(mode);
        let mut bytes = serde_json::to_vec(head).unwrap_or_default();
        bytes.push(b'\n');
        let mode = match &read.version {
            Some(version) => PutMode::Update(version.clone()),
            None => PutMode::Create,
        };
        let store = self.state.clone();
        let put = self.wait({
            let key = key.clone();
            async move {
                store
                    .put_opts(&key, PutPayload::from(bytes), PutOptions::from(mode))
                    .await
            }
        })?;
        match put {
            Ok(done) => Ok(Swap::Won(UpdateVersion {
                e_tag: done.e_tag,
                version: done.version,
            })),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Swap::Lost),
            Err(e) => Err(Self::failed("cannot write", &self.state_url, &key, e)),
        }
    }

    /// Uploads the state files of `dir` as generation `id`. Racing writers
    /// of one id upload the same bytes, so plain overwrites are safe.
    pub fn put_generation(&self, mode: Mode, id: &str, dir: &Path, files: &[&str]) -> Result<()> {
        for file in files {
            let path = dir.join(file);
            if path.exists() {
                let key = self.generation_key(mode, id, file);
                self.upload(&self.state, &self.state_url, &path, key)?;
            }
        }
        Ok(())
    }

    /// Deletes the generations older than `keep`'s oldest (by their commit
    /// count), so the bucket holds a few states, not one per day. A reader
    /// that read an older head a moment ago would fail with a retryable
    /// error, never see a mixed state: a generation is never rewritten.
    pub fn prune_generations(&self, mode: Mode, keep_from: u64) -> Result<()> {
        use futures_util::StreamExt;
        let prefix = self
            .state_root
            .clone()
            .join(mode.as_str())
            .join(GENERATIONS);
        let store = self.state.clone();
        let listed = self.wait({
            let prefix = prefix.clone();
            async move {
                let mut old = Vec::new();
                let mut listing = store.list(Some(&prefix));
                while let Some(meta) = listing.next().await {
                    let meta = meta?;
                    let id = meta
                        .location
                        .prefix_match(&prefix)
                        .and_then(|mut parts| parts.next())
                        .map(|part| part.as_ref().to_string());
                    let count = id
                        .as_deref()
                        .and_then(|id| id.split('-').next())
                        .and_then(|n| n.parse::<u64>().ok());
                    if count.is_some_and(|n| n < keep_from) {
                        old.push(meta.location);
                    }
                }
                for location in &old {
                    store.delete(location).await?;
                }
                Ok::<_, object_store::Error>(old.len())
            }
        })?;
        let removed =
            listed.map_err(|e| Self::failed("cannot prune", &self.state_url, &prefix, e))?;
        if removed > 0 {
            tracing::debug!(%mode, removed, "old state generations removed");
        }
        Ok(())
    }

    /// Downloads generation `id` into `dir`; `optional` files may be absent.
    pub fn get_generation(
        &self,
        mode: Mode,
        id: &str,
        dir: &Path,
        files: &[&str],
        optional: &[&str],
    ) -> Result<()> {
        for file in files {
            let key = self.generation_key(mode, id, file);
            match self.get(&self.state, &key)? {
                Some(bytes) => write_new(&dir.join(file), &bytes)?,
                None if optional.contains(file) => {}
                None => {
                    return Err(Self::failed(
                        "cannot find",
                        &self.state_url,
                        &key,
                        object_store::Error::NotFound {
                            path: key.to_string(),
                            source: "a generation the head names has lost a file".into(),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    /// A batch object's bytes, or `None` if it is absent.
    pub fn get_batch_file(
        &self,
        mode: Mode,
        date: BatchDate,
        file: &str,
    ) -> Result<Option<bytes::Bytes>> {
        self.get(&self.data, &self.data_key(mode, date, file))
    }

    /// Streams a batch object into a new file at `to` (synced), and returns
    /// its sha256; `None` if the object is absent. Memory stays at one
    /// chunk whatever the file's size.
    pub fn download_batch_file(
        &self,
        mode: Mode,
        date: BatchDate,
        file: &str,
        to: &Path,
    ) -> Result<Option<String>> {
        use futures_util::StreamExt;
        use sha2::{Digest, Sha256};
        use std::io::Write;
        let key = self.data_key(mode, date, file);
        let store = self.data.clone();
        let path = to.to_path_buf();
        let got = self.wait({
            let key = key.clone();
            async move {
                let mut stream = store.get(&key).await?.into_stream();
                let local = |e: std::io::Error| object_store::Error::Generic {
                    store: "datagen",
                    source: Box::new(e),
                };
                // Small synchronous writes of each chunk: this runs on the
                // store's own runtime, never the server's.
                let mut out = std::fs::File::create(&path).map_err(local)?;
                let mut sha = Sha256::new();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    sha.update(&chunk);
                    out.write_all(&chunk).map_err(local)?;
                }
                out.sync_all().map_err(local)?;
                Ok::<_, object_store::Error>(hex::encode(sha.finalize()))
            }
        })?;
        match got {
            Ok(sha) => Ok(Some(sha)),
            Err(object_store::Error::NotFound { .. }) => {
                let _ = std::fs::remove_file(to);
                Ok(None)
            }
            Err(e) => {
                let _ = std::fs::remove_file(to);
                Err(Self::failed("cannot download", &self.data_url, &key, e))
            }
        }
    }

    /// Uploads one of a batch's data files (overwriting: a batch's bytes
    /// are fixed by its plan, so a second upload writes the same bytes).
    pub fn put_batch_file(&self, mode: Mode, date: BatchDate, path: &Path) -> Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = self.data_key(mode, date, &name);
        self.upload(&self.data, &self.data_url, path, key)
    }

    /// Writes a batch object only if it is absent (`If-None-Match: *`).
    pub fn create_batch_file(
        &self,
        mode: Mode,
        date: BatchDate,
        file: &str,
        bytes: Vec<u8>,
    ) -> Result<Created> {
        let key = self.data_key(mode, date, file);
        let store = self.data.clone();
        let put = self.wait({
            let key = key.clone();
            async move {
                store
                    .put_opts(
                        &key,
                        PutPayload::from(bytes),
                        PutOptions::from(PutMode::Create),
                    )
                    .await
            }
        })?;
        match put {
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) => match self.get(&self.data, &key)? {
                Some(bytes) => Ok(Created::Existing(bytes)),
                None => Ok(Created::Existing(bytes::Bytes::new())),
            },
            Err(e) => Err(Self::failed("cannot write", &self.data_url, &key, e)),
        }
    }

    fn get(&self, store: &Arc<dyn ObjectStore>, key: &Key) -> Result<Option<bytes::Bytes>> {
        let url = if Arc::ptr_eq(store, &self.data) {
            &self.data_url
        } else {
            &self.state_url
        };
        let store = store.clone();
        let got = self.wait({
            let key = key.clone();
            async move { store.get(&key).await?.bytes().await }
        })?;
        match got {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Self::failed("cannot read", url, key, e)),
        }
    }

    fn upload(
        &self,
        store: &Arc<dyn ObjectStore>,
        url: &url::Url,
        path: &Path,
        key: Key,
    ) -> Result<()> {
        let file = path.to_path_buf();
        let store = store.clone();
        let target = key.clone();
        let put = self.wait(async move {
            // Small files in one PUT; large ones in parts, so memory stays
            // bounded by a few parts whatever the file's size.
            let mut writer =
                object_store::buffered::BufWriter::with_capacity(store, target, PART_SIZE);
            let copied = copy_file(&file, &mut writer).await;
            if copied.is_err() {
                // Leave no half multipart upload behind.
                let _ = writer.abort().await;
            }
            copied
        })?;
        put.map_err(|e| Self::failed("cannot upload", url, &key, e))
    }
}

async fn copy_file(
    path: &Path,
    writer: &mut object_store::buffered::BufWriter,
) -> std::result::Result<(), object_store::Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let local = |e: std::io::Error| object_store::Error::Generic {
        store: "datagen",
        source: Box::new(e),
    };
    let mut reader = tokio::fs::File::open(path).await.map_err(local)?;
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = reader.read(&mut buffer).await.map_err(local)?;
        if read == 0 {
            break;
        }
        writer
            .put(bytes::Bytes::copy_from_slice(&buffer[..read]))
            .await?;
    }
    writer.shutdown().await.map_err(local)
}
