//! The appliance's side of an install: one at a time, its progress for the status page, and
//! the conversation with the root helper ([`super::helper`]) over the update socket: the
//! request line, the bundle's bytes as they arrive from the owner, the helper's answer.

use std::fmt::Display;
use std::path::Path;

use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::job::{Held, Single};
use crate::layout::Slot;

use super::helper::{Request, Said};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "the update helper does not answer at {socket} ({why}): is d3kos-update.socket running?"
    )]
    Unavailable { socket: String, why: String },
    #[error("{message}")]
    Refused { message: String, pending: bool },
    #[error("the install failed: {0}")]
    Failed(String),
    #[error("the upload broke off: {0}")]
    Upload(String),
    #[error("the update helper ended without a result: {0}")]
    Gone(String),
}

/// What is being done now, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// `backup` (the automatic data backup first), then `installing`.
    pub phase: &'static str,
    pub written: u64,
    pub total: u64,
    /// Unix seconds.
    pub started_at: i64,
}

/// The one install, switch or restore the appliance runs at a time.
pub type Installing = Single<Progress>;

/// Holds the install slot; lets it go when dropped.
pub type Guard<'a> = Held<'a, Progress>;

/// The slot's phase and bytes done of the total.
pub fn set(guard: &Guard<'_>, phase: &'static str, written: u64, total: u64) {
    guard.update(|p| {
        *p = Progress {
            phase,
            written,
            total,
            ..p.clone()
        }
    });
}

/// Takes the slot for an update, starting with its backup, or says what holds it.
pub fn start(slot: &Installing) -> Result<Guard<'_>, Progress> {
    slot.start(Progress {
        phase: "backup",
        written: 0,
        total: 0,
        started_at: crate::time::unix_now(),
    })
}

/// What the helper installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Installed {
    pub product: String,
    pub version: String,
    pub slot: Slot,
    pub signer: Option<String>,
}

/// Asks the helper at `socket` to install: from `req.url`, or from `body`, sent on as it
/// arrives. The helper's answer wins over a send that failed because it stopped reading
/// (it refuses a bundle at its first bytes).
pub async fn install<S, B, E>(
    socket: &Path,
    req: &Request,
    body: Option<S>,
    progress: &Guard<'_>,
    phase: &'static str,
) -> Result<Installed, ClientError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Display,
{
    let conn =
        tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| ClientError::Unavailable {
                socket: socket.display().to_string(),
                why: e.to_string(),
            })?;
    let (rd, mut wr) = conn.into_split();
    let send = async move {
        let mut line = serde_json::to_vec(req).expect("serializes");
        line.push(b'\n');
        wr.write_all(&line)
            .await
            .map_err(|e| ClientError::Gone(e.to_string()))?;
        if let Some(mut body) = body {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| ClientError::Upload(e.to_string()))?;
                wr.write_all(chunk.as_ref())
                    .await
                    .map_err(|e| ClientError::Gone(e.to_string()))?;
            }
        }
        wr.shutdown()
            .await
            .map_err(|e| ClientError::Gone(e.to_string()))
    };
    let hear = async {
        let mut lines = BufReader::new(rd).lines();
        loop {
            let line = lines
                .next_line()
                .await
                .map_err(|e| ClientError::Gone(e.to_string()))?
                .ok_or_else(|| ClientError::Gone("the connection closed".into()))?;
            let said: Said = serde_json::from_str(&line)
                .map_err(|e| ClientError::Gone(format!("it said {line:?}: {e}")))?;
            match said {
                Said::Progress { written, total } => set(progress, phase, written, total),
                other => return Ok(other),
            }
        }
    };
    let (sent, heard) = tokio::join!(send, hear);
    let said = match (heard, sent) {
        // The upload broke off: that, not what the helper made of a bundle cut short.
        (_, Err(e @ ClientError::Upload(_))) => return Err(e),
        (Ok(said), _) => said,
        (Err(e), _) => return Err(e),
    };
    match said {
        Said::Done {
            product,
            version,
            slot,
            signer,
        } => Ok(Installed {
            product,
            version,
            slot,
            signer,
        }),
        Said::Refused { message, pending } => Err(ClientError::Refused { message, pending }),
        Said::Failed { message } => Err(ClientError::Failed(message)),
        Said::Progress { .. } => Err(ClientError::Gone("it ended on progress".into())),
    }
}
