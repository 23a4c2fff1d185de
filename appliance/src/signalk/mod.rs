//! Signal K: the vessel's live data in the model and units Signal K apps (KIP,
//! WilhelmSK, Freeboard-SK) read — the current values, the paths NMEA 2000 messages set,
//! and the delta stream's subscriptions.

pub mod from_n2k;
pub mod model;
pub mod stream;

pub use model::Model;

/// The Signal K specification version this server speaks.
pub const VERSION: &str = "1.7.0";

/// Milliseconds since the epoch as Signal K's RFC 3339 UTC timestamp.
pub fn timestamp(at_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(at_ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// This vessel's Signal K id: a UUID made once and kept in the state folder (so a backup
/// carries it and apps keep recognising the boat).
pub fn vessel_uuid(state_dir: &std::path::Path) -> std::io::Result<String> {
    let path = state_dir.join("vessel-uuid");
    match std::fs::read_to_string(&path) {
        Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => return Ok(s.trim().to_owned()),
        Ok(_) => log::warn!("{} is not a UUID: a new one is made", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    let id = uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string();
    let tmp = state_dir.join("vessel-uuid.tmp");
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

/// What ingest hands each decoded message to: its paths set in `model`, with
/// `$source` `<label>.<sender address>` as Signal K servers name NMEA 2000 sources.
pub fn feed(
    model: std::sync::Arc<Model>,
    label: &str,
) -> impl FnMut(&crate::n2k::Message, &crate::n2k::Decoded) + Send + use<> {
    let label = label.to_owned();
    let mut sources: Vec<Option<std::sync::Arc<str>>> = vec![None; 256];
    move |m, d| {
        let values = from_n2k::paths(m.pgn, d);
        if values.is_empty() {
            return;
        }
        let source = sources[usize::from(m.src)]
            .get_or_insert_with(|| format!("{label}.{}", m.src).into())
            .clone();
        model.set(&source, Some(m.pgn), m.at_ms, values);
    }
}
