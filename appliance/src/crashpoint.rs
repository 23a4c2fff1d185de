//! Numbered points where a test can stop the process dead, as a power cut would.
//!
//! Work that must survive a power cut (a backup being written, a restore being swapped in)
//! marks each step with [`reached`]. With `D3KOS_CRASH_LOG=FILE` every point reached is
//! appended to FILE as `N label`; with `D3KOS_CRASH_AT=N` the N-th point sends SIGKILL to
//! the process, so no destructor, flush or clean-up runs. With `D3KOS_HOLD_AT=LABEL` and
//! `D3KOS_HOLD_FILE=PATH` the first point labelled LABEL creates PATH and waits while it
//! exists, so a test can look at the device in the middle of the work. Without any of
//! these variables a point costs one relaxed atomic load.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Hook {
    at: Option<u64>,
    log: Option<std::fs::File>,
    hold: Option<(String, std::path::PathBuf)>,
    held: std::sync::atomic::AtomicBool,
    reached: AtomicU64,
}

fn hook() -> Option<&'static Hook> {
    static HOOK: OnceLock<Option<Hook>> = OnceLock::new();
    HOOK.get_or_init(|| {
        let at = std::env::var("D3KOS_CRASH_AT")
            .ok()
            .and_then(|v| v.parse().ok());
        let log = std::env::var_os("D3KOS_CRASH_LOG").and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        let hold = std::env::var("D3KOS_HOLD_AT")
            .ok()
            .zip(std::env::var_os("D3KOS_HOLD_FILE").map(std::path::PathBuf::from));
        (at.is_some() || log.is_some() || hold.is_some()).then(|| Hook {
            at,
            log,
            hold,
            held: std::sync::atomic::AtomicBool::new(false),
            reached: AtomicU64::new(0),
        })
    })
    .as_ref()
}

/// Marks a step; see the module documentation.
pub fn reached(label: &str) {
    let Some(h) = hook() else { return };
    let n = h.reached.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(mut log) = h.log.as_ref() {
        let _ = writeln!(log, "{n} {label}");
    }
    if let Some((at, file)) = &h.hold
        && at == label
        && !h.held.swap(true, Ordering::SeqCst)
    {
        let _ = std::fs::write(file, label);
        while file.exists() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    if h.at == Some(n) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}
