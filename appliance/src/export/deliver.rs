//! Writing one job's file and handing it over: into a folder (a USB drive, the device's own
//! exports) under a temporary name renamed into place once it is whole and synced, or to an
//! upload address, which counts only when it answers 2xx.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Destination, ExportError, Job, Progress, Upload, UploadMethod, What};
use crate::backup::{self, BackupId, media};
use crate::boatlog::Boatlog;
use crate::crashpoint;

/// Where exports come from and go to.
pub struct Sources {
    pub boatlog: Boatlog,
    pub engine: crate::engine::history::History,
    pub backups: backup::Paths,
    pub media: media::Roots,
    pub uploads: Vec<Upload>,
    /// Exports kept on the device.
    pub files: PathBuf,
}

/// The folder on a USB drive that exports go in.
pub const USB_FOLDER: &str = "d3kos-exports";

/// A writer that counts what passes into the job's progress.
struct Counting<'a, W> {
    inner: W,
    progress: &'a Progress,
    written: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.add(n as u64);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Sources {
    /// Checks that a destination can be chosen now: the drive is plugged in and takes
    /// writes, the upload is configured.
    pub fn check(&self, to: &Destination) -> Result<(), ExportError> {
        match to {
            Destination::Device => Ok(()),
            Destination::Usb(uuid) => self.drive(uuid).map(drop),
            Destination::Upload(name) => self.upload(name).map(drop),
        }
    }

    fn drive(&self, uuid: &str) -> Result<media::Medium, ExportError> {
        let m = media::find(&self.media, uuid).ok_or_else(|| ExportError::NoDrive {
            uuid: uuid.to_owned(),
        })?;
        if !m.writable() {
            return Err(ExportError::ReadOnlyDrive {
                uuid: uuid.to_owned(),
            });
        }
        Ok(m)
    }

    fn upload(&self, name: &str) -> Result<&Upload, ExportError> {
        self.uploads.iter().find(|u| u.name == name).ok_or_else(|| {
            ExportError::Invalid(format!(
                "There is no upload named `{name}`: exports go only to the uploads in \
                     /etc/d3kos/appliance.toml ([[export.upload]])."
            ))
        })
    }

    /// Writes `job`'s file and hands it over. Returns its size.
    pub fn deliver(&self, job: &Job, name: &str, progress: &Progress) -> Result<u64, ExportError> {
        let produce = |w: &mut dyn Write| self.produce(job, w);
        match &job.destination {
            Destination::Device => self.write_into(job, &self.files, name, None, progress),
            Destination::Usb(uuid) => {
                let m = self.drive(uuid)?;
                self.write_into(job, &m.mount.join(USB_FOLDER), name, Some(uuid), progress)
            }
            Destination::Upload(upload) => {
                let upload = self.upload(upload)?;
                // The file is made whole first: every attempt sends the same bytes with
                // their length, and a log that cannot be read never makes half an upload.
                let staged = format!(".upload-{}", job.id);
                let size = to_folder(&self.files, &staged, None, progress, produce)?;
                let path = self.files.join(staged);
                progress.start(job.id);
                let result = send(upload, job, name, &path, size, progress);
                let _ = std::fs::remove_file(&path);
                result
            }
        }
        .inspect(|_| crashpoint::reached("export: delivered"))
    }

    /// Writes the export into a folder; a backup archive takes its checksum file along, so
    /// `sha256sum -c` checks the copy where it lands.
    fn write_into(
        &self,
        job: &Job,
        dir: &Path,
        name: &str,
        usb: Option<&str>,
        progress: &Progress,
    ) -> Result<u64, ExportError> {
        let size = to_folder(dir, name, usb, progress, |w| self.produce(job, w))?;
        if let What::Backup { id } = &job.what {
            let id = BackupId::parse(id).map_err(|e| ExportError::Source(format!("{e}.")))?;
            let from = self.backups.sidecar(&id);
            let sum =
                std::fs::read(&from).map_err(|source| ExportError::Io { path: from, source })?;
            to_folder(dir, &format!("{name}.sha256"), usb, progress, |w| {
                w.write_all(&sum).map_err(output)
            })?;
        }
        Ok(size)
    }

    /// Writes the export's content to `out`.
    fn produce(&self, job: &Job, out: &mut dyn Write) -> Result<(), ExportError> {
        match &job.what {
            What::BoatlogCsv { from, to } => {
                let tz = crate::timezone::boat();
                crate::boatlog::csv::export(
                    &self.boatlog,
                    from.unwrap_or(i64::MIN),
                    *to,
                    &tz,
                    &mut WriteRef(out),
                )
                .map_err(|e| match e {
                    crate::boatlog::csv::ExportError::Write(source) => output(source),
                    e => ExportError::Source(format!("The boat log could not be read: {e}.")),
                })?;
            }
            What::EngineCsv { from, to } => {
                let now_s = crate::time::unix_now_ms().div_euclid(1000);
                crate::engine::history::csv(
                    &self.engine,
                    from.map(|f| f.div_euclid(1000)),
                    to.div_euclid(1000),
                    now_s,
                    &mut WriteRef(out),
                )
                .map_err(|e| match e {
                    crate::engine::history::HistoryError::Write(source) => output(source),
                    e => ExportError::Source(format!("The engine history could not be read: {e}.")),
                })?;
            }
            What::Backup { id } => {
                let id = BackupId::parse(id).map_err(|e| ExportError::Source(format!("{e}.")))?;
                let path = backup::existing(&self.backups, &id).map_err(|_| {
                    ExportError::Source(format!(
                        "Backup {} is no longer on the device: it was deleted.",
                        id.as_str()
                    ))
                })?;
                let mut f = File::open(&path).map_err(|source| ExportError::Io {
                    path: path.clone(),
                    source,
                })?;
                std::io::copy(&mut f, &mut WriteRef(out)).map_err(output)?;
            }
        }
        Ok(())
    }
}

