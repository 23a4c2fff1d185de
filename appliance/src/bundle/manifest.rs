//! The signed manifest: what a bundle holds, for which system, and the hashes every byte of
//! it is checked against.

use serde::{Deserialize, Serialize};

use super::{BundleError, FORMAT};
use crate::layout::{Role, Slot};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub product: String,
    pub version: String,
    pub board: String,
    /// What the installing system must be: the product and board (`d3kOS/rpi4`). A bundle is
    /// only ever installed on a system that says the same.
    pub compatible: String,
    /// The build's SOURCE_DATE_EPOCH.
    pub created: i64,
    pub block_size: u32,
    pub payload: Payload,
    /// In payload order.
    pub images: Vec<Image>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    pub compression: String,
    /// Compressed bytes after the signature.
    pub size: u64,
    pub sha256: String,
}

/// One partition's content: a boot partition for one slot, or the system for either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub name: String,
    pub role: Role,
    /// The slot a boot image is for (its cmdline.txt names that slot's system); none for the
    /// system image, which runs from either.
    pub slot: Option<Slot>,
    pub size: u64,
    pub sha256: String,
    /// The SHA-256 of each `block_size` block; the last may be short.
    pub blocks: Vec<String>,
}

/// Everything a system may hold of one bundle: 64 GiB.
const IMAGES_MAX: u64 = 64 << 30;

fn bad(why: impl Into<String>) -> BundleError {
    BundleError::Manifest(why.into())
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Manifest {
    /// Reads and checks a manifest: every field present and consistent with the others.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, BundleError> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        m.check()?;
        Ok(m)
    }

    pub fn check(&self) -> Result<(), BundleError> {
        if self.format != FORMAT {
            return Err(BundleError::Format { found: self.format });
        }
        for (what, v) in [
            ("product", &self.product),
            ("board", &self.board),
            ("compatible", &self.compatible),
        ] {
            if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) {
                return Err(bad(format!(
                    "{what} {v:?} is empty, too long or has control characters"
                )));
            }
        }
        Version::parse(&self.version)?;
        let bs = self.block_size;
        if !bs.is_power_of_two() || !(4096..=16 << 20).contains(&bs) {
            return Err(bad(format!(
                "block size {bs} is not a power of two from 4096 to 16777216"
            )));
        }
        if self.payload.compression != "zstd" {
            return Err(bad(format!(
                "payload compression {:?}: only zstd is read",
                self.payload.compression
            )));
        }
        if !is_sha256(&self.payload.sha256) {
            return Err(bad("the payload's sha256 is not 64 lower-case hex digits"));
        }
        if self.images.is_empty() {
            return Err(bad("no images"));
        }
        let mut total = 0u64;
        for (i, im) in self.images.iter().enumerate() {
            if im.name.is_empty()
                || im.name.len() > 64
                || !im
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(bad(format!("image {i} has the name {:?}", im.name)));
            }
            if self.images[..i].iter().any(|o| o.name == im.name) {
                return Err(bad(format!("two images are named {}", im.name)));
            }
            match (im.role, im.slot) {
                (Role::Boot, Some(_)) | (Role::System, None) => {}
                (role, slot) => {
                    return Err(bad(format!(
                        "image {} is {role:?} for slot {slot:?}: boot images name their slot, the system image none",
                        im.name
                    )));
                }
            }
            if self.images[..i]
                .iter()
                .any(|o| o.role == im.role && o.slot == im.slot)
            {
                return Err(bad(format!(
                    "two {:?} images for slot {:?}",
                    im.role, im.slot
                )));
            }
            total = total.saturating_add(im.size);
            if im.size == 0 || total > IMAGES_MAX {
                return Err(bad(format!(
                    "image {} is {} bytes: images are from 1 byte to {IMAGES_MAX} in all",
                    im.name, im.size
                )));
            }
            let want = im.size.div_ceil(u64::from(bs));
            if im.blocks.len() as u64 != want {
                return Err(bad(format!(
                    "image {} has {} block hashes; {} bytes in blocks of {bs} need {want}",
                    im.name,
                    im.blocks.len(),
                    im.size
                )));
            }
            if !is_sha256(&im.sha256) || !im.blocks.iter().all(|b| is_sha256(b)) {
                return Err(bad(format!(
                    "image {} has a hash that is not 64 lower-case hex digits",
                    im.name
                )));
            }
        }
        if !self.images.iter().any(|im| im.role == Role::System) {
            return Err(bad("no system image"));
        }
        Ok(())
    }

    /// The images an install into `slot` writes: the system and that slot's boot image.
    pub fn for_slot(&self, slot: Slot) -> impl Iterator<Item = &Image> {
        self.images
            .iter()
            .filter(move |im| im.slot.is_none() || im.slot == Some(slot))
    }

    pub fn image(&self, role: Role, slot: Option<Slot>) -> Option<&Image> {
        self.images
            .iter()
            .find(|im| im.role == role && im.slot == slot)
    }

    /// What the manifest unpacks to.
    pub fn unpacked_size(&self) -> u64 {
        self.images.iter().map(|im| im.size).sum()
    }
}

