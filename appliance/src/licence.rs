//! Licence and tier: the installation id, the tier's features, onboarding reset limits.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::{self, StateError};

/// What each tier unlocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Features {
    pub voice: bool,
    pub camera: bool,
    pub unlimited_resets: bool,
    pub cloud_sync: bool,
    pub multi_boat: bool,
}

pub fn tier_name(tier: u8) -> &'static str {
    match tier {
        0 => "Free",
        1 => "Standard",
        2 => "Pro",
        _ => "Fleet",
    }
}

pub fn features(tier: u8) -> Features {
    Features {
        voice: tier >= 1,
        camera: tier >= 1,
        unlimited_resets: tier >= 2,
        cloud_sync: tier >= 2,
        multi_boat: tier >= 3,
    }
}

/// How many times the onboarding wizard may be reset; `None` is unlimited.
pub fn reset_limit(tier: u8) -> Option<u32> {
    if features(tier).unlimited_resets {
        None
    } else {
        Some(10)
    }
}

/// The licence file (`licence.json` in the state folder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    /// 16 lowercase hex characters, made once and never changed, not even by a restore.
    pub installation_id: String,
    pub tier: u8,
    #[serde(default)]
    pub onboarding_resets_used: u32,
}

#[derive(Debug, Serialize)]
pub struct ResetAllowance {
    pub used: u32,
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct LicenceInfo {
    pub installation_id: String,
    pub tier: u8,
    pub tier_name: &'static str,
    pub features: Features,
    pub onboarding_resets: ResetAllowance,
}

impl Licence {
    pub fn info(&self) -> LicenceInfo {
        let limit = reset_limit(self.tier);
        LicenceInfo {
            installation_id: self.installation_id.clone(),
            tier: self.tier,
            tier_name: tier_name(self.tier),
            features: features(self.tier),
            onboarding_resets: ResetAllowance {
                used: self.onboarding_resets_used,
                limit,
                remaining: limit.map(|l| l.saturating_sub(self.onboarding_resets_used)),
            },
        }
    }

    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("licence.json")
    }

    /// The tier in the state folder now (a restore may have changed it), or `default`
    /// when there is no readable licence.
    pub fn tier_in(state_dir: &Path, default: u8) -> u8 {
        crate::state::load::<Licence>(&Self::path(state_dir), 0)
            .ok()
            .flatten()
            .map_or(default, |l| l.tier)
    }

    fn valid_id(id: &str) -> bool {
        id.len() == 16
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    }

    /// Loads the licence, creating it on first start. A corrupt file is moved aside and
    /// reported in the returned problem; its installation id is recovered from it when one is
    /// readable, so the device keeps its identity.
    pub fn load_or_create(
        state_dir: &Path,
        default_tier: u8,
        now: u64,
    ) -> Result<(Licence, Option<String>), StateError> {
        let path = Self::path(state_dir);
        let (recovered, problem) = match state::load::<Licence>(&path, now) {
            Ok(Some(l)) if Self::valid_id(&l.installation_id) && l.tier <= 3 => {
                return Ok((l, None));
            }
            Ok(Some(l)) => {
                let moved = path.with_extension(format!("json.invalid-{now}"));
                std::fs::rename(&path, &moved).map_err(|source| StateError::Io {
                    path: path.clone(),
                    source,
                })?;
                (
                    Self::valid_id(&l.installation_id).then_some(l.installation_id),
                    Some(format!(
                        "{} held an invalid licence; it was moved aside to {}",
                        path.display(),
                        moved.display()
                    )),
                )
            }
            Ok(None) => (None, None),
            Err(StateError::Corrupt {
                moved_to, reason, ..
            }) => {
                let text = std::fs::read_to_string(&moved_to).unwrap_or_default();
                let id = text
                    .split(|c: char| !c.is_ascii_hexdigit())
                    .find(|w| Self::valid_id(w))
                    .map(str::to_owned);
                (
                    id,
                    Some(format!(
                        "{} could not be read ({reason}); it was moved aside to {}",
                        path.display(),
                        moved_to.display()
                    )),
                )
            }
            Err(e) => return Err(e),
        };
        let licence = Licence {
            installation_id: match recovered {
                Some(id) => id,
                None => new_installation_id().map_err(|source| StateError::Io {
                    path: path.clone(),
                    source,
                })?,
            },
            tier: default_tier,
            onboarding_resets_used: 0,
        };
        state::save(&path, &licence)?;
        Ok((licence, problem))
    }
}

pub fn new_installation_id() -> std::io::Result<String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b)?;
    Ok(hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_unlock_features_and_resets() {
        assert_eq!(reset_limit(0), Some(10));
        assert_eq!(reset_limit(2), None);
        assert_eq!(reset_limit(3), None);
        assert!(!features(0).voice && features(3).multi_boat && !features(2).multi_boat);
    }

    #[test]
    fn id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, p) = Licence::load_or_create(dir.path(), 0, 1).unwrap();
        assert!(p.is_none() && Licence::valid_id(&a.installation_id));
        let (b, _) = Licence::load_or_create(dir.path(), 3, 2).unwrap();
        assert_eq!(a, b, "a second start keeps id and tier");
    }

    #[test]
    fn corrupt_licence_keeps_a_readable_id_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = Licence::path(dir.path());
        std::fs::write(
            &path,
            "{\"installation_id\": \"00112233aabbccdd\", \"tier\": 1, garbage",
        )
        .unwrap();
        let (l, problem) = Licence::load_or_create(dir.path(), 0, 7).unwrap();
        assert_eq!(l.installation_id, "00112233aabbccdd");
        assert!(problem.unwrap().contains("moved aside"));
        assert!(dir.path().join("licence.json.corrupt-7").exists());
    }
}
