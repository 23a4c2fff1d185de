//! The helm screen: whether the device's own browser asked the appliance for anything since
//! its kiosk started, and a restart of the kiosk when it did not. A browser that came up
//! without drawing the page (seen on first boots: a white screen) is indistinguishable from
//! a working one to systemd; to the appliance it is the one that never asks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The kiosk (rootfs-overlay/usr/lib/systemd/system/d3kos-kiosk.service).
pub const KIOSK: &str = "d3kos-kiosk.service";

/// How long a started kiosk may go without asking for its first page. A Pi 4 shows the
/// menu within seconds; an emulated machine without a GPU within 20 to 45 s when idle, and
/// past 60 s under load (a restart then only starts the wait again).
pub const GRACE: Duration = Duration::from_secs(90);

/// Restarts per start of the appliance: a kiosk that never draws is not restarted forever.
pub const MAX_RESTARTS: u32 = 3;

/// The last request from the helm screen, in µs of CLOCK_MONOTONIC (0: none yet).
#[derive(Debug, Default)]
pub struct Seen(AtomicU64);

impl Seen {
    pub fn mark(&self) {
        self.0.store(monotonic_us(), Ordering::Relaxed);
    }

    pub fn last_us(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// CLOCK_MONOTONIC, the clock systemd's `…TimestampMonotonic` properties count on.
pub fn monotonic_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000
}

/// Whether the kiosk, active since `since_us`, has shown nothing: the grace has passed and
/// no helm request came after it started.
pub fn stuck(since_us: Option<u64>, last_seen_us: u64, now_us: u64) -> bool {
    match since_us {
        Some(since) => now_us >= since + GRACE.as_micros() as u64 && last_seen_us < since,
        None => false,
    }
}

/// Looks every 15 s; restarts a stuck kiosk, at most [`MAX_RESTARTS`] times.
pub async fn watch(seen: Arc<Seen>) {
    if !crate::systemd::booted() {
        return;
    }
    let mut restarts = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tick.tick().await;
        let since = crate::systemd::active_since_us(KIOSK).await;
        if !stuck(since, seen.last_us(), monotonic_us()) {
            continue;
        }
        if restarts >= MAX_RESTARTS {
            log::error!(
                "the helm screen has asked for nothing after {restarts} restarts of its kiosk; \
                 leaving it (see `journalctl -u {KIOSK}`)"
            );
            return;
        }
        restarts += 1;
        log::warn!(
            "the helm screen asked for nothing in the {} s since its kiosk started: restarting it",
            GRACE.as_secs()
        );
        // Chromium can take most of a minute to stop on a busy machine.
        let job = crate::systemd::job(crate::systemd::Job::Restart, KIOSK, Duration::from_secs(90));
        if let Err(e) = job.await {
            log::error!("the helm screen's kiosk could not be restarted: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn a_kiosk_that_asked_for_nothing_within_the_grace_is_stuck() {
        let started = 100 * S;
        // Not active: nothing to judge.
        assert!(!stuck(None, 0, 1_000 * S));
        // Still within the grace.
        assert!(!stuck(Some(started), 0, started + 89 * S));
        // Past it, and the last helm request is from before the start.
        assert!(stuck(Some(started), started - 5 * S, started + 91 * S));
        // A request since the start: it draws.
        assert!(!stuck(Some(started), started + 20 * S, started + 91 * S));
    }

    #[test]
    fn seen_marks_the_monotonic_clock() {
        let s = Seen::default();
        assert_eq!(s.last_us(), 0);
        let before = monotonic_us();
        s.mark();
        assert!(s.last_us() >= before);
    }
}
