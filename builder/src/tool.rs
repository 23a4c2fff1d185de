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
}

impl Invocation {
    /// `hint` says how to install the program when it is missing.
    pub fn new(program: &'static str, hint: &'static str) -> Self {
        Invocation {
            program,
            hint,
            args: Vec::new(),
            envs: Vec::new(),
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
