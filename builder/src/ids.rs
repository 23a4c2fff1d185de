//! Every identifier that lands in an image, derived from the recipe's seed: never random.
//!
//! The same inputs give the same disk GUID, partition GUIDs, MBR signature, FAT volume ids
//! and ext4 UUIDs and hash seeds, so two builds of the same inputs are bit-identical.
//!
//! Two kinds of id, because a card outlives the release it was flashed with: what the card
//! keeps across updates (its table, every partition's id, the file systems first boot makes)
//! derives from the seed and the board only ([`Ids::card`]), so an update's system finds the
//! partitions a card was first flashed with by the PARTUUIDs it was built with; what a
//! release writes (its boot and system file systems) derives from the version too
//! ([`Ids::new`]), so two releases in the two slots never share a file system UUID.

use sha2::{Digest, Sha256};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Ids {
    root: [u8; 32],
}

impl Ids {
    /// The ids of one release's file systems.
    pub fn new(seed: &str, board: &str, version: &str) -> Self {
        Self::of(&["d3kos-ids-v1", seed, board, version])
    }

    /// The ids a card keeps whatever release runs on it.
    pub fn card(seed: &str, board: &str) -> Self {
        Self::of(&["d3kos-card-ids-v1", seed, board])
    }

    fn of(parts: &[&str]) -> Self {
        let mut h = Sha256::new();
        for part in parts {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        Ids {
            root: h.finalize().into(),
        }
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.root);
        h.update(purpose.as_bytes());
        h.finalize().into()
    }

    /// A version-4-shaped UUID from the hash (RFC 9562 section 5.4 bit layout), as
    /// systemd-repart derives its ids.
    pub fn uuid(&self, purpose: &str) -> Uuid {
        let mut b = [0u8; 16];
        b.copy_from_slice(&self.derive(purpose)[..16]);
        uuid::Builder::from_random_bytes(b).into_uuid()
    }

    pub fn disk_guid(&self) -> Uuid {
        self.uuid("disk-guid")
    }

    pub fn partition_guid(&self, name: &str) -> Uuid {
        self.uuid(&format!("partition-guid/{name}"))
    }

    pub fn fs_uuid(&self, name: &str) -> Uuid {
        self.uuid(&format!("fs-uuid/{name}"))
    }

    pub fn ext4_hash_seed(&self, name: &str) -> Uuid {
        self.uuid(&format!("ext4-hash-seed/{name}"))
    }

    /// The 32-bit MBR disk signature; PARTUUIDs on MBR are `SIGNATURE-NN`. Zero is avoided:
    /// Linux and Windows treat it as "no signature".
    pub fn mbr_signature(&self) -> u32 {
        let d = self.derive("mbr-signature");
        let v = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        if v == 0 { 0x6433_6b6f } else { v }
    }

    pub fn fat_volume_id(&self, name: &str) -> u32 {
        let d = self.derive(&format!("fat-volume-id/{name}"));
        u32::from_le_bytes([d[0], d[1], d[2], d[3]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = Ids::new("d3kos", "rpi4", "1.0.0");
        let again = Ids::new("d3kos", "rpi4", "1.0.0");
        let other = Ids::new("d3kos", "rpi4", "1.0.1");
        assert_eq!(a.disk_guid(), again.disk_guid());
        assert_ne!(a.fs_uuid("system-a"), other.fs_uuid("system-a"));
        let card = Ids::card("d3kos", "rpi4");
        assert_ne!(card.disk_guid(), a.disk_guid());
        assert_ne!(card.disk_guid(), Ids::card("d3kos", "rpi5").disk_guid());
        assert_ne!(a.partition_guid("boot-a"), a.partition_guid("boot-b"));
        assert_eq!(a.disk_guid().get_version_num(), 4);
        assert_ne!(a.mbr_signature(), 0);
    }

    #[test]
    fn length_prefix_keeps_fields_apart() {
        assert_ne!(
            Ids::new("ab", "c", "1").disk_guid(),
            Ids::new("a", "bc", "1").disk_guid()
        );
    }
}
