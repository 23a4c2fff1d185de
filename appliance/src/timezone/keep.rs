//! The time zone decision kept in the state folder (`timezone.json`): on the data
//! partition, so it holds across restarts and A/B slot switches, and backups carry it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::decide::Decision;
use crate::state::StateError;

pub const FILE_NAME: &str = "timezone.json";

/// The owner's choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub zone: String,
    /// Milliseconds since 1970 UTC.
    pub set_at_ms: i64,
}

/// What is kept: the automatic decision and the owner's override, each when there is one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kept {
    pub automatic: Option<Decision>,
    #[serde(rename = "override")]
    pub manual: Option<Override>,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// The kept decision; nothing kept when there is no file. A file that cannot be read is
/// moved aside and the error says so (the caller reports it and starts afresh).
pub fn load(state_dir: &Path, now_s: u64) -> Result<Kept, StateError> {
    Ok(crate::state::load(&path(state_dir), now_s)?.unwrap_or_default())
}

/// Writes `kept` atomically.
pub fn save(state_dir: &Path, kept: &Kept) -> Result<(), StateError> {
    crate::state::save(&path(state_dir), kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timezone::decide::Source;
    use crate::timezone::locate::Position;

    #[test]
    fn a_decision_and_an_override_round_trip_and_a_damaged_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), 1).unwrap(), Kept::default());
        let kept = Kept {
            automatic: Some(Decision {
                zone: "Europe/Berlin".into(),
                source: Source::Gps,
                decided_at_ms: 1_780_000_000_000,
                position: Some(Position {
                    latitude: 54.32,
                    longitude: 10.14,
                }),
            }),
            manual: Some(Override {
                zone: "Pacific/Auckland".into(),
                set_at_ms: 1_780_000_100_000,
            }),
        };
        save(dir.path(), &kept).unwrap();
        assert_eq!(load(dir.path(), 1).unwrap(), kept);
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(
            text.contains(r#""override": {"#) && text.contains(r#""source": "gps""#),
            "{text}"
        );
        std::fs::write(path(dir.path()), "{\"automatic\": 7}").unwrap();
        assert!(matches!(
            load(dir.path(), 42),
            Err(StateError::Corrupt { .. })
        ));
        assert!(dir.path().join("timezone.json.corrupt-42").exists());
        assert_eq!(load(dir.path(), 43).unwrap(), Kept::default());
    }
}
