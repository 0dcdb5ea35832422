//! Black-box tests of the `datagen` binary: each test runs the real
//! executable in its own temp directory.

mod bad_input;
mod batches;
mod helpers;
mod recovery;
mod validate;
