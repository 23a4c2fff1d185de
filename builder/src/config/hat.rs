//! HATs: boards on the Raspberry Pi's 40-pin header that a recipe says are fitted, and the
//! device-tree overlay a Raspberry Pi board file ships for each.

use std::path::PathBuf;

/// A HAT the builder knows how to bring up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hat {
    /// Copperhill's PiCAN-M: an MCP2515 CAN controller on SPI0 for the NMEA 2000 port.
    PicanM,
}

impl Hat {
    pub const ALL: [Hat; 1] = [Hat::PicanM];

    /// Its name in a board file's `hat_overlays`.
    pub fn name(self) -> &'static str {
        match self {
            Hat::PicanM => "pican-m",
        }
    }

    /// Its key in a recipe's `[hardware]`.
    pub fn key(self) -> &'static str {
        match self {
            Hat::PicanM => "pican_m",
        }
    }

    /// What a person calls it.
    pub fn title(self) -> &'static str {
        match self {
            Hat::PicanM => "PiCAN-M",
        }
    }

    pub fn from_name(name: &str) -> Option<Hat> {
        Hat::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// A compiled device-tree overlay a board ships for a HAT.
#[derive(Debug, Clone)]
pub struct HatOverlay {
    pub hat: Hat,
    /// What config.txt's `dtoverlay=` names: the file's stem. The file goes onto the boot
    /// partition as `overlays/NAME.dtbo`, where the firmware looks for it.
    pub name: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// A flattened device tree starts with the magic 0xd00dfeed, big-endian (Devicetree
/// Specification 0.4, 5.2 "Header").
pub const FDT_MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];

/// An overlay name the firmware accepts in `dtoverlay=NAME` and finds as `NAME.dtbo` on FAT.
pub fn is_overlay_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
