//! The keys a system trusts to sign its updates: minisign public keys, baked into the image
//! by the recipe.

use std::path::Path;

use minisign_verify::{PublicKey, Signature};

use super::BundleError;

/// A minisign key id, shown as minisign shows it (16 upper-case hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId(pub [u8; 8]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // minisign prints the little-endian u64.
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}

/// The trusted public keys.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    keys: Vec<(KeyId, PublicKey)>,
}

/// minisign's public key, decoded: `Ed`, the key id, the 32-byte key.
fn key_id_of(base64: &str) -> Option<KeyId> {
    let bytes = decode_base64(base64.trim())?;
    (bytes.len() == 42 && &bytes[..2] == b"Ed").then(|| {
        let mut id = [0; 8];
        id.copy_from_slice(&bytes[2..10]);
        KeyId(id)
    })
}

/// The signature's key id: its second line is base64 of the algorithm, the id, the signature.
fn signature_key_id(text: &str) -> Option<KeyId> {
    let line = text.lines().nth(1)?;
    let bytes = decode_base64(line.trim())?;
    (bytes.len() == 74).then(|| {
        let mut id = [0; 8];
        id.copy_from_slice(&bytes[2..10]);
        KeyId(id)
    })
}

/// Standard base64 as minisign writes it (padding optional); `None` for any other byte.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

impl Keys {
    /// Adds a key from minisign's public key file text (a comment line and the key) or the
    /// bare base64 line.
    pub fn add_text(&mut self, text: &str, origin: &Path) -> Result<KeyId, BundleError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or_default();
        let bad = |why: &str| BundleError::Key {
            path: origin.to_owned(),
            why: why.to_owned(),
        };
        let key = PublicKey::from_base64(line)
            .map_err(|e| bad(&format!("not a minisign public key ({e})")))?;
        let id = key_id_of(line).ok_or_else(|| bad("not an Ed25519 minisign public key"))?;
        if !self.keys.iter().any(|(k, _)| *k == id) {
            self.keys.push((id, key));
        }
        Ok(id)
    }

    /// Every `*.pub` file in `dir`, in name order.
    pub fn from_dir(dir: &Path) -> Result<Keys, BundleError> {
        let mut keys = Keys::default();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| BundleError::NoKeys(format!("{} cannot be read: {e}", dir.display())))?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|e| BundleError::Key {
                path: p.clone(),
                why: e.to_string(),
            })?;
            keys.add_text(&text, &p)?;
        }
        if keys.keys.is_empty() {
            return Err(BundleError::NoKeys(format!(
                "{} holds no *.pub key",
                dir.display()
            )));
        }
        Ok(keys)
    }

    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|(id, _)| *id)
    }

    /// Checks `signature` (minisign's signature file text) over `data`; the key that signed.
    pub fn verify(&self, data: &[u8], signature: &str) -> Result<KeyId, BundleError> {
        if self.keys.is_empty() {
            return Err(BundleError::NoKeys("the list is empty".into()));
        }
        let sig = Signature::decode(signature)
            .map_err(|e| BundleError::SignatureUnreadable(e.to_string()))?;
        let id = signature_key_id(signature)
            .ok_or_else(|| BundleError::SignatureUnreadable("no key id".into()))?;
        let Some((_, key)) = self.keys.iter().find(|(k, _)| *k == id) else {
            return Err(BundleError::UntrustedKey {
                found: id,
                trusted: self
                    .ids()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        // Only prehashed (`ED`) signatures, as minisign has made by default since 0.8: the
        // legacy form signs the data itself and is refused.
        key.verify(data, &sig, false)
            .map_err(|_| BundleError::BadSignature { key: id })?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_as_minisign_writes_it() {
        assert_eq!(decode_base64("RWQ=").unwrap(), b"Ed");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert!(decode_base64("a*b").is_none());
    }

    #[test]
    fn no_keys_trusts_nothing() {
        let err = Keys::default().verify(b"x", "").unwrap_err().to_string();
        assert!(err.contains("no trusted update key"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = Keys::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("holds no *.pub key"), "{err}");
        std::fs::write(
            dir.path().join("x.pub"),
            "untrusted comment: x\nnot a key\n",
        )
        .unwrap();
        let err = Keys::from_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("x.pub") && err.contains("not a minisign public key"),
            "{err}"
        );
    }
}
