//! Where frames come from: the live bus (SocketCAN), or a capture replayed at its own
//! pace, behind one trait so ingest does not care which.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::capture::{self, Format, LineError, Record};
use super::frame::Frame;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// One line or frame was unusable; the source goes on.
    #[error(transparent)]
    Line(#[from] LineError),
    #[error("{iface}: a frame that is not NMEA 2000 ({what})")]
    Foreign { iface: String, what: &'static str },
    /// The bus cannot be read now; the source is retried.
    #[error("{iface} is down: {why}")]
    Down { iface: String, why: String },
    #[error("cannot read the capture {path}: {source}")]
    Capture {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SourceError {
    /// Whether the source is unusable until retried (as opposed to one bad record).
    pub fn is_down(&self) -> bool {
        matches!(self, SourceError::Down { .. } | SourceError::Capture { .. })
    }
}

/// How long frames gather before ingest wakes for them. The kernel queues a bus's frames
/// (each with its arrival time) and a replay knows its own, so waking once per batch
/// loses nothing: a saturated 250 kbit/s bus (about 1,800 frames/s) wakes the daemon 50
/// times a second instead of once a frame, and a value reaches the model at most this
/// late, far inside the dashboard's 1 Hz and the engine alarm's 2 s.
pub const BATCH: Duration = Duration::from_millis(20);

/// A stream of records: frames from a bus, or whole messages from a capture.
pub trait FrameSource: Send {
    /// The next record; `Ok(None)` at the end of a capture (a bus never ends).
    fn next(&mut self) -> impl Future<Output = Result<Option<Record>, SourceError>> + Send;
    /// The name for `$source` in Signal K and the health page (`can0`).
    fn label(&self) -> &str;
}

/// The live bus through a SocketCAN interface. Opened lazily and re-opened after an
/// error, so a missing HAT, a vanished interface or a bus-off is a state, not a crash.
pub struct Live {
    iface: String,
    socket: Option<socketcan::tokio::CanSocket>,
}

impl Live {
    pub fn new(iface: &str) -> Live {
        Live {
            iface: iface.to_owned(),
            socket: None,
        }
    }

    fn down(&mut self, why: String) -> SourceError {
        self.socket = None;
        SourceError::Down {
            iface: self.iface.clone(),
            why,
        }
    }

    fn open(&mut self) -> Result<&socketcan::tokio::CanSocket, SourceError> {
        use socketcan::SocketOptions;
        if self.socket.is_none() {
            let s = socketcan::tokio::CanSocket::open(&self.iface).map_err(|e| {
                let hint = if e.raw_os_error() == Some(libc_enodev()) {
                    " (no such interface: is the CAN HAT fitted and its overlay enabled?)"
                } else {
                    ""
                };
                self.down(format!("cannot open it: {e}{hint}"))
            })?;
            // Error frames tell a bus-off apart from a quiet bus.
            s.set_error_filter_accept_all()
                .map_err(|e| self.down(format!("cannot ask for error frames: {e}")))?;
            // Frames read in batches keep the time they arrived, not the time they were read.
            s.set_recv_timestamp(true)
                .map_err(|e| self.down(format!("cannot ask for arrival times: {e}")))?;
            self.socket = Some(s);
        }
        Ok(self.socket.as_ref().expect("opened above"))
    }
}

/// ENODEV: the interface does not exist.
fn libc_enodev() -> i32 {
    19
}

impl FrameSource for Live {
    async fn next(&mut self) -> Result<Option<Record>, SourceError> {
        use futures_util::FutureExt;
        use socketcan::{CanError, CanFrame, EmbeddedFrame, Frame as _};
        // A frame already queued is read at once; an empty queue is left to fill for a
        // batch before the task waits on the socket again.
        let queued = self.open()?.read_frame_with_timestamps().now_or_never();
        let read = match queued {
            Some(read) => read,
            None => {
                tokio::time::sleep(BATCH).await;
                self.open()?.read_frame_with_timestamps().await
            }
        };
        let (frame, stamps) = match read {
            Ok(f) => f,
            Err(e) => return Err(self.down(format!("read failed: {e}"))),
        };
        let at_ms = stamps
            .socket
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(capture::wall_ms, |d| d.as_millis() as i64);
        match frame {
            CanFrame::Data(f) if f.is_extended() => {
                let frame =
                    Frame::new(at_ms, f.raw_id(), f.data()).ok_or(SourceError::Foreign {
                        iface: self.iface.clone(),
                        what: "over 8 bytes",
                    })?;
                Ok(Some(Record::Frame(frame)))
            }
            CanFrame::Data(_) => Err(SourceError::Foreign {
                iface: self.iface.clone(),
                what: "an 11-bit identifier",
            }),
            CanFrame::Remote(_) => Err(SourceError::Foreign {
                iface: self.iface.clone(),
                what: "a remote frame",
            }),
            CanFrame::Error(e) => match e.into_error() {
                CanError::BusOff => Err(self.down("bus off".into())),
                other => Err(SourceError::Foreign {
                    iface: self.iface.clone(),
                    what: if matches!(other, CanError::ControllerProblem(_)) {
                        "a controller problem"
                    } else {
                        "an error frame"
                    },
                }),
            },
        }
    }

    fn label(&self) -> &str {
        &self.iface
    }
}

/// Where a replay reads from: a file, read as it goes (a long capture never sits in
/// memory whole), or text already in memory.
enum Input {
    File(PathBuf),
    Text(std::sync::Arc<[u8]>),
}

type Lines = capture::Reader<Box<dyn std::io::BufRead + Send>>;

/// A capture file replayed: at the pace its timestamps say (moved to now, as if seen
/// today) and released in batches as a bus's frames are, or as fast as it can be read;
/// once, or round and round.
pub struct Replay {
    label: String,
    input: Input,
    format: Format,
    paced: bool,
    looped: bool,
    reader: Option<Lines>,
    /// The wall clock minus the capture's clock, fixed at the first record of each pass.
    shift_ms: Option<i64>,
}

impl Replay {
    pub fn open(
        path: &Path,
        format: Option<Format>,
        paced: bool,
        looped: bool,
    ) -> Result<Replay, SourceError> {
        let failed = |source| SourceError::Capture {
            path: path.to_owned(),
            source,
        };
        let format = match format {
            Some(f) => f,
            None => {
                // The first lines tell the format.
                use std::io::Read;
                let mut head = vec![0; 64 * 1024];
                let mut f = std::fs::File::open(path).map_err(failed)?;
                let n = f.read(&mut head).map_err(failed)?;
                capture::detect(&String::from_utf8_lossy(&head[..n]))
            }
        };
        Ok(Replay {
            label: path
                .file_name()
                .map_or("replay".into(), |n| n.to_string_lossy().into_owned()),
            input: Input::File(path.to_owned()),
            format,
            paced,
            looped,
            reader: None,
            shift_ms: None,
        })
    }

    pub fn from_text(
        label: String,
        text: String,
        format: Option<Format>,
        paced: bool,
        looped: bool,
    ) -> Replay {
        let format = format.unwrap_or_else(|| capture::detect(&text));
        Replay {
            label,
            input: Input::Text(text.into_bytes().into()),
            format,
            paced,
            looped,
            reader: None,
            shift_ms: None,
        }
    }

    fn start(&self) -> Result<Lines, SourceError> {
        let input: Box<dyn std::io::BufRead + Send> = match &self.input {
            Input::Text(t) => Box::new(std::io::Cursor::new(t.clone())),
            Input::File(path) => Box::new(std::io::BufReader::new(
                std::fs::File::open(path).map_err(|source| SourceError::Capture {
                    path: path.clone(),
                    source,
                })?,
            )),
        };
        Ok(capture::Reader::new(input, self.format))
    }
}

impl FrameSource for Replay {
    async fn next(&mut self) -> Result<Option<Record>, SourceError> {
        loop {
            if self.reader.is_none() {
                self.reader = Some(self.start()?);
            }
            let reader = self.reader.as_mut().expect("started above");
            let Some(r) = reader.next_record() else {
                if !self.looped {
                    return Ok(None);
                }
                self.reader = None;
                self.shift_ms = None;
                // A capture of nothing would spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let mut record = r?;
            let at = match &mut record {
                Record::Frame(f) => &mut f.at_ms,
                Record::Message(m) => &mut m.at_ms,
            };
            if self.paced {
                let now = capture::wall_ms();
                let shift = *self.shift_ms.get_or_insert(now - *at);
                *at += shift;
                let wait = *at - now;
                if wait > 0 {
                    // Records due within the batch after this one come without waiting.
                    tokio::time::sleep(Duration::from_millis(wait as u64) + BATCH).await;
                }
            }
            return Ok(Some(record));
        }
    }

    fn label(&self) -> &str {
        &self.label
    }
}
