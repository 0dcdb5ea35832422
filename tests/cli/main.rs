//! Black-box tests of the `datagen` binary: each test runs the real
//! executable in its own temp directory.

// Test code may panic on anything unexpected: that is how it fails.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod batches;
mod defects;
mod feed;
mod golden;
mod helpers;
mod hospital;
mod parquet;
mod realism;
mod recovery;
mod state;
mod validate;
