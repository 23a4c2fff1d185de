//! The programs first boot runs, one typed wrapper each. The environment is explicit, the
//! command line is logged at debug level, and stderr lands in the error.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::FirstbootError;

/// Runs `program` to completion; returns its standard output.
fn run(
    program: &'static str,
    hint: &'static str,
    args: &[OsString],
) -> Result<String, FirstbootError> {
    let command = std::iter::once(program.to_owned())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    log::debug!("running {command}");
    let out = Command::new(program)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => FirstbootError::Missing { program, hint },
            _ => FirstbootError::Io {
                path: PathBuf::from(program),
                source: e,
            },
        })?;
    if !out.status.success() {
        return Err(FirstbootError::Failed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn os(s: impl AsRef<OsStr>) -> OsString {
    s.as_ref().to_owned()
}

/// `partx --update --nr N DISK`: tells the kernel a partition's new size. Unlike a whole
/// re-read this works while the partition is mounted (BLKPG_RESIZE_PARTITION).
pub fn partx_update(disk: &Path, number: u32) -> Result<(), FirstbootError> {
    run(
        "partx",
        "install util-linux",
        &[os("--update"), os("--nr"), os(number.to_string()), os(disk)],
    )
    .map(drop)
}

/// `partx --add --nr N DISK`: tells the kernel about one new partition. The kernel cannot
/// re-read a table while partitions of the disk are mounted (BLKRRPART answers EBUSY), but
/// it can add partitions one by one (BLKPG), which is what partx does.
pub fn partx_add(disk: &Path, number: u32) -> Result<(), FirstbootError> {
    run(
        "partx",
        "install util-linux",
        &[os("--add"), os("--nr"), os(number.to_string()), os(disk)],
    )
    .map(drop)
}

/// `udevadm settle`: waits until udev has handled the new partitions' events (device links,
/// `/dev/disk/by-*`).
pub fn udevadm_settle() -> Result<(), FirstbootError> {
    run(
        "udevadm",
        "install udev",
        &[os("settle"), os("--timeout=30")],
    )
    .map(drop)
}

/// Where a partition's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Volume {
    /// The partition's own device node.
    Device(PathBuf),
    /// A stretch of an image file (a disk that is a file, as in tests).
    InImage {
        image: PathBuf,
        offset: u64,
        size: u64,
    },
}

/// `mke2fs -t ext4 -F -q -U UUID -L LABEL VOLUME`. `-F` because the card may hold anything
/// where the partition now is.
pub fn mke2fs(volume: &Volume, uuid: &str, label: &str) -> Result<(), FirstbootError> {
    let mut args = vec![
        os("-t"),
        os("ext4"),
        os("-F"),
        os("-q"),
        os("-U"),
        os(uuid),
        os("-L"),
        os(label),
    ];
    match volume {
        Volume::Device(node) => args.push(os(node)),
        Volume::InImage {
            image,
            offset,
            size,
        } => {
            args.push(os("-E"));
            args.push(os(format!("offset={offset}")));
            args.push(os(image));
            args.push(os(format!("{}k", size / 1024)));
        }
    }
    run("mke2fs", "install e2fsprogs", &args).map(drop)
}

/// `resize2fs DEVICE`: grows the ext4 file system to the end of its device. On a mounted
/// file system the kernel does it online (EXT4_IOC_RESIZE_FS), while it is in use.
pub fn resize2fs(device: &Path) -> Result<(), FirstbootError> {
    run("resize2fs", "install e2fsprogs", &[os(device)]).map(drop)
}

/// `ssh-keygen -A -f PREFIX`: makes each missing (or empty) host key as
/// `PREFIX/etc/ssh/ssh_host_TYPE_key`, written to a temporary name and renamed.
pub fn ssh_keygen_host_keys(prefix: &Path) -> Result<(), FirstbootError> {
    run(
        "ssh-keygen",
        "install openssh-client",
        &[os("-A"), os("-f"), os(prefix)],
    )
    .map(drop)
}

/// `ssh-keygen -l -f KEY`: the key's fingerprint line (`256 SHA256:… comment (ED25519)`).
pub fn ssh_keygen_fingerprint(key: &Path) -> Result<String, FirstbootError> {
    run(
        "ssh-keygen",
        "install openssh-client",
        &[os("-l"), os("-f"), os(key)],
    )
    .map(|s| s.trim().to_owned())
}

/// `useradd --prefix ROOT`: a user with its own group and home, in the `sudo` group (as
/// Imager's user is on Raspberry Pi OS), with no password until [`usermod_password`].
pub fn useradd(root: &Path, name: &str, shell: &str) -> Result<(), FirstbootError> {
    run(
        "useradd",
        "install passwd",
        &[
            os("--prefix"),
            os(root),
            os("--create-home"),
            os("--user-group"),
            os("--groups"),
            os("sudo"),
            os("--shell"),
            os(shell),
            os("--"),
            os(name),
        ],
    )
    .map(drop)
}

/// `usermod --prefix ROOT --password HASH NAME`; no hash locks password login.
pub fn usermod_password(root: &Path, name: &str, hash: Option<&str>) -> Result<(), FirstbootError> {
    run(
        "usermod",
        "install passwd",
        &[
            os("--prefix"),
            os(root),
            os("--password"),
            os(hash.unwrap_or("!")),
            os("--"),
            os(name),
        ],
    )
    .map(drop)
}
