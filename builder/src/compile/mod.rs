//! What the image carries that is compiled for the board: the appliance binary (given, built
//! with the host's cargo, or cross-built with Debian's own Rust in a cached tool chroot) and
//! the board's kernel modules.

mod cargo;
mod chroot;
pub mod module;
mod toolchain;

use std::path::{Path, PathBuf};

use appliance::layout::Arch;

use crate::base::{BaseError, Cache};
use crate::tool::ToolError;

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("{}: {reason}", path.display())]
    NotForBoard { path: PathBuf, reason: String },
    #[error("{} is not the d3kOS source tree (no appliance/Cargo.toml): pass --appliance-bin FILE", path.display())]
    NoSource { path: PathBuf },
    #[error("cargo could not build the appliance for {target}")]
    Cargo { target: String, source: ToolError },
    #[error("the kernel module {name} did not build against kernel {kernel}")]
    Module {
        name: String,
        kernel: String,
        source: ToolError,
    },
    #[error(transparent)]
    Base(#[from] BaseError),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CompileError + '_ {
    move |source| CompileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Rust's name for the board's architecture.
pub fn rust_target(arch: Arch) -> &'static str {
    match arch {
        Arch::Arm64 => "aarch64-unknown-linux-gnu",
        Arch::Amd64 => "x86_64-unknown-linux-gnu",
    }
}

/// ELF `e_machine` for the architecture (System V ABI, "ELF Header").
fn elf_machine(arch: Arch) -> u16 {
    match arch {
        Arch::Arm64 => 183,
        Arch::Amd64 => 62,
    }
}

/// Refuses a file that is not a 64-bit little-endian ELF executable for `arch`.
pub fn check_elf(path: &Path, arch: Arch) -> Result<(), CompileError> {
    use std::io::Read;
    let mut head = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(io(path))?;
    let bad = |reason: String| CompileError::NotForBoard {
        path: path.to_owned(),
        reason,
    };
    if &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return Err(bad("not a 64-bit little-endian ELF file".into()));
    }
    let machine = u16::from_le_bytes([head[18], head[19]]);
    if machine != elf_machine(arch) {
        return Err(bad(format!(
            "built for ELF machine {machine}, but the board is {} (machine {})",
            arch.debian_name(),
            elf_machine(arch)
        )));
    }
    Ok(())
}

/// How the binary is to be had.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub arch: Arch,
    pub given: Option<&'a Path>,
    /// The source tree: the folder with the workspace Cargo.toml.
    pub workspace: &'a Path,
    pub cache: &'a Cache,
    pub mirror: &'a str,
    pub refresh: bool,
    pub source_date_epoch: i64,
}

/// The appliance binary for `req.arch`, checked to be an executable for it.
pub fn appliance(req: &Request) -> Result<PathBuf, CompileError> {
    let bin = match req.given {
        Some(path) => path.to_owned(),
        None => {
            if !req.workspace.join("appliance/Cargo.toml").is_file() {
                return Err(CompileError::NoSource {
                    path: req.workspace.to_owned(),
                });
            }
            let target = rust_target(req.arch);
            if cargo::host_can_build(target) {
                log::info!("appliance: building for {target} with the host's cargo");
                cargo::host_build(req.workspace, target)?
            } else {
                log::info!("appliance: cross-building for {target} in the Debian tool chroot");
                toolchain::build(req, target)?
            }
        }
    };
    check_elf(&bin, req.arch)?;
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_amd64_binary_is_refused_for_an_arm64_board() {
        let me = std::env::current_exe().unwrap();
        let host = if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::Amd64
        };
        let other = if host == Arch::Arm64 {
            Arch::Amd64
        } else {
            Arch::Arm64
        };
        check_elf(&me, host).unwrap();
        let e = check_elf(&me, other).unwrap_err().to_string();
        assert!(e.contains("but the board is"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("d3kosd");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n#################").unwrap();
        let e = check_elf(&script, host).unwrap_err().to_string();
        assert!(e.contains("not a 64-bit little-endian ELF"), "{e}");
    }
}
