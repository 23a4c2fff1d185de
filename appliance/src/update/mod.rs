//! A/B updates: a signed bundle written to the slot that is not running, tried once, and
//! kept only when the system it holds comes up healthy.
//!
//! The parts, one file each: the device's slots and where they are ([`device`]), what is
//! recorded between boots ([`record`]), the boot loader's two switches ([`bootctl`]),
//! writing a slot from a bundle ([`install`]), the verdict after a try boot
//! ([`settle`]), going back or copying the running release into the other slot
//! ([`restore`]), and what is shown of it all ([`status`]). The appliance, which may not
//! write partitions, asks a root helper to install ([`helper`], [`client`]). The bundle
//! format itself is [`crate::bundle`], shared with the builder.

pub mod bootctl;
pub mod cli;
pub mod client;
pub mod device;
pub mod helper;
pub mod install;
mod notes;
pub mod record;
pub mod restore;
pub mod settle;
pub mod status;

use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::layout::Slot;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(
        "the bundle is for {found}; this system is {expected}: it would not boot here, nothing was written"
    )]
    Incompatible { found: String, expected: String },
    #[error(
        "the bundle holds {found}, not newer than the running {running}: nothing was written (force it to go back)"
    )]
    NotNewer { found: String, running: String },
    #[error(
        "the bundle's {image} is {size} bytes but slot {slot:?}'s partition {} holds {room}: nothing was written",
        path.display()
    )]
    NoRoom {
        image: String,
        size: u64,
        slot: Slot,
        path: PathBuf,
        room: u64,
    },
    #[error("the bundle has no {what} image for slot {slot:?}: nothing was written")]
    MissingImage { what: &'static str, slot: Slot },
    #[error(
        "slot {slot:?} is being tried and not yet committed: wait for its verdict (or reboot) before installing again"
    )]
    TryPending { slot: Slot },
    #[error(
        "slot {slot:?} holds no release that has booted healthy: there is nothing to go back to"
    )]
    NoPrevious { slot: Slot },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the device: {0}")]
    Device(String),
    #[error("the boot loader: {0}")]
    Boot(String),
    #[error("the update record: {0}")]
    Record(#[from] crate::state::StateError),
    #[error("the source {url}: {why}")]
    Fetch { url: String, why: String },
}

impl UpdateError {
    /// The bundle or the moment was refused (a reason the owner can act on), as against the
    /// device failing while it worked.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            UpdateError::Io { .. } | UpdateError::Record(_) | UpdateError::Device(_)
        )
    }
}

pub(crate) fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> UpdateError + '_ {
    move |source| UpdateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The other slot.
pub fn other(slot: Slot) -> Slot {
    match slot {
        Slot::A => Slot::B,
        Slot::B => Slot::A,
    }
}
