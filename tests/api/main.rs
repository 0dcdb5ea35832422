//! Black-box tests of the HTTP service: the real router served on an
//! ephemeral loopback port (and the real binary where signals matter),
//! talked to with a real HTTP client.

// Test code may panic on anything unexpected: that is how it fails.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod batches;
mod bucket;
mod conditional;
mod defects;
mod errors;
mod helpers;
mod lifecycle;
mod moto;
mod parquet;
mod service;
