//! The one export worker: runs the job due first, records how it went, and schedules the
//! retries of a failure. Every step is committed to the queue before the next begins, so a
//! cut at any point leaves a job that runs again, never one that is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::deliver::Sources;
use super::{Destination, ExportError, Job, Progress, Queue, What, file_name};
use crate::crashpoint;

/// The export service: the queue, the worker's sources and schedule, its progress, and the
/// bell that wakes it when a job is added.
pub struct Exports {
    pub queue: Queue,
    pub sources: Sources,
    /// Seconds before each retry.
    pub retry_secs: Vec<u64>,
    pub progress: Progress,
    pub wake: Notify,
}

/// What one step did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Ran job `id` (done, or failed and scheduled again).
    Ran(i64),
    /// Nothing was due; the next job is due then (milliseconds), if any waits.
    Idle(Option<i64>),
}

impl Exports {
    /// Adds a job after checking that its destination can be chosen.
    pub fn add(&self, what: What, to: Destination, now: i64) -> Result<Job, ExportError> {
        self.sources.check(&to)?;
        let job = self.queue.add(&what, &to, now)?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Runs the job that is due first, if one is due at `clock()`. The clock is read again
    /// when the job ends, for its finish time and its retry.
    pub fn step(&self, clock: &dyn Fn() -> i64) -> Result<Step, ExportError> {
        let job = match self.queue.due(clock())? {
            Ok(job) => job,
            Err(next) => return Ok(Step::Idle(next)),
        };
        let job = self.queue.claim(job.id, clock())?;
        crashpoint::reached("export: claimed");
        let name = file_name(job.id, job.created, &job.what);
        self.progress.start(job.id);
        let result = self.sources.deliver(&job, &name, &self.progress);
        self.progress.end();
        let now = clock();
        match result {
            Ok(bytes) => {
                self.queue.done(job.id, now, &name, bytes)?;
                crashpoint::reached("export: recorded");
                log::info!(
                    "export {}: {name} ({bytes} bytes) to {}",
                    job.id,
                    job.destination
                );
                for old in self.queue.trim()? {
                    self.forget_file(&old);
                }
            }
            Err(e) => {
                if let ExportError::Io { path, source } = &e {
                    log::warn!("export {}: {}: {source}", job.id, path.display());
                }
                let retry_at = self
                    .retry_secs
                    .get(job.attempts as usize - 1)
                    .map(|s| now + *s as i64 * 1000);
                log::warn!(
                    "export {} attempt {}: {e}; {}",
                    job.id,
                    job.attempts,
                    match retry_at {
                        Some(at) => format!("retried in {} s", (at - now) / 1000),
                        None => "it has failed".to_owned(),
                    }
                );
                self.queue.failed(job.id, now, &e.sentence(), retry_at)?;
            }
        }
        Ok(Step::Ran(job.id))
    }

    /// Removes the device's copy of a job's file (and a backup's checksum file), if it
    /// kept one.
    pub fn forget_file(&self, job: &Job) {
        if let (Destination::Device, Some(file)) = (&job.destination, &job.file) {
            let _ = std::fs::remove_file(self.sources.files.join(file));
            let _ = std::fs::remove_file(self.sources.files.join(format!("{file}.sha256")));
        }
    }
}

/// The worker: picks up jobs cut off by the last stop, then runs each job when it is due,
/// until the daemon stops. A stop in the middle of a job is a cut like any other.
pub async fn run(exports: Arc<Exports>) {
    match exports.queue.recover(crate::time::unix_now_ms()) {
        Ok(0) => {}
        Ok(n) => log::warn!("export: {n} export(s) cut off by the last stop run again"),
        Err(e) => log::error!("export: the queue cannot be read: {e}"),
    }
    loop {
        let e = exports.clone();
        let step = tokio::task::spawn_blocking(move || e.step(&crate::time::unix_now_ms)).await;
        let wait = match step {
            Ok(Ok(Step::Ran(_))) => continue,
            Ok(Ok(Step::Idle(next))) => next.map_or(Duration::from_secs(60), |at| {
                Duration::from_millis((at - crate::time::unix_now_ms()).clamp(0, 60_000) as u64)
            }),
            Ok(Err(e)) => {
                log::error!("export: {e}");
                Duration::from_secs(60)
            }
            Err(e) => {
                log::error!("export: the worker stopped: {e}");
                Duration::from_secs(60)
            }
        };
        // At most a minute: the clock may have been set while the worker slept.
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = exports.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::Mutex;

    use super::*;
    use crate::boatlog::{Boatlog, NewEntry};
    use crate::export::{State, Upload, UploadMethod};

    /// One request as the upload server received it.
    #[derive(Debug, Clone)]
    struct Received {
        line: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Received {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// A loopback HTTP server that answers 503 to the first `fail` requests, then 201.
    fn upload_server(fail: usize) -> (SocketAddr, Arc<Mutex<Vec<Received>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap();
                    headers.push((k.trim().to_owned(), v.trim().to_owned()));
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.parse().unwrap())
                    .expect("the upload says its length");
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                let n = {
                    let mut g = seen.lock().unwrap();
                    g.push(Received {
                        line: line.trim().to_owned(),
                        headers,
                        body,
                    });
                    g.len()
                };
                let status = if n <= fail {
                    "503 Service Unavailable"
                } else {
                    "201 Created"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        (addr, got)
    }

    fn exports(dir: &std::path::Path, addr: SocketAddr) -> Exports {
        std::fs::write(dir.join("mountinfo"), "").unwrap();
        Exports {
            queue: Queue::in_dir(&dir.join("exports")),
            sources: Sources {
                boatlog: Boatlog::in_state(&dir.join("state")),
                engine: crate::engine::history::History::at(&dir.join("state/engine.db")),
                backups: crate::backup::Paths {
                    state_dir: dir.join("state"),
                    backup_dir: dir.join("backups"),
                },
                media: crate::backup::media::Roots {
                    mountinfo: dir.join("mountinfo"),
                    sys_dev_block: dir.join("sys"),
                    media: dir.join("media"),
                },
                uploads: vec![Upload {
                    name: "office".into(),
                    url: format!("http://{addr}/drop/"),
                    method: UploadMethod::Put,
                    timeout_secs: 10,
                    authorization: Some("Bearer harbour".into()),
                }],
                files: dir.join("exports/files"),
            },
            retry_secs: vec![5, 300, 900],
            progress: Progress::default(),
            wake: Notify::new(),
        }
    }

    const T0: i64 = 1_780_000_000_000;

    fn with_entries(ex: &Exports) {
        std::fs::create_dir_all(ex.sources.boatlog.path().parent().unwrap()).unwrap();
        for i in 0..3 {
            ex.sources
                .boatlog
                .add(&NewEntry {
                    at: T0 - 1000 + i,
                    text: format!("entry {i}, with \"quotes\""),
                    author: "skipper".into(),
                    ..NewEntry::default()
                })
                .unwrap();
        }
    }

    #[test]
    fn a_failing_upload_is_retried_after_exactly_5_s_5_min_and_15_min() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, got) = upload_server(3);
        let ex = exports(dir.path(), addr);
        with_entries(&ex);
        let clock = Cell::new(T0);
        let now = || clock.get();
        let job = ex
            .add(
                What::BoatlogCsv { from: None, to: T0 },
                Destination::Upload("office".into()),
                T0,
            )
            .unwrap();
        let mut due = T0;
        for (attempt, wait_s) in [(1, 5), (2, 300), (3, 900)] {
            clock.set(due);
            assert_eq!(ex.step(&now).unwrap(), Step::Ran(job.id));
            let j = ex.queue.get(job.id).unwrap();
            assert_eq!((j.state, j.attempts), (State::Pending, attempt));
            assert!(j.error.as_deref().unwrap().contains("503"), "{j:?}");
            assert_eq!(j.next_attempt, Some(due + wait_s * 1000));
            due += wait_s * 1000;
            // A millisecond early, nothing runs.
            clock.set(due - 1);
            assert_eq!(ex.step(&now).unwrap(), Step::Idle(Some(due)));
        }
        clock.set(due);
        assert_eq!(ex.step(&now).unwrap(), Step::Ran(job.id));
        let j = ex.queue.get(job.id).unwrap();
        assert_eq!((j.state, j.attempts, j.error), (State::Done, 4, None));
        assert_eq!(j.finished, Some(due));
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 4);
        let name = j.file.unwrap();
        for r in got.iter() {
            assert_eq!(r.line, format!("PUT /drop/{name} HTTP/1.1"));
            assert_eq!(r.body, got[0].body, "every attempt sends the same file");
            assert_eq!(
                r.header("idempotency-key"),
                got[0].header("idempotency-key")
            );
            assert_eq!(r.header("authorization"), Some("Bearer harbour"));
        }
        assert_eq!(j.bytes, Some(got[0].body.len() as u64));
        assert!(String::from_utf8_lossy(&got[0].body).contains("\"entry 2, with \"\"quotes\"\"\""));
        // Nothing staged is left behind.
        assert_eq!(std::fs::read_dir(&ex.sources.files).unwrap().count(), 0);
    }

    #[test]
    fn after_the_last_retry_a_job_has_failed_with_its_last_error_until_retried() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, got) = upload_server(usize::MAX);
        let mut ex = exports(dir.path(), addr);
        ex.retry_secs = vec![5];
        with_entries(&ex);
        let clock = Cell::new(T0);
        let now = || clock.get();
        let job = ex
            .add(
                What::BoatlogCsv { from: None, to: T0 },
                Destination::Upload("office".into()),
                T0,
            )
            .unwrap();
        ex.step(&now).unwrap();
        clock.set(T0 + 5000);
        ex.step(&now).unwrap();
        let j = ex.queue.get(job.id).unwrap();
        assert_eq!(
            (j.state, j.attempts, j.next_attempt),
            (State::Failed, 2, None)
        );
        assert_eq!(j.finished, Some(T0 + 5000));
        assert!(j.error.unwrap().contains("only a 2xx answer counts"));
        clock.set(T0 + 3_600_000);
        assert_eq!(ex.step(&now).unwrap(), Step::Idle(None));
        let j = ex.queue.retry(job.id, clock.get()).unwrap();
        assert_eq!((j.state, j.attempts), (State::Pending, 0));
        assert_eq!(ex.step(&now).unwrap(), Step::Ran(job.id));
        assert_eq!(got.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_job_cut_off_while_running_runs_again_and_its_file_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, _) = upload_server(0);
        let ex = exports(dir.path(), addr);
        with_entries(&ex);
        let job = ex
            .add(
                What::BoatlogCsv { from: None, to: T0 },
                Destination::Device,
                T0,
            )
            .unwrap();
        // The cut: claimed, a temporary file half written, no record of the end.
        ex.queue.claim(job.id, T0).unwrap();
        let name = file_name(job.id, job.created, &job.what);
        std::fs::create_dir_all(&ex.sources.files).unwrap();
        std::fs::write(ex.sources.files.join(format!(".tmp-{name}")), "id,local").unwrap();
        assert_eq!(ex.step(&|| T0 + 1).unwrap(), Step::Idle(None));
        assert_eq!(ex.queue.recover(T0 + 2).unwrap(), 1);
        assert_eq!(ex.step(&|| T0 + 2).unwrap(), Step::Ran(job.id));
        let j = ex.queue.get(job.id).unwrap();
        assert_eq!((j.state, j.attempts), (State::Done, 2));
        let files: Vec<String> = std::fs::read_dir(&ex.sources.files)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, std::slice::from_ref(&name));
        let text = std::fs::read_to_string(ex.sources.files.join(&name)).unwrap();
        assert_eq!(text.matches("\r\n").count(), 4, "{text}");
    }

    #[test]
    fn a_backup_export_takes_its_checksum_file_and_sha256sum_accepts_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, _) = upload_server(0);
        let ex = exports(dir.path(), addr);
        with_entries(&ex);
        let made = crate::backup::create::create(
            &ex.sources.backups,
            crate::backup::Kind::Manual,
            T0 / 1000,
            &crate::backup::Progress::default(),
        )
        .unwrap();
        let job = ex
            .add(
                What::Backup {
                    id: made.id.as_str().to_owned(),
                },
                Destination::Device,
                T0,
            )
            .unwrap();
        assert_eq!(ex.step(&|| T0).unwrap(), Step::Ran(job.id));
        let j = ex.queue.get(job.id).unwrap();
        assert_eq!(j.state, State::Done, "{j:?}");
        let mut names: Vec<String> = std::fs::read_dir(&ex.sources.files)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let archive = format!("{}.tar.gz", made.id.as_str());
        assert_eq!(names, [archive.clone(), format!("{archive}.sha256")]);
        let check = std::process::Command::new("sha256sum")
            .arg("-c")
            .arg(format!("{archive}.sha256"))
            .current_dir(&ex.sources.files)
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
        ex.forget_file(&j);
        assert_eq!(std::fs::read_dir(&ex.sources.files).unwrap().count(), 0);
    }

    #[test]
    fn a_backup_that_was_deleted_fails_the_job_with_what_happened() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, _) = upload_server(0);
        let mut ex = exports(dir.path(), addr);
        ex.retry_secs = vec![];
        let job = ex
            .add(
                What::Backup {
                    id: "d3kos_backup_20260101_120000".into(),
                },
                Destination::Device,
                T0,
            )
            .unwrap();
        ex.step(&|| T0).unwrap();
        let j = ex.queue.get(job.id).unwrap();
        assert_eq!(j.state, State::Failed);
        assert!(j.error.unwrap().contains("no longer on the device"));
        assert!(
            !ex.sources
                .files
                .join(file_name(j.id, j.created, &j.what))
                .exists()
        );
    }
}
