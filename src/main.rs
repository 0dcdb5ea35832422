use std::process::ExitCode;

use clap::Parser;

/// jemalloc instead of glibc's malloc: under many concurrent downloads the
/// blocking pool's threads each get a glibc arena that keeps freed memory,
/// and the server's RSS grew by hundreds of MB per minute of load and was
/// never returned (BENCHMARKS.md, load).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    datagen::cli::run(datagen::cli::Cli::parse())
}
