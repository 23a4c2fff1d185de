//! The root side of an install, a switch back or a factory restore the appliance asks for:
//! one connection on the update socket (d3kos-update.socket, Accept=yes, so each connection
//! is its own `d3kosd update serve`), a request line, for an install the bundle's bytes or a
//! URL, and the progress and result said back as JSON lines. The appliance runs
//! unprivileged; only this side writes partitions.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::layout::Slot;

use super::UpdateError;
use super::device::Device;
use super::install::{self, Options, Source};

/// What a connection asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A bundle into the other slot.
    #[default]
    Install,
    /// Back to the release in the other slot.
    Switch,
    /// The running release copied into the other slot.
    FactoryRestore,
}

/// The first line of a connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default)]
    pub action: Action,
    /// Install a version that is not newer than the running one.
    #[serde(default)]
    pub force: bool,
    /// Download the bundle from here; without it, the bundle's bytes follow the line.
    #[serde(default)]
    pub url: Option<String>,
    /// Restart into the try once installed.
    #[serde(default)]
    pub reboot: bool,
}

/// What the helper says, one JSON line each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Said {
    Progress {
        written: u64,
        total: u64,
    },
    Done {
        product: String,
        version: String,
        slot: Slot,
        /// The key that signed an installed bundle (none for a switch or a copy).
        #[serde(default)]
        signer: Option<String>,
    },
    /// The bundle or the moment was refused; `pending` when a try waits for its verdict.
    Refused {
        message: String,
        pending: bool,
    },
    /// The device failed while installing.
    Failed {
        message: String,
    },
}

/// The longest request line taken.
const REQUEST_MAX: u64 = 64 * 1024;

fn say(out: &mut impl Write, said: &Said) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(said).expect("serializes");
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// Serves one connection: reads the request, installs, says how it went. Returns whether
/// the install succeeded and a restart was asked for.
pub fn serve(input: impl Read + 'static, mut out: impl Write, d: &Device) -> std::io::Result<bool> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let mut line = Vec::new();
    (&mut input)
        .take(REQUEST_MAX)
        .read_until(b'\n', &mut line)?;
    let req: Request = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => {
            say(
                &mut out,
                &Said::Refused {
                    message: format!("the request line is not an update request: {e}"),
                    pending: false,
                },
            )?;
            return Ok(false);
        }
    };
    let o = Options { force: req.force };
    let mut last = None;
    let mut report = |written: u64, total: u64| {
        // A line per percent, at most.
        let step = (written * 100).checked_div(total).unwrap_or(100);
        if last != Some(step) {
            last = Some(step);
            let _ = say(&mut out, &Said::Progress { written, total });
        }
    };
    let product = || {
        d.compatible
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let result = match (req.action, &req.url) {
        (Action::Install, Some(url)) => {
            install::install(d, &Source::Url(url.clone()), o, &mut report).map(done)
        }
        (Action::Install, None) => {
            install::install_stream(d, Box::new(input), o, &mut report).map(done)
        }
        (Action::Switch, _) => super::restore::switch(d).map(|(slot, version)| Said::Done {
            product: product(),
            version,
            slot,
            signer: None,
        }),
        (Action::FactoryRestore, _) => {
            super::restore::factory(d, &mut report).map(|slot| Said::Done {
                product: product(),
                version: d.version.clone(),
                slot,
                signer: None,
            })
        }
    };
    let said = match result {
        Ok(said) => {
            log::info!("update: {:?} done for the appliance: {said:?}", req.action);
            said
        }
        Err(e) if e.is_refusal() => {
            log::warn!("update: refused: {e}");
            Said::Refused {
                pending: matches!(e, UpdateError::TryPending { .. }),
                message: e.to_string(),
            }
        }
        Err(e) => {
            log::error!("update: failed: {e}");
            Said::Failed {
                message: e.to_string(),
            }
        }
    };
    let done = matches!(said, Said::Done { .. });
    say(&mut out, &said)?;
    Ok(done && req.reboot)
}

fn done(c: install::Checked) -> Said {
    Said::Done {
        product: c.manifest.product,
        version: c.manifest.version,
        slot: c.slot,
        signer: Some(c.signer),
    }
}

/// Listens on `socket` and serves one connection after another, until killed: the helper
/// without systemd's socket activation (tests, development).
pub fn listen(socket: &Path, d: &Device) -> std::io::Result<()> {
    let _ = std::fs::remove_file(socket);
    let listener = std::os::unix::net::UnixListener::bind(socket)?;
    for conn in listener.incoming() {
        let conn = conn?;
        let input = conn.try_clone()?;
        if let Err(e) = serve(input, &conn, d) {
            log::warn!("update: the connection ended early: {e}");
        }
    }
    Ok(())
}
