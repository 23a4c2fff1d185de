//! Captures of NMEA 2000 traffic as text: the two `candump` formats (raw frames) and
//! canboat's "plain" CSV (whole messages, fast packets already joined).

use std::io::BufRead;

use super::frame::{CanId, Frame, Message};

/// What a capture line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Frame(Frame),
    Message(Message),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `candump -l` (`(secs) can0 ID#DATA`) or candump's default (`can0 ID [n] BYTES`).
    Candump,
    /// canboat's CSV: `time,prio,pgn,src,dst,len,byte,…` in hex.
    Plain,
}

/// Why a line was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("line {line}: not a capture line: {why}")]
    Garbled { line: u64, why: &'static str },
    #[error("line {line}: {id:X} is an 11-bit identifier; NMEA 2000 uses 29-bit ones")]
    NotExtended { line: u64, id: u32 },
    #[error("line {line}: a CAN frame carries at most 8 bytes, this one {found}")]
    TooLong { line: u64, found: usize },
    #[error("line {line}: says {said} bytes but has {found}")]
    WrongLength {
        line: u64,
        said: usize,
        found: usize,
    },
    #[error("line {line}: PGN {pgn} is over 24 bits")]
    BadPgn { line: u64, pgn: u64 },
}

/// Guesses the format from the first line that is not a comment.
pub fn detect(text: &str) -> Format {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    let csv = first.split(',').count() >= 6 && !first.contains('#') && !first.contains('[');
    if csv { Format::Plain } else { Format::Candump }
}

/// Reads a capture line by line; comments and blank lines are passed over.
pub struct Reader<R> {
    input: R,
    format: Format,
    line: u64,
    /// Milliseconds given to frames of a capture that has no timestamps.
    pub clock: fn() -> i64,
    /// A plain capture whose lines are whole messages: seen once a line is longer than
    /// a frame. Before that, lines of fast-packet PGNs are frames to reassemble (what a
    /// raw frame log in the same format holds), as canboat reads them.
    coalesced: bool,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R, format: Format) -> Reader<R> {
        Reader {
            input,
            format,
            line: 0,
            clock: wall_ms,
            coalesced: false,
        }
    }

    /// The next record, a skipped line, or `None` at the end. A read error ends it.
    pub fn next_record(&mut self) -> Option<Result<Record, LineError>> {
        loop {
            // A line that is not UTF-8 is garbage like any other.
            let mut raw = Vec::new();
            match self.input.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            self.line += 1;
            let Ok(text) = std::str::from_utf8(&raw) else {
                return Some(Err(LineError::Garbled {
                    line: self.line,
                    why: "not text",
                }));
            };
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            return Some(match self.format {
                Format::Candump => candump(text, self.line, self.clock).map(Record::Frame),
                Format::Plain => self.plain(text),
            });
        }
    }
}

