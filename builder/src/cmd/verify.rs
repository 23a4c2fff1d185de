//! `d3kos-build verify`: is this image what the firmware and the field's tools expect?

use std::path::PathBuf;
use std::process::ExitCode;

use builder::verify::{Options, verify};

/// Check an image: its sidecar checksums, the partition table, that autoboot.txt and each
/// cmdline.txt name partitions that exist (the right slot's system partition, by the build
/// manifest beside the image), that config.txt's kernel, initramfs and the board's firmware
/// files are on each boot partition, and the file systems with fsck.fat and e2fsck.
#[derive(clap::Args)]
pub struct Args {
    /// The raw image (.img).
    image: PathBuf,
    /// Do not fail when the image has no .sha256 file beside it.
    #[arg(long)]
    no_checksums: bool,
    /// Skip the external file system checkers.
    #[arg(long)]
    no_fsck: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let findings = verify(
        &a.image,
        &Options {
            require_checksums: !a.no_checksums,
            fsck: !a.no_fsck,
        },
    )?;
    for c in &findings.checks {
        println!("{}  {}", if c.ok { "ok  " } else { "FAIL" }, c.what);
    }
    let failed = findings.checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        println!(
            "{}: all {} checks passed",
            a.image.display(),
            findings.checks.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{}: {failed} of {} checks failed",
            a.image.display(),
            findings.checks.len()
        );
        Ok(ExitCode::from(1))
    }
}
