//! datagen: reproducible daily batches of synthetic clinical data.
//!
//! The library is the whole engine; the `datagen` binary and the HTTP service
//! only parse input and call it. Reading order follows the generation
//! contract:
//! - [`config`]: the typed, layered configuration, and [`facility`]: the
//!   facility's local clock, which care follows;
//! - `model`, `catalog`, `dataset`: the vocabulary, the lab catalog and the
//!   registry of the batch's files;
//! - `generate`: pure generation of patients, encounters, vitals, labs and
//!   notes, as typed `rows`;
//! - [`pipeline`]: one batch end to end, encoded by `output` and committed
//!   through `state`'s crash-safe protocol;
//! - `schema` and `validate`: the file contracts and their enforcement;
//! - [`http`]: the HTTP service over the same engine; [`cli`]: the command line.
//!
//! Only what the binary, the tests and the benchmarks use is public.

pub(crate) mod catalog;
pub mod cli;
pub(crate) mod columnar;
pub mod config;
pub(crate) mod crashpoint;
pub mod dataset;
pub mod defects;
pub mod error;
pub mod facility;
pub(crate) mod generate;
pub mod http;
pub(crate) mod layout;
pub mod manifest;
pub mod model;
pub(crate) mod numfmt;
pub(crate) mod output;
pub mod pipeline;
pub(crate) mod remote;
pub(crate) mod rows;
pub(crate) mod schema;
pub mod score;
pub(crate) mod state;
pub(crate) mod validate;

pub use error::{Error, Result};
