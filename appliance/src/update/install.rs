//! Writing the slot that is not running from a bundle: refused whole before the first write
//! when anything is wrong with the bundle or the device, each block checked against the
//! signed manifest before it lands, then synced, recorded, and the try boot arranged.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bundle::{self, BundleError, Keys, Manifest, Opened, Version};
use crate::crashpoint::reached;
use crate::layout::{Role, Slot};

use super::device::Device;
use super::record::{self, Attempt, Outcome, SlotRecord, SlotState};
use super::{UpdateError, bootctl, io, other};

/// Where a bundle comes from.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Url(String),
    /// Standard input (an upload handed on by the web server).
    Stdin,
}

impl Source {
    /// `-` is standard input, http(s):// a download, anything else a file.
    pub fn parse(text: &str) -> Source {
        if text == "-" {
            Source::Stdin
        } else if text.starts_with("https://") || text.starts_with("http://") {
            Source::Url(text.to_owned())
        } else {
            Source::File(text.into())
        }
    }

    /// The bundle's bytes, front to back, with its length when known.
    fn open(&self) -> Result<(Box<dyn Read>, Option<u64>), UpdateError> {
        match self {
            Source::File(p) => {
                let f = File::open(p).map_err(io(p))?;
                let len = f.metadata().map_err(io(p))?.len();
                Ok((Box::new(BufReader::with_capacity(1 << 20, f)), Some(len)))
            }
            Source::Stdin => Ok((
                Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
                None,
            )),
            Source::Url(url) => download(url, STALL),
        }
    }
}

/// A download that receives nothing for this long is given up. Only a stall ends it: a
/// bundle of half a gigabyte over a marina's Wi-Fi or a phone's hotspot takes many minutes,
/// and a limit on the whole body cut such downloads off halfway.
const STALL: Duration = Duration::from_secs(120);

/// The bundle at `url`, with its length when the server says it.
fn download(url: &str, stall: Duration) -> Result<(Box<dyn Read>, Option<u64>), UpdateError> {
    let fail = |why: String| UpdateError::Fetch {
        url: url.to_owned(),
        why,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(stall))
        .timeout_per_read(Some(stall))
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("the server answered {}", resp.status())));
    }
    let len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let reader = Network(resp.into_body().into_reader());
    Ok((Box::new(BufReader::with_capacity(1 << 20, reader)), len))
}

/// A download's body whose failures say they are the network's: ureq hands its errors on
/// as `ErrorKind::Other`, which the bundle reader would take for a damaged bundle.
struct Network<R>(R);

impl<R: Read> Read for Network<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::ErrorKind;
        self.0.read(buf).map_err(|e| {
            let kind = match e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
                Some(ureq::Error::Timeout(_)) => ErrorKind::TimedOut,
                Some(ureq::Error::Io(io)) => io.kind(),
                Some(_) => ErrorKind::ConnectionAborted,
                None => return e,
            };
            std::io::Error::new(kind, e.to_string())
        })
    }
}

/// What `check` found.
#[derive(Debug, Clone)]
pub struct Checked {
    pub manifest: Manifest,
    pub signer: String,
    /// The slot an install would write.
    pub slot: Slot,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Install a version that is not newer than the running one.
    pub force: bool,
}

/// The bundle's signature, manifest and fit for this device, checked; for a file, its
/// payload's hash too; for a stream the checks end at the manifest (a stream is read once,
/// and its blocks are checked as they are written).
fn admit(d: &Device, opened: &Opened<Box<dyn Read>>, o: Options) -> Result<Slot, UpdateError> {
    let m = opened.manifest();
    if m.compatible != d.compatible {
        return Err(UpdateError::Incompatible {
            found: m.compatible.clone(),
            expected: d.compatible.clone(),
        });
    }
    let (new, running) = (Version::parse(&m.version)?, Version::parse(&d.version)?);
    if new <= running && !o.force {
        return Err(UpdateError::NotNewer {
            found: m.version.clone(),
            running: d.version.clone(),
        });
    }
    let target = writable_slot(d)?;
    let parts = d.slot(target);
    for (role, path) in [(Role::Boot, &parts.boot), (Role::System, &parts.system)] {
        let slot = (role == Role::Boot).then_some(target);
        let image = m.image(role, slot).ok_or(UpdateError::MissingImage {
            what: if role == Role::Boot { "boot" } else { "system" },
            slot: target,
        })?;
        let room = size_of(path)?;
        if image.size > room {
            return Err(UpdateError::NoRoom {
                image: image.name.clone(),
                size: image.size,
                slot: target,
                path: path.clone(),
                room,
            });
        }
    }
    bootctl::can_try(d)?;
    Ok(target)
}

