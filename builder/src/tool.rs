//! Running external programs (mke2fs, e2fsck, ...): one typed wrapper per program builds on
//! this. The environment is explicit, the command line is logged, stderr lands in the error.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::process::{ChildStdin, Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("`{program}` is not installed: {hint}")]
    Missing { program: String, hint: &'static str },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}`")]
    Io {
        command: String,
        source: std::io::Error,
    },
}

/// One run of one program.
#[derive(Debug, Clone)]
pub struct Invocation {
    program: &'static str,
    hint: &'static str,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    dir: Option<std::path::PathBuf>,
}

impl Invocation {
    /// `hint` says how to install the program when it is missing.
    pub fn new(program: &'static str, hint: &'static str) -> Self {
        Invocation {
            program,
            hint,
            args: Vec::new(),
            envs: Vec::new(),
            dir: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn command_line(&self) -> String {
        std::iter::once(self.program.to_owned())
            .chain(self.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(self.program);
        // Only what we pass: a maintainer's locale or TZ must not reach the artifacts.
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            )
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd
    }

    fn spawn_error(&self, e: std::io::Error) -> ToolError {
        if e.kind() == std::io::ErrorKind::NotFound {
            ToolError::Missing {
                program: self.program.to_owned(),
                hint: self.hint,
            }
        } else {
            ToolError::Io {
                command: self.command_line(),
                source: e,
            }
        }
    }

    /// Runs to completion with a working directory.
    pub fn current_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Runs a long job (a bootstrap, a compile), showing its output as it comes: each line
    /// is logged with `tag`, and the last lines go into the error when it fails.
    pub fn run_logged(&self, tag: &str) -> Result<(), ToolError> {
        const KEEP: usize = 40;
        log::debug!("running {}", self.command_line());
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let tail = std::sync::Mutex::new(std::collections::VecDeque::with_capacity(KEEP));
        std::thread::scope(|s| {
            for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
                let tail = &tail;
                s.spawn(move || {
                    use std::io::BufRead;
                    for line in std::io::BufReader::new(stream).split(b'\n') {
                        let Ok(line) = line else { break };
                        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
                        log::info!("{tag}: {line}");
                        let mut t = tail.lock().expect("tail lock");
                        if t.len() == KEEP {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                });
            }
        });
        let status = child.wait().map_err(|e| self.spawn_error(e))?;
        if !status.success() {
            let tail = tail.into_inner().expect("tail lock");
            return Err(ToolError::Failed {
                command: self.command_line(),
                status: status.to_string(),
                stderr: Vec::from(tail).join("\n"),
            });
        }
        Ok(())
    }

    /// Runs to completion.
    pub fn output(&self) -> Result<Output, ToolError> {
        self.feed(|_| Ok(()))
    }

    /// Runs with `write` producing its standard input.
    pub fn feed<F>(&self, write: F) -> Result<Output, ToolError>
    where
        F: FnOnce(&mut ChildStdin) -> std::io::Result<()>,
    {
        log::debug!("running {}", self.command_line());
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (written, out, err) = std::thread::scope(|s| {
            let out = s.spawn(move || {
                let mut buf = Vec::new();
                stdout.read_to_end(&mut buf).map(|_| buf)
            });
            let err = s.spawn(move || {
                let mut buf = Vec::new();
                let _ = stderr.read_to_end(&mut buf);
                buf
            });
            let written = write(&mut stdin).and_then(|()| stdin.flush());
            drop(stdin);
            (
                written,
                out.join().expect("stdout reader"),
                err.join().expect("stderr reader"),
            )
        });
        let status = child.wait().map_err(|e| self.spawn_error(e))?;
        let stderr = String::from_utf8_lossy(&err).trim().to_owned();
        if !status.success() {
            return Err(ToolError::Failed {
                command: self.command_line(),
                status: status.to_string(),
                stderr,
            });
        }
        // A program that exits 0 after closing its input early did not take all of it.
        written.map_err(|source| ToolError::Io {
            command: self.command_line(),
            source,
        })?;
        let stdout = out.map_err(|source| ToolError::Io {
            command: self.command_line(),
            source,
        })?;
        Ok(Output { stdout, stderr })
    }
}

/// What a successful run printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}
