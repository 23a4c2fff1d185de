//! What the updater remembers between boots, in one JSON file on the data partition: each
//! slot's release and state, and the last attempt with its result. The committed slot is not
//! here: autoboot.txt says it, as the firmware reads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::layout::Slot;

use super::UpdateError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotState {
    /// Being written: whatever the slot held before is gone, and it is not bootable.
    Writing,
    /// Written and verified, not yet booted.
    Installed,
    /// Has booted healthy: a system to go back to.
    Good,
    /// Was tried and failed.
    Bad,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub version: String,
    pub state: SlotState,
    /// Unix seconds of the last change.
    pub at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Installed; the try boot is arranged or running.
    Pending,
    /// The new slot came up healthy and is the default now.
    Committed,
    /// The new slot failed its health check, or did not come up: the old one runs.
    RolledBack,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub slot: Slot,
    pub version: String,
    pub from_version: String,
    pub started_at: u64,
    pub outcome: Outcome,
    /// Why it was rolled back.
    pub reason: Option<String>,
    pub finished_at: Option<u64>,
    /// A rollback is in the boat log. The try may not reach the log (its appliance may be
    /// what failed): the committed slot notes it at its next start.
    #[serde(default)]
    pub noted: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub a: Option<SlotRecord>,
    pub b: Option<SlotRecord>,
    pub attempt: Option<Attempt>,
}

impl Record {
    pub fn slot(&self, slot: Slot) -> Option<&SlotRecord> {
        match slot {
            Slot::A => self.a.as_ref(),
            Slot::B => self.b.as_ref(),
        }
    }

    pub fn set_slot(&mut self, slot: Slot, r: SlotRecord) {
        match slot {
            Slot::A => self.a = Some(r),
            Slot::B => self.b = Some(r),
        }
    }
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("update.json")
}

pub fn load(state_dir: &Path) -> Result<Record, UpdateError> {
    Ok(
        crate::state::load(&path(state_dir), crate::time::unix_now().max(0) as u64)?
            .unwrap_or_default(),
    )
}

/// Readable by all (the appliance, which runs unprivileged, shows it): it holds no secret.
pub fn save(state_dir: &Path, r: &Record) -> Result<(), UpdateError> {
    let mut bytes = serde_json::to_vec_pretty(r).expect("a record serializes");
    bytes.push(b'\n');
    Ok(crate::state::write_atomic_mode(
        &path(state_dir),
        &bytes,
        Some(0o644),
    )?)
}
