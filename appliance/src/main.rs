//! d3kosd: the d3kOS appliance daemon.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// The boat's web UI and APIs: licence and tier, health, version, the owner account, and
/// (as they arrive) backups, the boat log, engine data, first boot and updates.
#[derive(Parser)]
#[command(name = "d3kosd", version, about, long_about = None)]
struct Cli {
    /// Configuration file; every key is optional and a missing file means defaults.
    #[arg(long, default_value = appliance::config::DEFAULT_PATH)]
    config: PathBuf,
    /// Without a command, serve.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Jobs run at boot before the appliance starts; the first boot does the work.
    Firstboot(appliance::firstboot::Cli),
    /// Backups of the boat's data: create, list, verify, restore, delete.
    #[command(subcommand)]
    Backup(appliance::backup::cli::Command),
    /// NMEA 2000: decode a capture as canboat's analyzer does.
    #[command(subcommand)]
    N2k(appliance::n2k::cli::Command),
    /// The boat's time zone: the zone chosen for a position.
    #[command(subcommand)]
    Timezone(appliance::timezone::cli::Command),
    /// The setup Wi-Fi: whether the radio opens the setup access point.
    #[command(subcommand)]
    Wifi(appliance::wifi::cli::Command),
    /// A/B updates: check and install signed bundles, the verdict after a try boot.
    #[command(subcommand)]
    Update(appliance::update::cli::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .format_target(false)
        .init();
    let result = match &cli.command {
        None => serve(&cli.config),
        Some(Command::Firstboot(c)) => {
            appliance::firstboot::run(c).context("first boot did not finish")
        }
        Some(Command::Backup(c)) => appliance::config::Config::load(&cli.config)
            .map_err(anyhow::Error::from)
            .and_then(|config| {
                // A backup names the release that made it.
                appliance::release::load(&config.etc_dir);
                appliance::backup::cli::run(&config, c).map_err(Into::into)
            }),
        Some(Command::N2k(c)) => appliance::n2k::cli::run(c),
        Some(Command::Timezone(c)) => appliance::timezone::cli::run(c),
        Some(Command::Wifi(c)) => appliance::wifi::cli::run(c),
        Some(Command::Update(c)) => appliance::update::cli::run(c).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

fn serve(config: &Path) -> anyhow::Result<()> {
    let config = appliance::config::Config::load(config)?;
    let state = appliance::http::AppState::load(config)?;
    // Two workers: the device has four cores and other work to do. Blocking work (backups,
    // the health probe) is capped too: it is bounded by the backup job slot, and the unit's
    // TasksMax must never be what stops a thread from starting.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()?;
    let served = runtime.block_on(appliance::server::serve(state));
    // A backup or restore still running is cut off here as a power cut would; the next
    // start finishes or undoes it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}