/// A release version: dot-separated numbers, optionally followed by `-` and a pre-release
/// name that sorts before the release itself (`0.9.1.2-rc1` < `0.9.1.2` < `0.10`).
#[derive(Debug, Clone)]
pub struct Version {
    numbers: Vec<u64>,
    pre: Option<String>,
}

impl Version {
    pub fn parse(text: &str) -> Result<Version, BundleError> {
        let (main, pre) = match text.split_once('-') {
            Some((m, p)) => (m, Some(p)),
            None => (text, None),
        };
        let numbers: Option<Vec<u64>> = main
            .split('.')
            .map(|n| {
                (!n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| n.parse().ok())
                    .flatten()
            })
            .collect();
        let pre_ok = pre.is_none_or(|p| {
            !p.is_empty()
                && p.len() <= 32
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        });
        match numbers {
            Some(numbers) if pre_ok && numbers.len() <= 8 => Ok(Version {
                numbers,
                pre: pre.map(str::to_owned),
            }),
            _ => Err(bad(format!(
                "version {text:?} is not numbers separated by dots (0.9.1.2), with an optional -NAME"
            ))),
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let n = self.numbers.len().max(other.numbers.len());
        let at = |v: &Version, i: usize| v.numbers.get(i).copied().unwrap_or(0);
        (0..n)
            .map(|i| at(self, i).cmp(&at(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| match (&self.pre, &other.pre) {
                (None, None) => std::cmp::Ordering::Equal,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        let h = "ab".repeat(32);
        Manifest {
            format: FORMAT,
            product: "d3kOS".into(),
            version: "0.9.1.2".into(),
            board: "rpi4".into(),
            compatible: "d3kOS/rpi4".into(),
            created: 1_764_374_400,
            block_size: 4096,
            payload: Payload {
                compression: "zstd".into(),
                size: 10,
                sha256: h.clone(),
            },
            images: vec![
                Image {
                    name: "boot-a".into(),
                    role: Role::Boot,
                    slot: Some(Slot::A),
                    size: 4097,
                    sha256: h.clone(),
                    blocks: vec![h.clone(), h.clone()],
                },
                Image {
                    name: "system".into(),
                    role: Role::System,
                    slot: None,
                    size: 4096,
                    sha256: h.clone(),
                    blocks: vec![h.clone()],
                },
            ],
        }
    }

    #[test]
    fn a_sound_manifest_reads_back() {
        let m = sample();
        let text = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&text).unwrap(), m);
        assert_eq!(
            m.for_slot(Slot::A).map(|i| &i.name[..]).collect::<Vec<_>>(),
            ["boot-a", "system"]
        );
        assert_eq!(m.for_slot(Slot::B).count(), 1);
    }

    #[test]
    fn each_inconsistency_is_named() {
        type Change = fn(&mut Manifest);
        let cases: Vec<(Change, &str)> = vec![
            (|m| m.format = 2, "format 2"),
            (|m| m.version = "1.x".into(), "version \"1.x\""),
            (|m| m.block_size = 5000, "block size 5000"),
            (|m| m.payload.compression = "xz".into(), "only zstd"),
            (
                |m| m.images[0].blocks.pop().map(drop).unwrap(),
                "has 1 block hashes",
            ),
            (
                |m| m.images[1].slot = Some(Slot::B),
                "boot images name their slot",
            ),
            (
                |m| m.images[1].name = "boot-a".into(),
                "two images are named",
            ),
            (|m| m.images[0].sha256 = "AB".repeat(32), "lower-case hex"),
            (|m| m.images.truncate(1), "no system image"),
            (|m| m.images[0].name = "../x".into(), "has the name"),
            (|m| m.board = "rpi4\n".into(), "control characters"),
            (|m| m.images[0].size = 0, "from 1 byte"),
        ];
        for (change, says) in cases {
            let mut m = sample();
            change(&mut m);
            let err = Manifest::parse(&serde_json::to_vec(&m).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{says}: {err}");
        }
        let err = Manifest::parse(b"{\"format\":1}").unwrap_err().to_string();
        assert!(err.contains("missing field"), "{err}");
    }

    #[test]
    fn versions_order_as_releases_do() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("0.9.1.2") > v("0.9.1"));
        assert!(v("0.10") > v("0.9.1.2"));
        assert!(v("0.9.1.2-rc1") < v("0.9.1.2"));
        assert!(v("1.0-rc2") > v("1.0-rc1"));
        assert_eq!(v("1.0"), v("1.0"));
        assert_eq!(v("1.0").cmp(&v("1.0.0")), std::cmp::Ordering::Equal);
        for wrong in ["", "1..2", "v1", "1.-", "1.0-", "1.0-a b", "99999999999"] {
            assert!(Version::parse(wrong).is_err(), "{wrong:?}");
        }
    }
}
