//! Licence and tier: the installation id, the tier's features, onboarding reset limits.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::{self, StateError};

/// What each tier unlocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Features {
    pub voice: bool,
    pub camera: bool,
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
        cloud_sync: tier >= 2,
        multi_boat: tier >= 3,
    }
}

/// How many times the setup wizard may be reset: 10 on the Free and Standard tiers, 9,999
/// (all the four-digit counter shows) on Pro and Fleet.
pub fn reset_limit(tier: u8) -> u32 {
    if tier >= 2 { 9999 } else { 10 }
}

/// The owner is warned while this many resets or fewer are left (the counter at 8 and 9 of
/// 10).
const WARN_FROM: u32 = 2;

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

/// The setup wizard's resets on this device: used, allowed, and what to tell the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetAllowance {
    pub used: u32,
    pub limit: u32,
    pub remaining: u32,
    /// Said before a reset while two or one are left; `None` otherwise.
    pub warning: Option<String>,
}

impl ResetAllowance {
    pub fn of(tier: u8, used: u32) -> ResetAllowance {
        let limit = reset_limit(tier);
        let remaining = limit.saturating_sub(used);
        let warning = (1..=WARN_FROM).contains(&remaining).then(|| {
            if remaining == 1 {
                format!(
                    "This is the last reset tier {tier} allows ({used} of {limit} used). After \
                     it, setting the wizard up again takes a Pro or Fleet licence or a freshly \
                     flashed card."
                )
            } else {
                format!("Only {remaining} resets are left on tier {tier} ({used} of {limit} used).")
            }
        });
        ResetAllowance {
            used,
            limit,
            remaining,
            warning,
        }
    }

    /// Why no reset is left, and the owner's ways on.
    pub fn refusal(&self, tier: u8) -> String {
        let higher = if tier < 2 {
            "either apply a Pro or Fleet licence (Settings, Licence: up to 9,999 resets), or "
        } else {
            ""
        };
        format!(
            "All {} resets tier {tier} allows are used: nothing was changed. To set the wizard \
             up again, {higher}flash a fresh d3kOS image to the card (everything on the card \
             starts over; a backup restored onto it brings this count back with it).",
            self.limit
        )
    }
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
        LicenceInfo {
            installation_id: self.installation_id.clone(),
            tier: self.tier,
            tier_name: tier_name(self.tier),
            features: features(self.tier),
            onboarding_resets: ResetAllowance::of(self.tier, self.onboarding_resets_used),
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
        assert_eq!([0, 1, 2, 3].map(reset_limit), [10, 10, 9999, 9999]);
        assert!(!features(0).voice && features(3).multi_boat && !features(2).multi_boat);
    }

    #[test]
    fn warnings_come_before_the_last_two_resets_and_none_is_left_after_the_limit() {
        let warned: Vec<u32> = (0..=10)
            .filter(|&used| ResetAllowance::of(0, used).warning.is_some())
            .collect();
        assert_eq!(warned, [8, 9], "with 2 and 1 left");
        assert!(
            ResetAllowance::of(0, 8)
                .warning
                .unwrap()
                .contains("Only 2 resets")
        );
        assert!(
            ResetAllowance::of(0, 9)
                .warning
                .unwrap()
                .contains("last reset")
        );
        let spent = ResetAllowance::of(0, 10);
        assert_eq!((spent.remaining, &spent.warning), (0, &None));
        assert!(
            spent.refusal(0).contains("All 10 resets") && spent.refusal(0).contains("Pro or Fleet")
        );
        let fleet_spent = ResetAllowance::of(3, 9999).refusal(3);
        assert!(!fleet_spent.contains("Pro or Fleet") && fleet_spent.contains("fresh d3kOS image"));
        let fleet = ResetAllowance::of(3, 9998);
        assert_eq!(fleet.remaining, 1);
        assert!(fleet.warning.unwrap().contains("9998 of 9999"));
        assert_eq!(ResetAllowance::of(3, 9999).remaining, 0);
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
