//! Fast-packet reassembly (NMEA 2000 Appendix B): a message of up to 223 bytes sent as a
//! numbered series of frames, put back together per sender.
//!
//! Frame 0 carries a 3-bit sequence counter and frame index 0 in its first byte, the total
//! length in its second and 6 bytes of data; each later frame carries the counter, its
//! index and 7 bytes. Frames are put in place by index, so a gateway that reorders them
//! does no harm; a message is emitted only when every frame is there. A frame index seen
//! twice (a lost frame, then the counter come round again), a wild length or a series
//! left unfinished drops the message, never emits it.

use std::collections::HashMap;

use super::frame::{Frame, Message};

/// The longest fast packet: 6 bytes in frame 0 and 7 in each of the 31 others.
pub const MAX_LEN: usize = 6 + 31 * 7;

/// A partial message not touched for this long (by the frames' own clock) is given up:
/// a sender sends a fast packet's frames back to back, well within it.
pub const STALE_MS: i64 = 750;

/// Partial messages kept at once; beyond it the oldest is dropped, so a flood of senders
/// cannot grow memory.
const MAX_PARTIAL: usize = 512;

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Frame 0 announced more than 223 bytes, or none.
    WildLength,
    /// A frame index arrived twice before its series finished.
    LostFrame,
    /// The series stopped before its last frame.
    Incomplete,
    /// A frame too short to carry its header.
    ShortFrame,
}

/// What one frame did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A whole message.
    Done(Message),
    /// Part of a message still coming.
    Pending,
    /// The frame, or the message it belonged to, was dropped.
    Dropped(Drop),
}

#[derive(Debug)]
struct Partial {
    last_ms: i64,
    /// Frames held, bit per index.
    held: u32,
    /// Frames needed, once frame 0 said the length.
    needed: Option<u32>,
    total: usize,
    data: [u8; MAX_LEN + 7],
}

/// Counts of what was dropped, for the health page and the benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Drops {
    pub wild_length: u64,
    pub lost_frame: u64,
    pub incomplete: u64,
    pub short_frame: u64,
}

