//! datagen: reproducible daily batches of synthetic clinical data.
//!
//! The library is the whole engine; the `datagen` binary and the HTTP service
//! only parse input and call it. Reading order follows the
//! generation contract:
//! - [`config`]: the typed, layered configuration;
//! - [`model`]: modes, dates, enumerations and ID formats;
//! - [`generate`]: pure generation of patients, encounters, vitals, labs and notes;
//! - [`pipeline`]: one batch end to end, through [`state`]'s crash-safe commit;
//! - [`schema`] and [`validate`]: the file contracts and their enforcement;
//! - [`http`]: the HTTP service over the same engine.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod crashpoint;
pub mod dataset;
pub mod error;
pub mod generate;
pub mod http;
pub mod layout;
pub mod manifest;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod rows;
pub mod schema;
pub mod state;
pub mod validate;

pub use error::{Error, Result};
