//! The verdict on a boot: a try-booted slot that shows itself healthy in time is committed;
//! one that does not is recorded as failed and the device restarts into the committed slot.
//! A boot that is not a try finishes what an earlier boot left: a commit cut short, or a try
//! that never came up (a hang the watchdog ended, a power cut before the try).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::crashpoint::reached;
use crate::layout::Slot;

use super::device::{Device, Health};
use super::record::{self, Outcome, SlotRecord, SlotState};
use super::{UpdateError, bootctl};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Not a try, nothing pending: the running slot is the committed one.
    Steady {
        slot: Slot,
    },
    Committed {
        slot: Slot,
        version: String,
    },
    /// The try failed its health check; the device restarts into `back_to`.
    RolledBack {
        slot: Slot,
        back_to: Slot,
        reason: String,
    },
    /// A try recorded earlier did not come up; the committed slot runs.
    NeverCameUp {
        slot: Slot,
        version: String,
    },
}

/// Restarts of a listed unit after which a try is judged without waiting longer.
const GIVE_UP_AFTER: u32 = 3;

/// Why a look found the system unhealthy, and whether waiting longer can change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    pub reason: String,
    /// systemd has given up on a unit: no wait will bring it.
    pub given_up: bool,
}

impl From<String> for Unhealthy {
    fn from(reason: String) -> Self {
        Unhealthy {
            reason,
            given_up: false,
        }
    }
}

/// One look at the system's health: `Err` says the first thing missing.
pub fn look(h: &Health) -> Result<(), Unhealthy> {
    for unit in &h.units {
        if crate::systemd::is_failed(unit) {
            return Err(Unhealthy {
                reason: format!("{unit} failed"),
                given_up: true,
            });
        }
        // A unit that keeps restarting is never "failed" while systemd keeps trying: three
        // failed starts of a new system are its verdict.
        if let Some(n) = crate::systemd::restarts(unit).filter(|n| *n >= GIVE_UP_AFTER) {
            return Err(Unhealthy {
                reason: format!("{unit} failed to start {n} times"),
                given_up: true,
            });
        }
        if !crate::systemd::is_active(unit) {
            return Err(format!("{unit} is not active").into());
        }
    }
    if !h.mounts.is_empty() {
        let info = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Unhealthy::from(e.to_string()))?;
        for m in &h.mounts {
            // mountinfo(5): the fifth field is the mount point.
            let mounted = info
                .lines()
                .any(|l| l.split(' ').nth(4) == Some(&*m.to_string_lossy()));
            if !mounted {
                return Err(format!("{} is not mounted", m.display()).into());
            }
        }
    }
    for db in &h.databases {
        quick_check(db).map_err(Unhealthy::from)?;
    }
    if let Some(url) = &h.url {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        match agent.get(url).call() {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => return Err(format!("{url} answered {}", r.status()).into()),
            Err(e) => return Err(format!("{url}: {e}").into()),
        }
    }
    Ok(())
}

fn quick_check(db: &Path) -> Result<(), String> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", db.display()))?;
    let said: String = c
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| format!("{}: {e}", db.display()))?;
    if said != "ok" {
        return Err(format!("{}: {said}", db.display()));
    }
    Ok(())
}

fn now() -> u64 {
    crate::time::unix_now().max(0) as u64
}