/// An error writing the export's output, wherever it goes ([`to_folder`] knows the path).
fn output(source: std::io::Error) -> ExportError {
    ExportError::Io {
        path: PathBuf::new(),
        source,
    }
}

/// `&mut dyn Write` as a sized writer.
struct WriteRef<'a>(&'a mut dyn Write);

impl Write for WriteRef<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Writes `dir/name` through `.tmp-name`: synced and renamed only when whole, so the
/// folder never holds half a file under the real name, and a retry replaces its own
/// earlier attempt. `usb`: the drive's id, for what to say when it goes away.
fn to_folder(
    dir: &Path,
    name: &str,
    usb: Option<&str>,
    progress: &Progress,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), ExportError>,
) -> Result<u64, ExportError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Io { path, source }
    };
    std::fs::create_dir_all(dir)
        .map_err(io(dir))
        .map_err(|e| gone(e, usb, 0))?;
    let tmp = dir.join(format!(".tmp-{name}"));
    let file = File::create(&tmp)
        .map_err(io(&tmp))
        .map_err(|e| gone(e, usb, 0))?;
    let mut w = Counting {
        inner: BufWriter::with_capacity(256 * 1024, file),
        progress,
        written: 0,
    };
    let result = fill(&mut w).and_then(|()| {
        w.flush().map_err(io(&tmp))?;
        w.inner.get_ref().sync_all().map_err(io(&tmp))?;
        crashpoint::reached("export: written");
        std::fs::rename(&tmp, dir.join(name)).map_err(io(&tmp))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(gone(e, usb, w.written));
    }
    Ok(w.written)
}

/// What an I/O error means for the person waiting: the disk filled, or the drive went.
fn gone(e: ExportError, usb: Option<&str>, written: u64) -> ExportError {
    let ExportError::Io { source, .. } = &e else {
        return e;
    };
    match (source.raw_os_error(), usb) {
        (Some(28), Some(uuid)) => ExportError::Full {
            where_: format!("The USB drive {uuid}"),
            written,
        },
        (Some(28), None) => ExportError::Full {
            where_: "The data partition".into(),
            written,
        },
        // EIO, ENODEV, ENXIO, ENOENT: the drive was pulled out (its mount went, or the
        // file system turned to errors).
        (Some(5 | 19 | 6 | 2), Some(uuid)) => ExportError::Removed {
            uuid: uuid.to_owned(),
        },
        _ => e,
    }
}

/// A reader that counts what passes into the job's progress.
struct Reading<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Reading<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

