//! `d3kos-build build`: recipe + board + root file system → release artifacts.

use std::path::PathBuf;
use std::process::ExitCode;

use builder::build::{Options, resolve_board, run as build};

/// Build a disk image and its release artifacts.
///
/// Writes NAME-VERSION-BOARD.img, .img.xz, .img.gz, their .sha256 files, a .bmap,
/// os_list.json for Raspberry Pi Imager, build-manifest.json and README.txt into the output
/// folder. Nothing appears there unless the whole build succeeds. The same inputs give
/// bit-identical artifacts.
#[derive(clap::Args)]
pub struct Args {
    /// The recipe: product, version, release date, base, overlay, outputs.
    #[arg(long, default_value = "recipes/d3kos.toml")]
    recipe: PathBuf,
    /// A board name from boards/ (rpi4, qemu-arm64, qemu-amd64) or a board file's path.
    #[arg(long, default_value = "rpi4")]
    board: String,
    /// Root file system to build from: a directory or a tarball (.tar, .tar.gz, .tar.xz).
    /// Overrides the recipe's [base] rootfs.
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Compression threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let opts = Options {
        board: resolve_board(&a.board, &a.recipe),
        recipe: a.recipe,
        rootfs: a.rootfs,
        out: a.out,
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
    };
    let mut progress = super::Progress::new("image");
    let report = build(&opts, |d, t| progress.update(d, t))?;
    progress.finish();
    for f in &report.files {
        let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        println!("{:>12}  {}", size, f.display());
    }
    println!("image sha256 {}", report.image_sha256);
    Ok(ExitCode::SUCCESS)
}
