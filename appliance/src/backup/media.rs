//! USB drives a backup can be written to: file systems the image's udev rule mounts at
//! `/media/usb-UUID` (`usr/lib/udev/rules.d/90-d3kos-usb-storage.rules`), found in the
//! mount table by file system UUID and checked to sit on a USB device in sysfs. The daemon
//! runs with a private /dev, so nothing here reads device nodes.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where the facts are read from; the real ones are [`Roots::system`].
#[derive(Debug, Clone)]
pub struct Roots {
    /// `/proc/self/mountinfo`.
    pub mountinfo: PathBuf,
    /// `/sys/dev/block`, whose `MAJOR:MINOR` links lead to the device in sysfs.
    pub sys_dev_block: PathBuf,
    /// The folder the udev rule mounts USB drives in.
    pub media: PathBuf,
}

impl Roots {
    pub fn system(media: &Path) -> Roots {
        Roots {
            mountinfo: "/proc/self/mountinfo".into(),
            sys_dev_block: "/sys/dev/block".into(),
            media: media.to_owned(),
        }
    }
}

/// One mounted USB drive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Medium {
    /// The file system UUID, as udev reports it (`ID_FS_UUID`).
    pub uuid: String,
    pub mount: PathBuf,
    pub fs: String,
    pub read_only: bool,
}

impl Medium {
    /// Where backups go on it.
    pub fn backup_dir(&self) -> PathBuf {
        self.mount.join("d3kos-backups")
    }

    /// Whether this process may write its backups there: not mounted read-only, and the
    /// backup folder (or, before the first backup, the drive's top folder) open to it. An
    /// ext4 drive formatted elsewhere belongs to root, not to the daemon.
    pub fn writable(&self) -> bool {
        let dir = self.backup_dir();
        let dir = if dir.is_dir() {
            dir
        } else {
            self.mount.clone()
        };
        !self.read_only
            && rustix::fs::access(
                &dir,
                rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
            )
            .is_ok()
    }
}

/// The USB drives mounted now, in mount-table order.
pub fn removable(roots: &Roots) -> Vec<Medium> {
    let Ok(table) = std::fs::read_to_string(&roots.mountinfo) else {
        return Vec::new();
    };
    table
        .lines()
        .filter_map(|line| parse_line(line, roots))
        .collect()
}

/// The drive with file system UUID `uuid`, if it is mounted.
pub fn find(roots: &Roots, uuid: &str) -> Option<Medium> {
    removable(roots).into_iter().find(|m| m.uuid == uuid)
}

/// A mountinfo line (proc(5)): `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS…] - FSTYPE
/// SOURCE SUPEROPTIONS`.
fn parse_line(line: &str, roots: &Roots) -> Option<Medium> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let dev = *fields.get(2)?;
    let mount = PathBuf::from(unescape(fields.get(4)?));
    let options = fields.get(5)?;
    let fs = right.split(' ').next()?.to_owned();
    if mount.parent()? != roots.media {
        return None;
    }
    let uuid = mount
        .file_name()?
        .to_str()?
        .strip_prefix("usb-")?
        .to_owned();
    if uuid.is_empty() || !uuid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    // The device must hang off a USB controller: a partition of the card or a network
    // share mounted there by hand is no USB drive.
    let device = std::fs::canonicalize(roots.sys_dev_block.join(dev)).ok()?;
    if !device
        .components()
        .any(|c| c.as_os_str().to_str().is_some_and(|s| s.starts_with("usb")))
    {
        return None;
    }
    Some(Medium {
        uuid,
        mount,
        fs,
        read_only: options.split(',').any(|o| o == "ro"),
    })
}

/// Mount points escape space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usb_drives_are_found_by_uuid_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys");
        let usb = sys.join("devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0/block/sda/sda1");
        let card = sys.join("devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:0001/block/mmcblk0/mmcblk0p7");
        std::fs::create_dir_all(&usb).unwrap();
        std::fs::create_dir_all(&card).unwrap();
        let block = sys.join("dev/block");
        std::fs::create_dir_all(&block).unwrap();
        std::os::unix::fs::symlink(&usb, block.join("8:1")).unwrap();
        std::os::unix::fs::symlink(&card, block.join("179:7")).unwrap();
        let mountinfo = dir.path().join("mountinfo");
        std::fs::write(
            &mountinfo,
            "22 1 179:2 / / rw,relatime shared:1 - ext4 /dev/mmcblk0p2 rw\n\
             30 22 179:7 / /data rw,noatime shared:9 - ext4 /dev/mmcblk0p7 rw\n\
             41 22 8:1 / /media/usb-4A1B-22F0 rw,nosuid,nodev,noexec shared:20 - vfat /dev/sda1 rw,uid=102\n\
             42 22 179:7 /x /media/usb-1111-2222 rw shared:21 - ext4 /dev/mmcblk0p7 rw\n\
             43 22 8:1 / /media/usb-ABCD-0001\\040copy ro shared:22 - vfat /dev/sda1 ro\n\
             44 22 8:1 / /mnt/usb-4A1B-22F0 rw shared:23 - vfat /dev/sda1 rw\n",
        )
        .unwrap();
        let roots = Roots {
            mountinfo,
            sys_dev_block: block,
            media: "/media".into(),
        };
        let found = removable(&roots);
        assert_eq!(
            found,
            vec![Medium {
                uuid: "4A1B-22F0".into(),
                mount: "/media/usb-4A1B-22F0".into(),
                fs: "vfat".into(),
                read_only: false,
            }],
            "the card's data partition, a name with a space and a mount elsewhere are not drives"
        );
        assert_eq!(
            find(&roots, "4A1B-22F0").unwrap().backup_dir(),
            PathBuf::from("/media/usb-4A1B-22F0/d3kos-backups")
        );
        assert!(find(&roots, "1111-2222").is_none());
        assert_eq!(unescape("/media/a\\040b"), "/media/a b");
    }

    #[test]
    fn a_read_only_or_missing_drive_is_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Medium {
            uuid: "4A1B-22F0".into(),
            mount: dir.path().to_owned(),
            fs: "vfat".into(),
            read_only: false,
        };
        assert!(m.writable());
        m.read_only = true;
        assert!(!m.writable());
        m.read_only = false;
        m.mount = dir.path().join("gone");
        assert!(!m.writable());
    }
}
