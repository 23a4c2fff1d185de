//! Release artifacts: the image and its compressed forms, checksums, bmap, Imager manifest,
//! build manifest and README, all made from one read of the image.

pub mod bmap;
pub mod gz;
pub mod imager;
pub mod manifest;
pub mod pass;
pub mod readme;

use std::path::{Path, PathBuf};

/// A file written under a temporary name in the output folder and renamed into place only
/// when everything succeeded, so a failed build leaves nothing half-written.
pub struct Staged {
    pub tmp: PathBuf,
    pub dest: PathBuf,
}

impl Staged {
    pub fn new(out: &Path, name: &str) -> Self {
        Staged {
            tmp: out.join(format!(".{name}.partial")),
            dest: out.join(name),
        }
    }
}

/// Renames every staged file into place (fsyncing each and then the folder), or removes
/// them all when `ok` is false.
pub fn commit(out: &Path, staged: &[Staged]) -> std::io::Result<()> {
    for s in staged {
        std::fs::File::open(&s.tmp)?.sync_all()?;
    }
    for s in staged {
        std::fs::rename(&s.tmp, &s.dest)?;
    }
    std::fs::File::open(out)?.sync_all()
}

pub fn discard(staged: &[Staged]) {
    for s in staged {
        let _ = std::fs::remove_file(&s.tmp);
    }
}

/// `sha256sum` format: the digest, two spaces, the file name (relative, so `sha256sum -c`
/// works in the folder the files are in).
pub fn sha256_line(digest: &str, name: &str) -> String {
    format!("{digest}  {name}\n")
}
