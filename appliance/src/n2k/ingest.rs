//! The ingest task: records from a frame source, fast packets reassembled, messages
//! decoded and handed on; what was skipped and whether the bus is up, counted for the
//! health page.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::capture::Record;
use super::database::{Database, Units};
use super::decode::{Decoded, decode};
use super::fast::{Drops, Reassembler, Step};
use super::frame::Message;
use super::source::FrameSource;

/// What ingest has seen since it started.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Status {
    /// The interface or capture read (`can0`).
    pub source: String,
    /// Whether the source is readable now.
    pub up: bool,
    /// Why it is not, when it is not.
    pub down_reason: Option<String>,
    pub down_since_ms: Option<i64>,
    /// Times the source went down (a bus-off, a vanished interface).
    pub outages: u64,
    pub frames: u64,
    pub messages: u64,
    /// Messages whose PGN the database does not know (decoded by its range's catch-all).
    pub unknown: u64,
    /// Messages that could not be read as their definition says.
    pub undecodable: u64,
    /// Lines or frames that were not NMEA 2000 or were garbled.
    pub skipped: u64,
    pub fast_packet_drops: Drops,
    pub last_message_ms: Option<i64>,
}

/// The status behind a lock, shared with the health page.
pub type Shared = Arc<Mutex<Status>>;

/// How long to wait before trying a down source again: long enough not to spin on a
/// missing HAT, short enough that a bus back from bus-off is read again soon.
pub const RETRY: Duration = Duration::from_secs(5);

/// Turns records into decoded messages; the state between records (fast packets in
/// progress) and the counts.
pub struct Pipeline {
    db: &'static Database,
    fast: Reassembler,
    units: Units,
    pub status: Status,
}

impl Pipeline {
    pub fn new(source: &str) -> Pipeline {
        Pipeline::in_units(source, Units::Si)
    }

    /// A pipeline whose "not available" test follows `units` (canboat's std or SI).
    pub fn in_units(source: &str, units: Units) -> Pipeline {
        Pipeline {
            db: Database::get(),
            fast: Reassembler::new(),
            units,
            status: Status {
                source: source.to_owned(),
                up: true,
                ..Status::default()
            },
        }
    }

    /// Feeds one record; calls `out` for a whole message.
    pub fn feed(&mut self, record: Record, out: &mut impl FnMut(&Message, &Decoded)) {
        let msg = match record {
            Record::Message(m) => m,
            Record::Frame(f) => {
                self.status.frames += 1;
                let id = f.can_id();
                if self.db.is_fast(id.pgn) {
                    let step = self.fast.push(&f);
                    self.status.fast_packet_drops = self.fast.drops;
                    match step {
                        Step::Done(m) => m,
                        Step::Pending | Step::Dropped(_) => return,
                    }
                } else {
                    Message {
                        at_ms: f.at_ms,
                        prio: id.prio,
                        pgn: id.pgn,
                        src: id.src,
                        dst: id.dst,
                        data: f.payload().to_vec(),
                    }
                }
            }
        };
        self.status.messages += 1;
        self.status.last_message_ms = Some(msg.at_ms);
        let Some(decoded) = decode(self.db, &msg, self.units) else {
            self.status.undecodable += 1;
            return;
        };
        if !decoded.known() {
            self.status.unknown += 1;
        }
        out(&msg, &decoded);
    }

    /// Counts a record that could not be used.
    pub fn skipped(&mut self) {
        self.status.skipped += 1;
    }

    /// The end of a capture: messages still in progress are incomplete.
    pub fn finish(&mut self) {
        self.fast.finish();
        self.status.fast_packet_drops = self.fast.drops;
    }
}

/// Reads `source` until it ends (a capture) or for ever (a bus), publishing the status
/// to `shared` and every message to `out`.
pub async fn run<S: FrameSource>(
    mut source: S,
    shared: Shared,
    mut out: impl FnMut(&Message, &Decoded) + Send,
) {
    let mut pipe = Pipeline::new(source.label());
    let mut published = tokio::time::Instant::now();
    loop {
        match source.next().await {
            Ok(Some(record)) => {
                if !pipe.status.up {
                    log::info!("NMEA 2000: {} is up again", source.label());
                    pipe.status.up = true;
                    pipe.status.down_reason = None;
                    pipe.status.down_since_ms = None;
                }
                pipe.feed(record, &mut out);
            }
            Ok(None) => {
                pipe.finish();
                *shared.lock().expect("n2k status") = pipe.status.clone();
                log::info!("NMEA 2000: the capture {} ended", source.label());
                return;
            }
            Err(e) if e.is_down() => {
                if pipe.status.up || pipe.status.down_reason.is_none() {
                    log::warn!("NMEA 2000: {e}; trying again every {}s", RETRY.as_secs());
                    pipe.status.outages += 1;
                    pipe.status.down_since_ms = Some(super::capture::wall_ms());
                }
                pipe.status.up = false;
                pipe.status.down_reason = Some(e.to_string());
                *shared.lock().expect("n2k status") = pipe.status.clone();
                tokio::time::sleep(RETRY).await;
            }
            Err(e) => {
                log::debug!("NMEA 2000: skipped: {e}");
                pipe.skipped();
            }
        }
        // The status is copied out a few times a second, not once a frame.
        if published.elapsed() >= Duration::from_millis(250) {
            *shared.lock().expect("n2k status") = pipe.status.clone();
            published = tokio::time::Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::n2k::source::Replay;

    #[tokio::test]
    async fn a_capture_with_garbage_is_read_to_the_end_with_the_garbage_counted() {
        let text = "(0.352) vcan0 09F20101#601A00B706670D0B\n\
                    (0.353) vcan0 09F20101#6186BA042600105F\n\
                    garbage\n\
                    (0.354) vcan0 09F20101#62090000008F027F\n\
                    (0.355) vcan0 09F20101#63000000007F7FFF\n\
                    (0.356) vcan0 123#00\n\
                    (0.400) vcan0 09F20101#A01AFF\n";
        let src = Replay::from_text("t".into(), text.into(), None, false, false);
        let shared = Shared::default();
        let mut got = vec![];
        run(src, shared.clone(), |m, d| {
            got.push((m.pgn, d.number("oilPressure")));
        })
        .await;
        assert_eq!(got, vec![(127_489, Some(171_900.0))]);
        let s = shared.lock().unwrap().clone();
        assert_eq!((s.frames, s.messages, s.skipped), (5, 1, 2));
        assert_eq!(
            s.fast_packet_drops.incomplete, 1,
            "the last series never ended"
        );
    }
}
