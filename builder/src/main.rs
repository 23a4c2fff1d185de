//! d3kos-build: the command line.

use std::process::ExitCode;

use clap::Parser;

mod cmd;

/// Builds bootable d3kOS disk images and their release artifacts, bit-identical for the same
/// inputs.
#[derive(Parser)]
#[command(name = "d3kos-build", version, about, long_about = None)]
struct Cli {
    /// Print each external command and other details.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::new()
        .filter_level(if cli.verbose {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Info
        })
        .format_timestamp(None)
        .format_target(false)
        .init();
    match cmd::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("d3kos-build: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