/// The slot an install or a restore may write: the one not running, while the running one
/// is the committed default and no try waits for its verdict.
pub(super) fn writable_slot(d: &Device) -> Result<Slot, UpdateError> {
    let booted = d.booted()?;
    let committed = d.committed()?;
    // A try boot keeps saying so until the next restart: once committed it is the default.
    if booted != committed && bootctl::trying(d)? {
        return Err(UpdateError::TryPending { slot: booted });
    }
    if booted != committed {
        return Err(UpdateError::Boot(format!(
            "slot {booted:?} runs but autoboot.txt boots slot {committed:?} by default: restart \
             into the default slot before updating"
        )));
    }
    Ok(other(booted))
}

/// A partition's (or a stand-in file's) size.
pub(super) fn size_of(path: &Path) -> Result<u64, UpdateError> {
    let mut f = File::open(path).map_err(io(path))?;
    f.seek(SeekFrom::End(0)).map_err(io(path))
}

fn open(source: &Source, keys: &Keys) -> Result<Opened<Box<dyn Read>>, UpdateError> {
    if let Source::File(p) = source {
        bundle::check_file(p, keys)?;
    }
    let (reader, len) = source.open()?;
    let opened = Opened::open(reader, keys)?;
    if let Some(len) = len {
        let want = opened.header_len() + opened.manifest().payload.size;
        if len < want {
            return Err(BundleError::Truncated {
                what: "payload",
                got: len.saturating_sub(opened.header_len()),
            }
            .into());
        }
        if len != want {
            return Err(BundleError::Payload {
                expected_size: opened.manifest().payload.size,
                found_size: len.saturating_sub(opened.header_len()),
                expected: opened.manifest().payload.sha256.clone(),
                found: "(not read: the length is wrong)".into(),
            }
            .into());
        }
    }
    Ok(opened)
}

/// Checks a bundle without writing anything: for a stream, every block is read and checked.
pub fn check(d: &Device, source: &Source, o: Options) -> Result<Checked, UpdateError> {
    let keys = Keys::from_dir(&d.keys)?;
    let opened = open(source, &keys)?;
    let slot = admit(d, &opened, o)?;
    let manifest = opened.manifest().clone();
    let signer = opened.signer().to_string();
    if !matches!(source, Source::File(_)) {
        opened.unpack(|_| true, |_| Ok::<(), UpdateError>(()))?;
    }
    Ok(Checked {
        manifest,
        signer,
        slot,
    })
}

/// Writes the slot that is not running and arranges its one-time try; the caller reboots.
/// `progress` hears the bytes written and the total.
pub fn install(
    d: &Device,
    source: &Source,
    o: Options,
    progress: impl FnMut(u64, u64),
) -> Result<Checked, UpdateError> {
    let keys = Keys::from_dir(&d.keys)?;
    let opened = open(source, &keys)?;
    write_slot(d, opened, o, progress)
}

/// [`install`] from a stream already open (an upload the appliance hands on).
pub fn install_stream(
    d: &Device,
    reader: Box<dyn Read>,
    o: Options,
    progress: impl FnMut(u64, u64),
) -> Result<Checked, UpdateError> {
    let keys = Keys::from_dir(&d.keys)?;
    let opened = Opened::open(reader, &keys)?;
    write_slot(d, opened, o, progress)
}

