//! `d3kos-build prepare`: the cached inputs of a build, made ahead of it.

use std::path::PathBuf;
use std::process::ExitCode;

use builder::base::Cache;
use builder::build::{prepare, resolve_board};

/// Bootstrap the Debian base and build the appliance binary for a board, into the cache.
///
/// A later `build` of the same recipe and board then only assembles. Useful to warm a cache
/// while other work runs: a build that starts meanwhile waits for what is being made instead
/// of making it again.
#[derive(clap::Args)]
pub struct Args {
    /// The recipe: its base section and release date key the base.
    #[arg(long, default_value = "recipes/d3kos.toml")]
    recipe: PathBuf,
    /// A board name from boards/ (rpi4, qemu-arm64, qemu-amd64) or a board file's path.
    #[arg(long, default_value = "rpi4")]
    board: String,
    /// Bootstrap the base (and the cross-build tool chroot) again even when cached.
    #[arg(long)]
    refresh_base: bool,
    /// Where bases and the tool chroot are kept [default: $D3KOS_CACHE, else
    /// $XDG_CACHE_HOME/d3kos, else ~/.cache/d3kos].
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let board = resolve_board(&a.board, &a.recipe);
    let cache = a.cache.map_or_else(Cache::from_env, |dir| Cache { dir });
    let prepared = prepare(&a.recipe, &board, &cache, a.refresh_base)?;
    let shown = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    println!("base       {}", shown(&prepared.base).display());
    println!("appliance  {}", shown(&prepared.appliance).display());
    Ok(ExitCode::SUCCESS)
}