/// Decides this boot, waiting up to the health limit on a try. A `RolledBack` verdict needs
/// a restart, which the caller runs.
pub fn settle(d: &Device) -> Result<Verdict, UpdateError> {
    let booted = d.booted()?;
    let mut rec = record::load(&d.state)?;
    if bootctl::trying(d)? {
        let Some(attempt) = rec.attempt.clone().filter(|a| a.slot == booted) else {
            // A try nobody recorded: nothing to commit; the next boot is the default again.
            return Ok(Verdict::Steady { slot: booted });
        };
        // Decided earlier in this boot: said again, done once.
        match attempt.outcome {
            Outcome::Pending => {}
            Outcome::Committed => return Ok(Verdict::Steady { slot: booted }),
            Outcome::RolledBack => {
                return Ok(Verdict::RolledBack {
                    slot: booted,
                    back_to: super::other(booted),
                    reason: attempt.reason.unwrap_or_default(),
                });
            }
        }
        let started = Instant::now();
        let limit = Duration::from_secs(d.health.limit_secs);
        let mut last;
        loop {
            last = look(&d.health);
            let given_up = last.as_ref().is_err_and(|u| u.given_up);
            if last.is_ok() || given_up || started.elapsed() >= limit {
                break;
            }
            std::thread::sleep(Duration::from_secs(2).min(limit.saturating_sub(started.elapsed())));
        }
        reached("update: health looked at");
        return match last {
            Ok(()) => {
                bootctl::commit(d, booted)?;
                finish_commit(d, &mut rec, booted)?;
                super::notes::committed(d, &attempt);
                Ok(Verdict::Committed {
                    slot: booted,
                    version: attempt.version,
                })
            }
            Err(u) => {
                let reason = if u.given_up {
                    format!("not healthy: {}", u.reason)
                } else {
                    format!("not healthy within {} s: {}", d.health.limit_secs, u.reason)
                };
                mark_failed(&mut rec, booted, &reason);
                record::save(&d.state, &rec)?;
                reached("update: failure recorded");
                note_rollback(d, &mut rec)?;
                Ok(Verdict::RolledBack {
                    slot: booted,
                    back_to: super::other(booted),
                    reason,
                })
            }
        };
    }
    let committed = d.committed()?;
    match rec.attempt.clone() {
        Some(a) if a.outcome == Outcome::Pending && a.slot == booted && committed == booted => {
            // The commit reached autoboot.txt but not the record.
            finish_commit(d, &mut rec, booted)?;
            super::notes::committed(d, &a);
            Ok(Verdict::Committed {
                slot: booted,
                version: a.version,
            })
        }
        Some(a) if a.outcome == Outcome::Pending && a.slot != booted => {
            bootctl::cancel_try(d)?;
            mark_failed(
                &mut rec,
                a.slot,
                "the new system did not come up (it hung or failed to start, or the power went \
                 before it could be tried)",
            );
            record::save(&d.state, &rec)?;
            note_rollback(d, &mut rec)?;
            Ok(Verdict::NeverCameUp {
                slot: a.slot,
                version: a.version,
            })
        }
        _ => {
            if rec
                .slot(booted)
                .is_none_or(|s| s.state != SlotState::Good || s.version != d.version)
            {
                rec.set_slot(
                    booted,
                    SlotRecord {
                        version: d.version.clone(),
                        state: SlotState::Good,
                        at: now(),
                    },
                );
                record::save(&d.state, &rec)?;
            }
            // A try that failed before its appliance could note it is noted now.
            note_rollback(d, &mut rec)?;
            Ok(Verdict::Steady { slot: booted })
        }
    }
}

fn finish_commit(d: &Device, rec: &mut record::Record, slot: Slot) -> Result<(), UpdateError> {
    let version = d.version.clone();
    rec.set_slot(
        slot,
        SlotRecord {
            version,
            state: SlotState::Good,
            at: now(),
        },
    );
    if let Some(a) = rec.attempt.as_mut() {
        a.outcome = Outcome::Committed;
        a.finished_at = Some(now());
    }
    record::save(&d.state, rec)?;
    reached("update: commit recorded");
    Ok(())
}

/// Notes a rolled-back attempt in the boat log once, and remembers that it did.
fn note_rollback(d: &Device, rec: &mut record::Record) -> Result<(), UpdateError> {
    let Some(a) = rec
        .attempt
        .as_mut()
        .filter(|a| a.outcome == Outcome::RolledBack && !a.noted)
    else {
        return Ok(());
    };
    super::notes::rolled_back(d, a);
    if a.noted {
        record::save(&d.state, rec)?;
    }
    Ok(())
}

fn mark_failed(rec: &mut record::Record, slot: Slot, reason: &str) {
    if let Some(s) = rec.slot(slot).cloned() {
        rec.set_slot(
            slot,
            SlotRecord {
                state: SlotState::Bad,
                at: now(),
                ..s
            },
        );
    }
    if let Some(a) = rec.attempt.as_mut() {
        a.outcome = Outcome::RolledBack;
        a.reason = Some(reason.to_owned());
        a.finished_at = Some(now());
    }
}
