//! `d3kosd update`: check or install a bundle, the verdict after a boot, the state of both
//! slots, and a switch back to the other slot.

use std::path::PathBuf;

use super::UpdateError;
use super::device::Device;
use super::install::{self, Options, Source};
use super::restore::{self, switch};
use super::settle::{self, Verdict};
use super::status::status;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check a bundle (a file, an http(s) URL, or - for standard input) and write nothing.
    Check(SourceArgs),
    /// Write the slot that is not running from a bundle, then restart into it once.
    Install {
        #[command(flatten)]
        source: SourceArgs,
        /// Leave the restart to the caller.
        #[arg(long)]
        no_reboot: bool,
    },
    /// At boot: commit a try that is healthy, or go back from one that is not.
    Settle {
        #[command(flatten)]
        device: DeviceArgs,
        /// Leave a restart the verdict needs to the caller.
        #[arg(long)]
        no_reboot: bool,
    },
    /// Both slots, the committed one, and the last attempt, as JSON.
    Status(DeviceArgs),
    /// The root helper the appliance asks to install: one connection on standard input and
    /// output (d3kos-update.socket starts it per connection), or, with --listen, a socket of
    /// its own served one connection after another.
    Serve {
        #[command(flatten)]
        device: DeviceArgs,
        #[arg(long, value_name = "SOCKET")]
        listen: Option<PathBuf>,
    },
    /// Copy the running release into the other slot (a factory restore of a damaged slot),
    /// optionally after restoring a data backup: tried once, then committed when healthy.
    FactoryRestore {
        #[command(flatten)]
        device: DeviceArgs,
        /// Restore this data backup first (its id, as `d3kosd backup list` shows it).
        #[arg(long, value_name = "ID")]
        backup: Option<String>,
        #[arg(long)]
        no_reboot: bool,
    },
    /// Go back to the release in the other slot: tried once, then committed when healthy.
    Switch {
        #[command(flatten)]
        device: DeviceArgs,
        #[arg(long)]
        no_reboot: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct DeviceArgs {
    /// A device description (JSON) instead of the running system's.
    #[arg(long, value_name = "FILE")]
    pub device: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    /// The bundle: a file, an http(s) URL, or - for standard input.
    pub source: String,
    /// Install even when the bundle is not newer than the running release.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl DeviceArgs {
    fn device(&self) -> Result<Device, UpdateError> {
        match &self.device {
            Some(p) => Device::load(p),
            None => Device::discover(),
        }
    }
}

/// Restores data backup `id` as `d3kosd backup restore` does (the appliance stopped around
/// the swap, the replaced data kept as a backup).
fn restore_backup(id: &str) -> Result<(), UpdateError> {
    let path = std::path::Path::new(crate::config::DEFAULT_PATH);
    let config = crate::config::Config::load(path)
        .map_err(|e| UpdateError::Device(format!("{}: {e}", path.display())))?;
    let command = crate::backup::cli::Command::Restore { id: id.to_owned() };
    crate::backup::cli::run(&config, &command).map_err(|e| {
        UpdateError::Device(format!(
            "backup {id} could not be restored, so nothing was copied: {e}"
        ))
    })
}

fn reboot(d: &Device) -> Result<(), UpdateError> {
    let Some((program, args)) = d.reboot.split_first() else {
        return Ok(());
    };
    let status = std::process::Command::new(program)
        .args(args)
        .status()
        .map_err(|e| UpdateError::Device(format!("{program} could not run: {e}")))?;
    if !status.success() {
        return Err(UpdateError::Device(format!(
            "{} failed: {status}",
            d.reboot.join(" ")
        )));
    }
    Ok(())
}

pub fn run(c: &Command) -> Result<(), UpdateError> {
    match c {
        Command::Check(s) => {
            let d = s.device.device()?;
            let checked =
                install::check(&d, &Source::parse(&s.source), Options { force: s.force })?;
            println!(
                "{} {} for {}: signed by key {}, would be written to slot {:?}",
                checked.manifest.product,
                checked.manifest.version,
                checked.manifest.board,
                checked.signer,
                checked.slot
            );
        }
        Command::Install { source, no_reboot } => {
            let d = source.device.device()?;
            let mut tenth = u64::MAX;
            let done = install::install(
                &d,
                &Source::parse(&source.source),
                Options {
                    force: source.force,
                },
                |w, t| {
                    let now = (w * 10).checked_div(t).unwrap_or(10);
                    if now != tenth {
                        tenth = now;
                        eprintln!("update: {}% written", now * 10);
                    }
                },
            )?;
            println!(
                "installed {} {} into slot {:?}; the next boot tries it once",
                done.manifest.product, done.manifest.version, done.slot
            );
            if !no_reboot {
                reboot(&d)?;
            }
        }
        Command::Settle { device, no_reboot } => {
            let d = device.device()?;
            let verdict = settle::settle(&d)?;
            println!("{}", serde_json::to_string(&verdict).expect("serializes"));
            if matches!(verdict, Verdict::RolledBack { .. }) && !no_reboot {
                reboot(&d)?;
            }
        }
        Command::Status(device) => {
            let d = device.device()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&status(&d)?).expect("serializes")
            );
        }
        Command::Serve { device, listen } => {
            let d = device.device()?;
            let failed = |e: std::io::Error| UpdateError::Device(format!("the connection: {e}"));
            match listen {
                Some(socket) => super::helper::listen(socket, &d).map_err(failed)?,
                None => {
                    let restart = super::helper::serve(std::io::stdin(), std::io::stdout(), &d)
                        .map_err(failed)?;
                    if restart {
                        // The appliance's answer reaches the owner before the restart.
                        std::thread::sleep(std::time::Duration::from_secs(3));
                        reboot(&d)?;
                    }
                }
            }
        }
        Command::FactoryRestore {
            device,
            backup,
            no_reboot,
        } => {
            let d = device.device()?;
            if let Some(id) = backup {
                restore_backup(id)?;
            }
            let mut tenth = u64::MAX;
            let slot = restore::factory(&d, |w, t| {
                let now = (w * 10).checked_div(t).unwrap_or(10);
                if now != tenth {
                    tenth = now;
                    eprintln!("restore: {}% copied", now * 10);
                }
            })?;
            println!(
                "{} copied into slot {slot:?}; the next boot tries it once",
                d.version
            );
            if !no_reboot {
                reboot(&d)?;
            }
        }
        Command::Switch { device, no_reboot } => {
            let d = device.device()?;
            let (slot, version) = switch(&d)?;
            println!("the next boot tries {version} in slot {slot:?} once");
            if !no_reboot {
                reboot(&d)?;
            }
        }
    }
    Ok(())
}
