use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    datagen::cli::run(datagen::cli::Cli::parse())
}