impl<R: BufRead> Reader<R> {
    fn plain(&mut self, text: &str) -> Result<Record, LineError> {
        let m = plain(text, self.line)?;
        if m.data.len() > 8 {
            self.coalesced = true;
        }
        if self.coalesced {
            if m.data.is_empty() {
                return Err(LineError::Garbled {
                    line: self.line,
                    why: "a message of no bytes",
                });
            }
            return Ok(Record::Message(m));
        }
        let id = CanId {
            prio: m.prio,
            pgn: m.pgn,
            src: m.src,
            dst: m.dst,
        };
        match Frame::new(m.at_ms, id.raw(), &m.data) {
            Some(f) if m.pgn <= 0x1_FFFF => Ok(Record::Frame(f)),
            _ => Ok(Record::Message(m)),
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Record, LineError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

pub fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// One candump line: `(1502984866.421964) slcan0 09F112CC#FF725AFF7FFF7FFD` (`-l`) or
/// `  can0  09F8027F   [8]  00 FC FF FF 00 00 FF FF` (default, timestamp optional).
pub fn candump(text: &str, line: u64, clock: fn() -> i64) -> Result<Frame, LineError> {
    let garbled = |why| LineError::Garbled { line, why };
    let mut words = text.split_whitespace().peekable();
    let mut at_ms = None;
    if let Some(w) = words.peek()
        && w.starts_with('(')
    {
        let w = words.next().unwrap_or_default();
        let secs = w
            .strip_prefix('(')
            .and_then(|w| w.strip_suffix(')'))
            .ok_or(garbled("unclosed timestamp"))?;
        at_ms = Some(seconds_to_ms(secs).ok_or(garbled("bad timestamp"))?);
    }
    let _iface = words.next().ok_or(garbled("no interface"))?;
    let word = words.next().ok_or(garbled("no frame"))?;
    let (id_hex, payload) = if let Some((id, data)) = word.split_once('#') {
        if data.starts_with('#') || data.starts_with('R') {
            return Err(garbled("not a classic data frame"));
        }
        if words.next().is_some() {
            return Err(garbled("text after the frame"));
        }
        (id, hex_run(data).ok_or(garbled("bad hex data"))?)
    } else {
        let said = words
            .next()
            .and_then(|w| w.strip_prefix('['))
            .and_then(|w| w.strip_suffix(']'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or(garbled("no [length]"))?;
        let mut data = Vec::with_capacity(8);
        for w in words {
            data.push(hex_byte(w).ok_or(garbled("bad hex byte"))?);
        }
        if data.len() != said {
            return Err(LineError::WrongLength {
                line,
                said,
                found: data.len(),
            });
        }
        (word, data)
    };
    if id_hex.len() != 8 {
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| garbled("bad identifier"))?;
        return Err(LineError::NotExtended { line, id });
    }
    let id = u32::from_str_radix(id_hex, 16).map_err(|_| garbled("bad identifier"))?;
    if id > 0x1FFF_FFFF {
        return Err(garbled("identifier over 29 bits"));
    }
    let found = payload.len();
    Frame::new(at_ms.unwrap_or_else(clock), id, &payload).ok_or(LineError::TooLong { line, found })
}

/// One plain line: `2016-04-09T16:41:09.078Z,3,127257,17,255,8,00,ff,7f,52,00,21,fe,ff`.
pub fn plain(text: &str, line: u64) -> Result<Message, LineError> {
    let garbled = |why| LineError::Garbled { line, why };
    let mut cols = text.split(',');
    let at_ms = timestamp_ms(cols.next().unwrap_or_default()).ok_or(garbled("bad time"))?;
    let mut number = |what| {
        cols.next()
            .and_then(|c| c.trim().parse::<u64>().ok())
            .ok_or(garbled(what))
    };
    let prio = number("bad priority")?;
    let pgn = number("bad PGN")?;
    let src = number("bad source")?;
    let dst = number("bad destination")?;
    let said = number("bad length")? as usize;
    if prio > 7 || src > 255 || dst > 255 {
        return Err(garbled("priority, source or destination out of range"));
    }
    if pgn > 0xFF_FFFF {
        return Err(LineError::BadPgn { line, pgn });
    }
    let data = cols
        .map(|c| hex_byte(c.trim()))
        .collect::<Option<Vec<u8>>>()
        .ok_or(garbled("bad hex byte"))?;
    if data.len() != said {
        return Err(LineError::WrongLength {
            line,
            said,
            found: data.len(),
        });
    }
    let id = CanId {
        prio: prio as u8,
        pgn: pgn as u32,
        src: src as u8,
        dst: dst as u8,
    };
    Ok(Message {
        at_ms,
        prio: id.prio,
        pgn: id.pgn,
        src: id.src,
        dst: id.dst,
        data,
    })
}

/// `1502984866.421964` seconds to milliseconds.
fn seconds_to_ms(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    // Microseconds rounded to milliseconds, half to even (as canboat's candump2analyzer).
    let us: i64 = format!("{frac:0<6}")[..6].parse().ok()?;
    let ms = match (us / 1000, us % 1000) {
        (m, r) if r > 500 || (r == 500 && m % 2 == 1) => m + 1,
        (m, _) => m,
    };
    secs.checked_mul(1000)?.checked_add(ms)
}

/// canboat writes `2016-04-09T16:41:09.078Z`; older logs `2011-11-24-22:42:04.388`.
fn timestamp_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let iso = if s.len() > 10 && s.as_bytes()[10] == b'-' {
        format!("{}T{}", &s[..10], &s[11..])
    } else {
        s.to_owned()
    };
    let iso = if iso.ends_with('Z') {
        iso
    } else {
        format!("{iso}Z")
    };
    iso.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

fn hex_byte(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 2 {
        return None;
    }
    u8::from_str_radix(s, 16).ok()
}

fn hex_run(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> i64 {
        -1
    }

    #[test]
    fn both_candump_formats_read_the_same_frame() {
        let l = candump(
            "(1502984866.421964) slcan0 09F112CC#FF725AFF7FFF7FFD",
            1,
            never,
        )
        .unwrap();
        assert_eq!(l.at_ms, 1_502_984_866_422, "421.964 ms rounds up");
        assert_eq!(l.id, 0x09F1_12CC);
        assert_eq!(
            l.payload(),
            &[0xFF, 0x72, 0x5A, 0xFF, 0x7F, 0xFF, 0x7F, 0xFD]
        );
        let d = candump("  can0  09F8027F   [8]  00 FC FF FF 00 00 FF FF", 1, never).unwrap();
        assert_eq!(d.at_ms, -1, "no timestamp: the clock's");
        assert_eq!(d.payload(), &[0, 0xFC, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF]);
        let short = candump("(1.5) slcan0 18EACCAC#00EE00", 1, never).unwrap();
        assert_eq!((short.at_ms, short.len), (1_500, 3));
    }

    #[test]
    fn bad_candump_lines_say_what_is_wrong() {
        let bad = [
            ("(1.0) can0 09F112CC#FF72AFF", "bad hex data"),
            ("(1.0) can0 123#FF", "11-bit"),
            (
                "(1.0) can0 09F112CC#00112233445566778899",
                "at most 8 bytes",
            ),
            ("  can0  09F8027F   [8]  00 FC FF", "says 8 bytes but has 3"),
            (
                "  can0  09F8027F   [8]  00 FC FF FF 00 00 FF ZZ",
                "bad hex byte",
            ),
            ("(12 can0 09F112CC#FF", "unclosed timestamp"),
            ("(1.0) can0", "no frame"),
            ("(1.0) can0 09F112CC##0FF", "not a classic"),
        ];
        for (line, says) in bad {
            let e = candump(line, 7, never).unwrap_err().to_string();
            assert!(e.contains(says) && e.starts_with("line 7"), "{line}: {e}");
        }
    }

    #[test]
    fn plain_lines_carry_whole_messages() {
        let m = plain("2022-09-23T11:05:05.383Z,2,127489,236,255,4,00,28,00,ff", 1).unwrap();
        assert_eq!(
            (m.at_ms, m.prio, m.pgn, m.src, m.dst),
            (1_663_931_105_383, 2, 127_489, 236, 255)
        );
        assert_eq!(m.data, vec![0, 0x28, 0, 0xFF]);
        let old = plain("2011-11-24-22:42:04.388,2,127250,7,255,1,ff", 1).unwrap();
        assert_eq!(old.at_ms % 1000, 388);
        for (line, says) in [
            (
                "2022-09-23T11:05:05.383Z,2,127489,236,255,26,00,28",
                "says 26 bytes but has 2",
            ),
            ("2022-09-23T11:05:05.383Z,2,127489,236", "bad destination"),
            ("yesterday,2,127489,236,255,1,00", "bad time"),
            (
                "2022-09-23T11:05:05.383Z,2,99999999,0,0,1,00",
                "over 24 bits",
            ),
        ] {
            let e = plain(line, 3).unwrap_err().to_string();
            assert!(e.contains(says), "{line}: {e}");
        }
    }

    #[test]
    fn the_format_is_told_from_the_first_line() {
        assert_eq!(detect("# x\n(1.0) can0 09F112CC#FF\n"), Format::Candump);
        assert_eq!(detect("  can0  09F8027F   [1]  00\n"), Format::Candump);
        assert_eq!(
            detect("2016-04-09T16:41:09.078Z,3,127257,17,255,1,00\n"),
            Format::Plain
        );
    }

    #[test]
    fn a_reader_passes_comments_and_reports_garbage_then_goes_on() {
        let text = "# c\n\n(1.0) can0 09F112CC#FF\nnonsense\n\u{0}\u{1}\n(2.0) can0 09F112CC#00\n";
        let got: Vec<_> = Reader::new(text.as_bytes(), Format::Candump).collect();
        assert_eq!(got.len(), 4);
        assert!(got[0].is_ok() && got[1].is_err() && got[2].is_err() && got[3].is_ok());
    }
}
