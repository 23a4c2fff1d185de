//! `build-manifest.json`: what went into an image and how it is laid out. The device reads
//! the same document from /etc/d3kos/build-manifest.json.

use serde::Serialize;

use crate::assemble::Placed;
use crate::rootfs::packages::Package;

#[derive(Debug, Serialize)]
pub struct Manifest<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// SOURCE_DATE_EPOCH as RFC 3339: the build is dated by its inputs, not its clock.
    pub build_date: String,
    pub source_date_epoch: i64,
    pub builder_version: &'a str,
    pub board: &'a str,
    pub arch: &'a str,
    pub kernel: &'a str,
    pub recipe_sha256: &'a str,
    pub inputs: Inputs<'a>,
    pub image: ImageInfo<'a>,
    pub boot: BootInfo<'a>,
    pub partition_table: TableInfo<'a>,
    pub packages: &'a [Package],
}

#[derive(Debug, Serialize)]
pub struct Inputs<'a> {
    pub recipe: &'a str,
    pub board: &'a str,
    /// sha256 of the deterministic tar stream the system partition was made from.
    pub rootfs_stream: Option<&'a str>,
    pub overlays: Vec<String>,
    pub mke2fs: &'a str,
    /// The Debian base tarball (its file name in the cache, or as given by --base).
    pub base: Option<FileInfo>,
    /// The appliance binary installed as /usr/bin/d3kosd.
    pub appliance: Option<FileInfo>,
}

#[derive(Debug, Serialize)]
pub struct FileInfo {
    pub file: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct ImageInfo<'a> {
    pub file: &'a str,
    pub size: u64,
    pub sha256: &'a str,
}

#[derive(Debug, Serialize)]
pub struct BootInfo<'a> {
    pub kind: crate::config::board::BootKind,
    pub firmware_files: &'a [String],
    /// The device-tree overlays of the fitted HATs, in the boot partitions' `overlays/` and
    /// named by config.txt's `dtoverlay=` lines.
    pub dtoverlays: Vec<DtOverlayInfo<'a>>,
}

#[derive(Debug, Serialize)]
pub struct DtOverlayInfo<'a> {
    pub name: &'a str,
    pub hat: &'a str,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct TableInfo<'a> {
    pub kind: appliance::layout::TableKind,
    pub disk_id: &'a str,
    pub partitions: &'a [Placed],
}

pub fn render(m: &Manifest) -> String {
    let mut s = serde_json::to_string_pretty(m).expect("manifest serializes");
    s.push('\n');
    s
}