impl Drops {
    fn count(&mut self, d: Drop) {
        match d {
            Drop::WildLength => self.wild_length += 1,
            Drop::LostFrame => self.lost_frame += 1,
            Drop::Incomplete => self.incomplete += 1,
            Drop::ShortFrame => self.short_frame += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.wild_length + self.lost_frame + self.incomplete + self.short_frame
    }
}

/// Reassembles the fast packets of every sender. Keyed by PGN, source and sequence
/// counter, so two series from one sender that interleave (two engines reported by one
/// gateway) are kept apart.
#[derive(Debug, Default)]
pub struct Reassembler {
    partial: HashMap<(u32, u8, u8), Box<Partial>>,
    pub drops: Drops,
}

/// The frames a message of `total` bytes takes, as a bit mask.
fn frames_for(total: usize) -> u32 {
    // 6 bytes in frame 0, 7 in each after.
    let n = if total <= 6 {
        1
    } else {
        1 + (total - 6).div_ceil(7)
    };
    if n >= 32 { u32::MAX } else { (1u32 << n) - 1 }
}

impl Reassembler {
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// Feeds one frame of a fast-packet PGN.
    pub fn push(&mut self, frame: &Frame) -> Step {
        let id = frame.can_id();
        let payload = frame.payload();
        let Some(&head) = payload.first() else {
            return self.dropped(Drop::ShortFrame);
        };
        let (seq, index) = (head >> 5, head & 0x1F);
        let key = (id.pgn, id.src, seq);
        self.expire(frame.at_ms);
        if index == 0 {
            match payload.get(1) {
                None => return self.dropped(Drop::ShortFrame),
                Some(&0) => return self.dropped(Drop::WildLength),
                Some(&t) if usize::from(t) > MAX_LEN => return self.dropped(Drop::WildLength),
                Some(_) => {}
            }
        }
        if !self.partial.contains_key(&key) && self.partial.len() >= MAX_PARTIAL {
            self.drop_oldest();
        }
        let mut lost = false;
        let p = self.partial.entry(key).or_insert_with(|| {
            Box::new(Partial {
                last_ms: frame.at_ms,
                held: 0,
                needed: None,
                total: 0,
                data: [0xFF; MAX_LEN + 7],
            })
        });
        if p.held & (1 << index) != 0 {
            // This index is already held: the series it belonged to lost a frame.
            lost = true;
            p.held = 0;
            p.needed = None;
        }
        if index == 0 {
            let total = usize::from(payload[1]);
            let needed = frames_for(total);
            // Frames held from before that would already finish this new series belong
            // to an older one whose frame 0 was lost.
            if p.held != 0 && needed != 1 && (p.held | 1) & needed == needed {
                lost = true;
                p.held = 0;
            }
            p.total = total;
            p.needed = Some(needed);
            let n = (payload.len() - 2).min(6);
            p.data[..6].fill(0xFF);
            p.data[..n].copy_from_slice(&payload[2..2 + n]);
        } else {
            let at = 6 + (usize::from(index) - 1) * 7;
            if at >= MAX_LEN {
                self.partial.remove(&key);
                return self.dropped(Drop::LostFrame);
            }
            let n = (payload.len() - 1).min(7);
            p.data[at..at + 7].fill(0xFF);
            p.data[at..at + n].copy_from_slice(&payload[1..1 + n]);
        }
        p.held |= 1 << index;
        p.last_ms = frame.at_ms;
        if lost {
            self.drops.count(Drop::LostFrame);
        }
        let p = self.partial.get(&key).expect("present above");
        if p.needed.is_some_and(|n| p.held & n == n) {
            let p = self.partial.remove(&key).expect("present above");
            // The message is stamped with the frame that completed it, as canboat does.
            return Step::Done(Message {
                at_ms: frame.at_ms,
                prio: id.prio,
                pgn: id.pgn,
                src: id.src,
                dst: id.dst,
                data: p.data[..p.total].to_vec(),
            });
        }
        Step::Pending
    }

    /// Drops every partial message not touched for `STALE_MS` before `now_ms`.
    pub fn expire(&mut self, now_ms: i64) {
        let before = self.partial.len();
        self.partial
            .retain(|_, p| now_ms.saturating_sub(p.last_ms) <= STALE_MS);
        self.drops.incomplete += (before - self.partial.len()) as u64;
    }

    /// Gives up every message still in progress (the end of a capture).
    pub fn finish(&mut self) {
        self.drops.incomplete += self.partial.len() as u64;
        self.partial.clear();
    }

    pub fn in_progress(&self) -> usize {
        self.partial.len()
    }

    fn drop_oldest(&mut self) {
        if let Some(key) = self
            .partial
            .iter()
            .min_by_key(|(_, p)| p.last_ms)
            .map(|(k, _)| *k)
        {
            self.partial.remove(&key);
            self.drops.count(Drop::Incomplete);
        }
    }

