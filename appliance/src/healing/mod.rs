//! Self-healing: rules over the machine's health and over events (engine alerts) find
//! problems; each rule's one safe action is taken within its bounds; every detection and
//! action is recorded. Engine problems are reported with what to check, never "fixed".

pub mod advice;
pub mod clean;
pub mod detect;
pub mod facts;
pub mod history;
pub mod remote;
pub mod rules;
pub mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Something that happened elsewhere that a rule may care about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An engine started, stopped or raised an alert.
    Engine(crate::engine::worker::Event),
}

/// Events waiting for the next check, bounded.
pub const INBOX: usize = 256;

/// Where other concerns send their events: a bounded queue that wakes the healing worker.
/// A full queue drops the event and counts it; the sender never waits.
#[derive(Clone)]
pub struct Inbox {
    tx: tokio::sync::mpsc::Sender<Event>,
    wake: Arc<tokio::sync::Notify>,
    pub dropped: Arc<AtomicU64>,
}

impl Inbox {
    pub fn new() -> (
        Inbox,
        tokio::sync::mpsc::Receiver<Event>,
        Arc<tokio::sync::Notify>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(INBOX);
        let wake = Arc::new(tokio::sync::Notify::new());
        (
            Inbox {
                tx,
                wake: wake.clone(),
                dropped: Arc::default(),
            },
            rx,
            wake,
        )
    }

    pub fn send(&self, e: Event) {
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.wake.notify_one();
    }
}
