//! d3kosd: the d3kOS appliance daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The boat's web UI and APIs: licence and tier, health, version, the owner account, and
/// (as they arrive) backups, the boat log, engine data, first boot and updates.
#[derive(Parser)]
#[command(name = "d3kosd", version, about, long_about = None)]
struct Cli {
    /// Configuration file; every key is optional and a missing file means defaults.
    #[arg(long, default_value = appliance::config::DEFAULT_PATH)]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .format_target(false)
        .init();
    let result = (|| -> anyhow::Result<()> {
        let config = appliance::config::Config::load(&cli.config)?;
        let state = appliance::server::AppState::load(config)?;
        // Two workers: the device has four cores and other work to do.
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(appliance::server::serve(state))
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}