    fn dropped(&mut self, d: Drop) -> Step {
        self.drops.count(d);
        Step::Dropped(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::n2k::frame::CanId;

    fn frame(at_ms: i64, src: u8, bytes: &[u8]) -> Frame {
        let id = CanId {
            prio: 2,
            pgn: 127_489,
            src,
            dst: 255,
        };
        Frame::new(at_ms, id.raw(), bytes).unwrap()
    }

    /// A 26-byte message in four frames with sequence counter `seq`.
    fn series(seq: u8, first: u8) -> Vec<[u8; 8]> {
        let body: Vec<u8> = (0..26).map(|i| first.wrapping_add(i)).collect();
        let mut frames = vec![];
        let mut f = [seq << 5, 26, 0, 0, 0, 0, 0, 0];
        f[2..].copy_from_slice(&body[..6]);
        frames.push(f);
        for (n, chunk) in body[6..].chunks(7).enumerate() {
            let mut f = [0xFF; 8];
            f[0] = (seq << 5) | (n as u8 + 1);
            f[1..1 + chunk.len()].copy_from_slice(chunk);
            frames.push(f);
        }
        frames
    }

    #[test]
    fn interleaved_series_from_two_senders_and_two_counters_reassemble() {
        let mut r = Reassembler::new();
        let a = series(1, 10);
        let b = series(2, 100);
        let c = series(1, 200);
        let mut done = vec![];
        for i in 0..4 {
            for (src, s) in [(1, &a), (1, &b), (7, &c)] {
                if let Step::Done(m) = r.push(&frame(i as i64, src, &s[i])) {
                    done.push(m);
                }
            }
        }
        assert_eq!(done.len(), 3);
        assert_eq!(done[0].data, (10..36).collect::<Vec<u8>>());
        assert_eq!(done[1].data, (100..126).collect::<Vec<u8>>());
        assert_eq!((done[2].src, done[2].data[0]), (7, 200));
        assert_eq!(r.drops, Drops::default());
    }

    #[test]
    fn a_lost_frame_drops_the_message_and_the_next_one_still_comes_through() {
        let mut r = Reassembler::new();
        let s = series(3, 0);
        assert_eq!(r.push(&frame(0, 1, &s[0])), Step::Pending);
        assert_eq!(r.push(&frame(1, 1, &s[2])), Step::Pending);
        assert_eq!(
            r.push(&frame(2, 1, &s[3])),
            Step::Pending,
            "frame 1 never came"
        );
        let steps: Vec<_> = s.iter().map(|f| r.push(&frame(3, 1, f))).collect();
        assert_eq!(
            r.drops.lost_frame, 1,
            "frame 0 again: the old series is given up"
        );
        match &steps[3] {
            Step::Done(m) => assert_eq!(m.data, (0..26).collect::<Vec<u8>>()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn frames_out_of_order_still_make_the_message_stamped_by_the_last() {
        let mut r = Reassembler::new();
        let s = series(5, 40);
        for (i, at) in [(2, 0), (0, 1), (3, 2)] {
            assert_eq!(r.push(&frame(at, 1, &s[i])), Step::Pending);
        }
        match r.push(&frame(9, 1, &s[1])) {
            Step::Done(m) => assert_eq!((m.at_ms, m.data[0], m.data[25]), (9, 40, 65)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wild_length_and_a_stale_series_are_dropped_never_emitted() {
        let mut r = Reassembler::new();
        assert_eq!(
            r.push(&frame(0, 1, &[0x00, 224, 1, 2, 3, 4, 5, 6])),
            Step::Dropped(Drop::WildLength)
        );
        let s = series(0, 0);
        r.push(&frame(0, 1, &s[0]));
        r.push(&frame(10, 1, &s[1]));
        // The rest turns up a second later: too late, and on its own never completes.
        assert_eq!(r.push(&frame(1_010, 1, &s[2])), Step::Pending);
        assert_eq!(r.push(&frame(1_011, 1, &s[3])), Step::Pending);
        assert_eq!(r.drops.incomplete, 1);
        r.push(&frame(2_000, 1, &s[0]));
        r.finish();
        assert_eq!(
            r.drops.incomplete, 3,
            "the late frames, then the unfinished start"
        );
        assert_eq!(r.in_progress(), 0);
    }

    #[test]
    fn a_flood_of_senders_is_bounded() {
        let mut r = Reassembler::new();
        for i in 0..2_000u32 {
            let id = CanId {
                prio: 2,
                pgn: 130_816 + (i % 200),
                src: (i / 200) as u8,
                dst: 255,
            };
            let f = Frame::new(0, id.raw(), &[0x20, 100, 0, 0, 0, 0, 0, 0]).unwrap();
            r.push(&f);
        }
        assert!(r.in_progress() <= MAX_PARTIAL);
    }
}
