//! The updater's entries in the boat log: each install, commit and rollback is an `auto`
//! entry, written only where the boat log already exists (the updater never creates it).

use crate::boatlog::Boatlog;
use crate::layout::Slot;

use super::device::Device;
use super::record::Attempt;

/// Writes `text` as the appliance's entry, if the device has a boat log; whether it had.
fn note(d: &Device, text: String) -> bool {
    let Some(dir) = d
        .boatlog
        .as_deref()
        .filter(|p| p.is_file())
        .and_then(|p| p.parent())
    else {
        log::info!("update: no boat log to note \"{text}\" in");
        return false;
    };
    Boatlog::in_state(dir).auto(crate::time::unix_now_ms(), text);
    true
}

pub fn installed(d: &Device, product: &str, version: &str, slot: Slot) {
    let _ = note(
        d,
        format!(
            "Update: {product} {version} installed into slot {slot:?} (running {}); the next \
             start tries it once and keeps it only if it comes up healthy.",
            d.version
        ),
    );
}

pub fn committed(d: &Device, a: &Attempt) {
    let _ = note(
        d,
        format!(
            "Update: {} came up healthy in slot {:?} and is committed; {} stays in slot {:?} \
             as the previous version.",
            a.version,
            a.slot,
            a.from_version,
            super::other(a.slot)
        ),
    );
}

/// Notes a try that was not kept, once: `a.noted` says it is in the log.
pub fn rolled_back(d: &Device, a: &mut Attempt) {
    if a.noted {
        return;
    }
    a.noted = note(
        d,
        format!(
            "Update: {} in slot {:?} was not kept ({}); {} runs.",
            a.version,
            a.slot,
            a.reason.as_deref().unwrap_or("it did not come up healthy"),
            a.from_version
        ),
    );
}

pub fn switching(d: &Device, a: &Attempt) {
    let _ = note(
        d,
        format!(
            "Update: going back to {} in slot {:?}; the next start tries it once.",
            a.version, a.slot
        ),
    );
}

pub fn copied(d: &Device, from: Slot, to: Slot) {
    let _ = note(
        d,
        format!(
            "Factory restore: {} copied from slot {from:?} into slot {to:?}; the next start \
             tries it once and keeps it only if it comes up healthy.",
            d.version
        ),
    );
}
