//! The one wrapper around `cargo` for building the appliance, on the host or in the tool
//! chroot.

use std::path::{Path, PathBuf};

use super::{CompileError, io};
use crate::tool::Invocation;

const HINT: &str = "install Rust (rustup or Debian's cargo)";

/// The cargo profile images are built with (workspace Cargo.toml).
pub const PROFILE: &str = "image";

/// The cargo arguments that build the daemon, the same everywhere.
pub fn build_args(target: &str) -> Vec<String> {
    [
        "build",
        "--profile",
        PROFILE,
        "--locked",
        "--package",
        "appliance",
        "--bin",
        "d3kosd",
        "--target",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([target.to_owned()])
    .collect()
}

/// Paths of the build machine must not land in the binary: two checkouts in different
/// folders give the same bytes.
pub fn remap_flags(pairs: &[(&Path, &str)]) -> String {
    pairs
        .iter()
        .map(|(from, to)| format!("--remap-path-prefix={}={to}", from.display()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn rustc_sysroot() -> Option<PathBuf> {
    let out = Invocation::new("rustc", HINT)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    Some(PathBuf::from(out.stdout_text().trim()))
}

/// Whether the host's Rust has the standard library for `target` (and, across
/// architectures, a linker for it).
pub fn host_can_build(target: &str) -> bool {
    let Some(sysroot) = rustc_sysroot() else {
        return false;
    };
    let has_std = sysroot
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir();
    let native = target.starts_with(std::env::consts::ARCH);
    has_std && (native || which(&linker(target)))
}

/// The cross gcc Debian names for a target (`aarch64-linux-gnu-gcc`).
pub fn linker(target: &str) -> String {
    format!(
        "{}-linux-gnu-gcc",
        target.split('-').next().unwrap_or(target)
    )
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// The host's cargo in `workspace`, with the environment rustup and cargo need to find
/// their toolchain and crates (the wrapper passes nothing else through).
pub fn host_cargo(workspace: &Path) -> Invocation {
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    let mut inv = Invocation::new("cargo", HINT)
        .current_dir(workspace)
        .env("HOME", home);
    for key in [
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "CARGO_NET_OFFLINE",
    ] {
        if let Some(v) = std::env::var_os(key) {
            inv = inv.env(key, v);
        }
    }
    inv
}

/// Builds with the host's cargo into `WORKSPACE/target/image`, apart from the developer's
/// own builds so neither invalidates the other.
pub fn host_build(workspace: &Path, target: &str) -> Result<PathBuf, CompileError> {
    let target_dir = workspace.join("target/image");
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(&home).join(".cargo"));
    let mut inv = host_cargo(workspace)
        .args(build_args(target))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_HOME", &cargo_home)
        .env(
            "RUSTFLAGS",
            remap_flags(&[(workspace, "/d3kos"), (&cargo_home, "/cargo")]),
        );
    let upper = target.to_uppercase().replace('-', "_");
    if !target.starts_with(std::env::consts::ARCH) {
        inv = inv
            .env(format!("CARGO_TARGET_{upper}_LINKER"), linker(target))
            .env(format!("CC_{}", target.replace('-', "_")), linker(target));
    }
    inv.run_logged("cargo")
        .map_err(|source| CompileError::Cargo {
            target: target.to_owned(),
            source,
        })?;
    let bin = target_dir.join(target).join(PROFILE).join("d3kosd");
    std::fs::metadata(&bin).map_err(io(&bin))?;
    Ok(bin)
}
