//! `d3kosd wifi`: the setup Wi-Fi's steps that run as root.

use super::ap;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Decide whether the setup Wi-Fi runs on the radio now (it does while the boat's own
    /// Wi-Fi is not set up, or when the owner turned it on), and write or take away the
    /// access point's configuration.
    SetupAp(ap::Args),
}

pub fn run(c: &Command) -> anyhow::Result<()> {
    use anyhow::Context;
    match c {
        Command::SetupAp(a) => ap::run(a, &mut std::io::stdout().lock())
            .context("while deciding about the setup Wi-Fi"),
    }
}
