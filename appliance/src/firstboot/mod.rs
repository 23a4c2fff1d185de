//! `d3kosd firstboot`: what a device does before the appliance starts, on every boot. The
//! first boot does the work (partitions, file systems, identity); later boots find it done.

pub mod failed;
pub mod fill;
pub mod grow;
pub mod identity;
pub mod imager;
mod programs;

use std::io::Write;
use std::path::PathBuf;

use crate::disk::TableError;
use crate::layout::{GrowError, PlanError, TableKind};

#[derive(Debug, clap::Args)]
pub struct Cli {
    /// Where a failing step leaves its report, for the failure page.
    #[arg(long, global = true, value_name = "FILE", default_value = failed::REPORT)]
    pub report: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create the partitions the image leaves to the device (the B system slot, the data
    /// partition grown to the end of the card), tell the kernel, and make their file systems.
    /// Safe to run on every boot and to cut off at any point: it finishes what is missing.
    Grow(grow::Args),
    /// Keep the machine id and the SSH host keys on the data partition, so they survive
    /// switching system slots; print them.
    Identity(identity::Args),
    /// Apply the settings Raspberry Pi Imager wrote to the config partition (host name,
    /// user, SSH, Wi-Fi, time zone, keyboard), once per customisation, to this system slot,
    /// and take the secrets off the partition.
    Imager(imager::Args),
    /// After a step above failed: answer every web request with what is wrong and what to
    /// do, until the device is restarted.
    FailedPage(failed::PageArgs),
}

pub fn run(cli: &Cli) -> Result<(), FirstbootError> {
    let mut out = std::io::stdout().lock();
    let (step, done) = match &cli.command {
        // Then the running system's file system, once its partition is as large as planned;
        // a disk named on the command line is not the running one.
        Command::Grow(a) => (
            Some("grow"),
            grow::run(a, &mut out).and_then(|()| match a.disk {
                None => fill::root(&grow::Kernel::default(), &mut out),
                Some(_) => Ok(()),
            }),
        ),
        Command::Identity(a) => (Some("identity"), identity::run(a, &mut out)),
        Command::Imager(a) => (None, imager::run(a, &mut out)),
        Command::FailedPage(a) => (None, failed::page(a, &mut out)),
    };
    if let Err(e) = &done {
        if let Some(advice) = e.advice() {
            // The owner reads this on the screen of the first boot, not in a log.
            say(&mut out, format_args!("{advice}"))?;
        }
        // Without these steps the appliance cannot start; the failure page shows why.
        if let Some(step) = step
            && let Err(r) = failed::Report::of(step, e).save(&cli.report)
        {
            say(
                &mut out,
                format_args!("the failure could not be recorded: {r}"),
            )?;
        }
    }
    done?;
    out.flush().map_err(|source| FirstbootError::Io {
        path: "standard output".into(),
        source,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum FirstbootError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", path.display())]
    Plan { path: PathBuf, source: PlanError },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Grow(#[from] GrowError),
    #[error("the kernel command line names no root=PARTUUID= (`{cmdline}`): pass --disk")]
    NoRoot { cmdline: String },
    #[error("{} did not appear within {seconds} s", path.display())]
    NoDevice { path: PathBuf, seconds: u64 },
    #[error("{} is not a partition, so it names no disk: pass --disk", path.display())]
    NotPartition { path: PathBuf },
    #[error("{} holds no ext4 file system", path.display())]
    NotExt4 { path: PathBuf },
    #[error(
        "{}: the disk has a {found:?} partition table but this image was built with {expected:?}; \
         leaving it alone",
        path.display()
    )]
    WrongTable {
        path: PathBuf,
        found: TableKind,
        expected: TableKind,
    },
    #[error(
        "{}: the disk id is {found} but this image's is {expected}: this is not the disk the image \
         was written to; leaving it alone",
        path.display()
    )]
    ForeignDisk {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "{}: partition {number} (`{name}`) ships in the image but is not in the table; leaving the \
         disk alone",
        path.display()
    )]
    MissingShipped {
        path: PathBuf,
        number: u32,
        name: String,
    },
    #[error(
        "{}: partition {number} has PARTUUID {found}, but this image's `{name}` is {expected}: the \
         disk holds another image; leaving it alone",
        path.display()
    )]
    ForeignPartition {
        path: PathBuf,
        number: u32,
        name: String,
        found: String,
        expected: String,
    },
    #[error(
        "{}: partition {number} is {found}, not `{name}` as planned ({expected}); leaving the disk \
         alone",
        path.display()
    )]
    Occupied {
        path: PathBuf,
        number: u32,
        name: String,
        found: String,
        expected: String,
    },
    #[error("the plan gives partition `{name}` the type `{type_id}`, which is no {table:?} type")]
    BadType {
        name: String,
        type_id: String,
        table: TableKind,
    },
    #[error("`{program}` is not installed: {hint}")]
    Missing {
        program: &'static str,
        hint: &'static str,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(
        "{} holds `{found}`, not a machine id (32 hex digits): the running system has no id to keep",
        path.display()
    )]
    NoMachineId { path: PathBuf, found: String },
}

/// An error and its causes, as one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// A state write's failure as first boot reports it: the file and the cause.
impl From<crate::state::StateError> for FirstbootError {
    fn from(e: crate::state::StateError) -> Self {
        use crate::state::StateError;
        match e {
            StateError::Io { path, source } => FirstbootError::Io { path, source },
            StateError::Corrupt { ref path, .. } => FirstbootError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            },
        }
    }
}

impl FirstbootError {
    /// What the owner can do about a card the device refused to change.
    pub fn advice(&self) -> Option<&'static str> {
        match self {
            Self::Grow(GrowError::TooSmall { .. }) => Some(
                "Nothing on this card was changed. Write d3kOS with Raspberry Pi Imager onto a card \
                 of the size named above or larger, and start the boat computer from that card.",
            ),
            Self::WrongTable { .. }
            | Self::ForeignDisk { .. }
            | Self::MissingShipped { .. }
            | Self::ForeignPartition { .. }
            | Self::Occupied { .. } => Some(
                "Nothing on the card was changed. d3kOS runs without a data partition until this \
                 is fixed, so nothing is saved. Write the card again with Raspberry Pi Imager from \
                 a d3kOS release (this erases the card) and start the boat computer from it.",
            ),
            _ => None,
        }
    }
}

/// One line of what was done, for the console.
fn say(out: &mut dyn Write, line: std::fmt::Arguments<'_>) -> Result<(), FirstbootError> {
    writeln!(out, "{line}").map_err(|source| FirstbootError::Io {
        path: "standard output".into(),
        source,
    })
}

fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> FirstbootError + '_ {
    move |source| FirstbootError::Io {
        path: path.to_owned(),
        source,
    }
}
