//! What the updater can say about the device: the running and committed slots, whether
//! this boot is a try, each slot's release and state, and the last attempt.

use serde::Serialize;

use crate::layout::Slot;

use super::device::Device;
use super::record::{self, Attempt, SlotRecord};
use super::{UpdateError, bootctl};

#[derive(Debug, Serialize)]
pub struct Status {
    pub running: Slot,
    pub committed: Slot,
    pub trying: bool,
    pub a: Option<SlotRecord>,
    pub b: Option<SlotRecord>,
    pub last_attempt: Option<Attempt>,
}

pub fn status(d: &Device) -> Result<Status, UpdateError> {
    let rec = record::load(&d.state)?;
    Ok(Status {
        running: d.booted()?,
        committed: d.committed()?,
        trying: bootctl::trying(d)?,
        a: rec.a,
        b: rec.b,
        last_attempt: rec.attempt,
    })
}