/// Sends the staged file. PUT goes to the folder URL plus the file name, so a retry
/// replaces the same object; POST carries an Idempotency-Key naming the job.
fn send(
    upload: &Upload,
    job: &Job,
    name: &str,
    path: &Path,
    size: u64,
    progress: &Progress,
) -> Result<u64, ExportError> {
    // The status is read by the crew: an address may carry a key, so it never shows.
    let fail = |message: String| ExportError::Upload {
        name: upload.name.clone(),
        message: message.replace(&upload.url, "its address"),
    };
    let url = match upload.method {
        UploadMethod::Put if upload.url.ends_with('/') => format!("{}{name}", upload.url),
        _ => upload.url.clone(),
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(fail(format!("`{}` is not an http(s) address", upload.url)));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(upload.timeout_secs.max(1))))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let file = File::open(path).map_err(|source| ExportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let content_type = match job.what {
        What::BoatlogCsv { .. } | What::EngineCsv { .. } => "text/csv; charset=utf-8",
        What::Backup { .. } => "application/gzip",
    };
    let mut req = match upload.method {
        UploadMethod::Put => agent.put(&url),
        UploadMethod::Post => agent.post(&url),
    }
    .header("Content-Type", content_type)
    .header("Content-Length", size.to_string())
    .header(
        "Content-Disposition",
        format!("attachment; filename=\"{name}\""),
    )
    .header(
        "Idempotency-Key",
        format!("d3kos-export-{}-{}", job.created, job.id),
    );
    if let Some(a) = &upload.authorization {
        req = req.header("Authorization", a);
    }
    let mut body = Reading {
        inner: file,
        progress,
    };
    let resp = req
        .send(ureq::SendBody::from_reader(&mut body))
        .map_err(|e| fail(said(&e, upload.timeout_secs)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!(
            "the server answered {status}; only a 2xx answer counts as delivered"
        )));
    }
    Ok(size)
}

/// What a failed upload means, in the words of someone at the helm.
fn said(e: &ureq::Error, timeout_secs: u64) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("no answer within {timeout_secs} s"),
        ureq::Error::HostNotFound => {
            "the server's name was not found (is the boat connected to the internet?)".into()
        }
        ureq::Error::ConnectionFailed => "the server could not be reached".into(),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "the server refused the connection (is it running?)".into()
            }
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                "the connection was cut off during the upload".into()
            }
            kind => format!("the connection failed ({kind})"),
        },
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => {
            "the server's certificate was not accepted".into()
        }
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// A small tmpfs standing for a USB drive; `None` (and a note) when not root.
    fn small_drive(dir: &Path) -> Option<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
            eprintln!("skipped: mounting a small tmpfs needs root");
            return None;
        }
        let mount = dir.join("drive");
        std::fs::create_dir_all(&mount).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&mount)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        Some(mount)
    }

    fn umount(mount: &Path, lazy: bool) {
        let mut c = Command::new("umount");
        if lazy {
            c.arg("-l");
        }
        assert!(c.arg(mount).status().unwrap().success());
    }

    fn names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_full_drive_is_said_to_be_full_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let Some(mount) = small_drive(dir.path()) else {
            return;
        };
        let folder = mount.join(USB_FOLDER);
        let e = to_folder(
            &folder,
            "big.csv",
            Some("1234-ABCD"),
            &Progress::default(),
            |w| {
                for _ in 0..64 {
                    w.write_all(&[b'x'; 4096]).map_err(output)?;
                }
                Ok(())
            },
        )
        .unwrap_err();
        let said = e.to_string();
        let left = names(&folder);
        umount(&mount, false);
        assert!(
            matches!(e, ExportError::Full { .. }) && said.contains("USB drive 1234-ABCD is full"),
            "{said}"
        );
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_drive_pulled_out_mid_export_is_said_to_be_gone_and_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let Some(mount) = small_drive(dir.path()) else {
            return;
        };
        let folder = mount.join(USB_FOLDER);
        let e = to_folder(
            &folder,
            "log.csv",
            Some("1234-ABCD"),
            &Progress::default(),
            |w| {
                w.write_all(b"id,local_time\r\n").unwrap();
                // The drive goes: its mount is detached while the file is open.
                umount(&mount, true);
                w.write_all(b"1,2026-01-01 00:00:00\r\n").unwrap();
                Ok(())
            },
        )
        .unwrap_err();
        assert!(matches!(e, ExportError::Removed { .. }), "{e}");
        assert!(e.to_string().contains("went away"), "{e}");
        // The mount point is the bare folder again: nothing was written there.
        assert!(names(&mount).is_empty());
    }

    #[test]
    fn a_retry_replaces_its_own_file_and_a_failure_keeps_the_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = Progress::default();
        let ok = |text: &'static str| {
            move |w: &mut dyn Write| {
                w.write_all(text.as_bytes()).unwrap();
                Ok(())
            }
        };
        assert_eq!(
            to_folder(dir.path(), "a.csv", None, &p, ok("first")).unwrap(),
            5
        );
        assert_eq!(
            to_folder(dir.path(), "a.csv", None, &p, ok("second")).unwrap(),
            6
        );
        let e = to_folder(dir.path(), "a.csv", None, &p, |w| {
            w.write_all(b"half").unwrap();
            Err(ExportError::Source("the log could not be read".into()))
        });
        assert!(e.is_err());
        assert_eq!(names(dir.path()), ["a.csv"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.csv")).unwrap(),
            "second"
        );
    }
}
