//! Cross-building in a Debian tool chroot: trixie amd64 with rustc and cargo from
//! trixie-backports, the target's standard library and a cross gcc. `rustup target add` needs
//! a download this machine may not have; Debian's archive is always there.
//!
//! The chroot is made once by mmdebstrap and cached; the crates are vendored on the host
//! (the chroot does not trust the host's TLS set-up) and the build runs `--offline`.

use std::path::{Path, PathBuf};

use super::cargo::{build_args, host_cargo, linker, remap_flags};
use super::chroot::Bind;
use super::{CompileError, Request, io};
use crate::base::{EntryLock, Keyed, mmdebstrap};

const SUITE: &str = "trixie";
const BACKPORTS: &str = "trixie-backports";

fn target_arch(target: &str) -> &'static str {
    if target.starts_with("aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

fn options(req: &Request, target: &str) -> mmdebstrap::Options {
    let foreign = target_arch(target);
    let triplet = if foreign == "arm64" {
        "aarch64-linux-gnu"
    } else {
        "x86-64-linux-gnu"
    };
    let mut packages = vec![
        format!("rustc/{BACKPORTS}"),
        format!("cargo/{BACKPORTS}"),
        format!("libstd-rust-dev:{foreign}/{BACKPORTS}"),
        format!("gcc-{triplet}"),
        format!("libc6-dev:{foreign}"),
    ];
    packages.sort();
    mmdebstrap::Options {
        suite: SUITE.into(),
        mirror: req.mirror.to_owned(),
        variant: "minbase".into(),
        architectures: vec!["amd64".into(), foreign.into()],
        components: vec!["main".into()],
        extra_suites: vec![BACKPORTS.into()],
        packages,
        essential_hooks: Vec::new(),
        customize_hooks: Vec::new(),
        source_date_epoch: req.source_date_epoch,
    }
}

/// `cargo vendor` on the host, once per Cargo.lock.
fn vendor(req: &Request) -> Result<PathBuf, CompileError> {
    let lock = req.workspace.join("Cargo.lock");
    let bytes = std::fs::read(&lock).map_err(io(&lock))?;
    let key = &crate::digest::sha256_hex(&bytes)[..16];
    let dest = req.cache.path("vendor", key);
    let _held = EntryLock::take(&dest, "vendored crates")?;
    if dest.is_dir() {
        return Ok(dest);
    }
    let partial = mmdebstrap::staging(&dest);
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(partial.parent().expect("cache path")).map_err(io(&partial))?;
    host_cargo(req.workspace)
        .args(["vendor", "--locked", "--quiet"])
        .arg(&partial)
        .output()?;
    std::fs::rename(&partial, &dest).map_err(io(&dest))?;
    Ok(dest)
}

/// Builds inside the chroot; returns the binary on the host side.
pub fn build(req: &Request, target: &str) -> Result<PathBuf, CompileError> {
    let keyed = Keyed::new(options(req, target), &[])?;
    let root = req.cache.path(
        "toolchain",
        &format!("{SUITE}-amd64-{}-{}", target_arch(target), &keyed.key[..16]),
    );
    let root = keyed.ensure(&root, req.refresh, "Rust tool chroot")?;
    let vendored = vendor(req)?;
    let work = req.cache.path("cross-target", target);
    std::fs::create_dir_all(work.join("cargo-home")).map_err(io(&work))?;
    let config = work.join("cargo-home/config.toml");
    std::fs::write(
        &config,
        "[source.crates-io]\nreplace-with = \"vendored\"\n\n[source.vendored]\ndirectory = \"/vendor\"\n",
    )
    .map_err(io(&config))?;

    let upper = target.to_uppercase().replace('-', "_");
    let gcc = linker(target);
    let cargo = format!(
        "cd /src && exec env CARGO_HOME=/work/cargo-home CARGO_TARGET_DIR=/work/out \
         CARGO_TARGET_{upper}_LINKER={gcc} CC_{cc}={gcc} RUSTFLAGS='{flags}' \
         cargo --offline {args}",
        cc = target.replace('-', "_"),
        flags = remap_flags(&[
            (Path::new("/src"), "/d3kos"),
            (Path::new("/vendor"), "/cargo")
        ]),
        args = build_args(target).join(" "),
    );
    super::chroot::run(
        &root,
        &[
            Bind {
                host: req.workspace,
                inside: "/src",
                read_only: true,
            },
            Bind {
                host: &vendored,
                inside: "/vendor",
                read_only: false,
            },
            Bind {
                host: &work,
                inside: "/work",
                read_only: false,
            },
        ],
        &cargo,
        "cargo (tool chroot)",
    )
    .map_err(|source| CompileError::Cargo {
        target: target.to_owned(),
        source,
    })?;
    let bin = work
        .join("out")
        .join(target)
        .join(super::cargo::PROFILE)
        .join("d3kosd");
    std::fs::metadata(&bin).map_err(io(&bin))?;
    Ok(bin)
}