fn write_slot(
    d: &Device,
    opened: Opened<Box<dyn Read>>,
    o: Options,
    mut progress: impl FnMut(u64, u64),
) -> Result<Checked, UpdateError> {
    let target = admit(d, &opened, o)?;
    let manifest = opened.manifest().clone();
    let signer = opened.signer().to_string();
    reached("update: admitted");

    begin_writing(d, target, &manifest.version)?;

    let parts = d.slot(target);
    let open_rw = |p: &Path| File::options().write(true).open(p).map_err(io(p));
    let (boot, system) = (open_rw(&parts.boot)?, open_rw(&parts.system)?);
    let total: u64 = manifest.for_slot(target).map(|i| i.size).sum();
    let mut written = 0u64;
    opened.unpack(
        |im| im.slot.is_none() || im.slot == Some(target),
        |b| -> Result<(), UpdateError> {
            let (file, path) = match b.image.role {
                Role::Boot => (&boot, &parts.boot),
                _ => (&system, &parts.system),
            };
            file.write_all_at(b.bytes, b.offset).map_err(io(path))?;
            written += b.bytes.len() as u64;
            progress(written, total);
            reached("update: block written");
            Ok(())
        },
    )?;
    for (f, p) in [(&boot, &parts.boot), (&system, &parts.system)] {
        f.sync_all().map_err(io(p))?;
    }
    reached("update: slot synced");

    finish_writing(d, target, &manifest.version)?;
    super::notes::installed(d, &manifest.product, &manifest.version, target);
    Ok(Checked {
        manifest,
        signer,
        slot: target,
    })
}

fn now() -> u64 {
    crate::time::unix_now().max(0) as u64
}

/// Before the first write to `target`: its old content is going, so the record says so
/// first (a cut leaves a slot known not to be bootable), and any try not yet booted is taken
/// back.
pub(super) fn begin_writing(d: &Device, target: Slot, version: &str) -> Result<(), UpdateError> {
    let mut rec = record::load(&d.state)?;
    rec.set_slot(
        target,
        SlotRecord {
            version: version.to_owned(),
            state: SlotState::Writing,
            at: now(),
        },
    );
    if rec
        .attempt
        .as_ref()
        .is_some_and(|a| a.outcome == Outcome::Pending)
    {
        rec.attempt = None;
    }
    bootctl::cancel_try(d)?;
    record::save(&d.state, &rec)?;
    reached("update: slot marked writing");
    Ok(())
}

/// After `target` is written and synced: recorded as installed with a pending attempt, and
/// its one-time try arranged.
pub(super) fn finish_writing(d: &Device, target: Slot, version: &str) -> Result<(), UpdateError> {
    let mut rec = record::load(&d.state)?;
    rec.set_slot(
        target,
        SlotRecord {
            version: version.to_owned(),
            state: SlotState::Installed,
            at: now(),
        },
    );
    rec.attempt = Some(Attempt {
        slot: target,
        version: version.to_owned(),
        from_version: d.version.clone(),
        started_at: now(),
        outcome: Outcome::Pending,
        reason: None,
        finished_at: None,
        noted: false,
    });
    record::save(&d.state, &rec)?;
    reached("update: attempt recorded");
    bootctl::arrange_try(d, target)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    use super::*;

    /// Serves one GET: `chunks` bytes each, `gap` apart.
    fn trickle(chunks: usize, gap: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {chunks}\r\n\r\n");
            for _ in 0..chunks {
                std::thread::sleep(gap);
                if s.write_all(b"x").and_then(|()| s.flush()).is_err() {
                    return;
                }
            }
        });
        format!("http://{addr}/bundle.d3kb")
    }

    #[test]
    fn a_slow_download_is_not_cut_off_and_a_stalled_one_is() {
        // Slow: 2.4 s in all, far past the stall limit, but never quiet that long.
        let t = Instant::now();
        let (mut r, len) = download(
            &trickle(8, Duration::from_millis(300)),
            Duration::from_secs(1),
        )
        .unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!((got.len(), len), (8, Some(8)));
        assert!(t.elapsed() > Duration::from_secs(2));
        // Stalled: quiet for longer than the limit.
        let (mut r, _) = download(
            &trickle(2, Duration::from_millis(1500)),
            Duration::from_secs(1),
        )
        .unwrap();
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("timeout"), "{e}");
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    }
}
