//! `d3kos-build build`: recipe + board + root file system → release artifacts.

use std::path::PathBuf;
use std::process::ExitCode;

use builder::base::Cache;
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
    /// A finished root file system (directory or .tar, .tar.gz, .tar.xz), laid in as it is
    /// with the overlay: no bootstrap, no customisation, no appliance.
    #[arg(long, conflicts_with_all = ["base", "appliance_bin", "refresh_base"])]
    rootfs: Option<PathBuf>,
    /// A Debian base tarball to build on instead of bootstrapping one (with the same base,
    /// two builds are bit-identical).
    #[arg(long, value_name = "FILE.tar")]
    base: Option<PathBuf>,
    /// Bootstrap the base (and the cross-build tool chroot) again even when cached.
    #[arg(long, conflicts_with = "base")]
    refresh_base: bool,
    /// The appliance binary to install, instead of building it for the board.
    #[arg(long, value_name = "FILE")]
    appliance_bin: Option<PathBuf>,
    /// Where bases and the tool chroot are kept [default: $D3KOS_CACHE, else
    /// $XDG_CACHE_HOME/d3kos, else ~/.cache/d3kos].
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Artifacts to write, overriding the recipe's [outputs] formats: a comma-separated list
    /// of img, xz, gz, bmap.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    formats: Option<Vec<String>>,
    /// Output folder.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Compression threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// The release's version, instead of the recipe's [product] version.
    #[arg(long, value_name = "VERSION")]
    release: Option<String>,
    /// Where the release's files are published, instead of the recipe's imager.url_base
    /// (`{version}` in it stands for the version); os_list.json points Imager there.
    #[arg(long, value_name = "URL")]
    url_base: Option<String>,
    /// Another overlay folder, laid in after the recipe's (repeatable).
    #[arg(long, value_name = "DIR")]
    overlay: Vec<PathBuf>,
    /// A minisign public key the image trusts for its updates, besides the recipe's
    /// [update] keys (repeatable).
    #[arg(long, value_name = "FILE.pub")]
    trust: Vec<PathBuf>,
    /// With --key, also the signed update bundle (NAME-VERSION-BOARD.d3kb).
    #[command(flatten)]
    sign: super::bundle::SignArgs,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let opts = Options {
        board: resolve_board(&a.board, &a.recipe),
        recipe: a.recipe,
        trust: a.trust,
        release: a.release,
        url_base: a.url_base,
        bundle: a.sign.key.is_some(),
        overlays: a.overlay,
        rootfs: a.rootfs,
        base: a.base,
        refresh_base: a.refresh_base,
        appliance_bin: a.appliance_bin,
        cache: a.cache.map_or_else(Cache::from_env, |dir| Cache { dir }),
        formats: a.formats,
        out: a.out,
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
    };
    // The key is read before the long build, so a wrong one is said at once.
    if let Some(key) = &a.sign.key {
        builder::pack::load_key(key, std::env::var("D3KOS_KEY_PASSWORD").ok())?;
    }
    let mut progress = super::Progress::new("image");
    let report = build(&opts, |d, t| progress.update(d, t))?;
    progress.finish();
    let mut files = report.files.clone();
    if a.sign.key.is_some() {
        let image = report
            .files
            .iter()
            .find(|f| f.extension().is_some_and(|x| x == "img"))
            .ok_or_else(|| {
                anyhow::anyhow!("a bundle is made from the .img: add img to --formats")
            })?;
        let bundle = super::bundle::pack(
            &a.sign,
            image,
            &opts.out.join("build-manifest.json"),
            &opts.out,
            opts.threads,
        )?;
        files.push(bundle);
    }
    for f in &files {
        let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        println!("{:>12}  {}", size, f.display());
    }
    println!("image sha256 {}", report.image_sha256);
    Ok(ExitCode::SUCCESS)
}
