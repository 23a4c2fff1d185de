//! File-backed A/B slots for the updater's tests: releases, signed bundles of them, a device
//! of files the real `d3kosd update` works on (the test playing the firmware at each
//! power-on), and the root helper on a socket of its own.

use std::path::PathBuf;
use std::process::{Command, Output};

use appliance::bundle::{self, Manifest};
use appliance::layout::autoboot::Autoboot;
use appliance::layout::{Role, Slot};
use serde_json::{Value, json};

use super::BIN;

pub const BLOCK: u32 = 4096;
pub const BOOT_PARTITION: u64 = 64 << 10;
pub const SYSTEM_PARTITION: u64 = 1 << 20;

/// One release's three images: boot for slot a, boot for slot b, the system.
#[derive(Clone)]
pub struct Release {
    pub version: &'static str,
    pub boot_a: Vec<u8>,
    pub boot_b: Vec<u8>,
    pub system: Vec<u8>,
}

pub fn bytes(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|i| {
            // Mostly repeating, partly noise: compressible as a system is.
            if i % 64 < 48 {
                (i / 64) as u8
            } else {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            }
        })
        .collect()
}

pub fn release(version: &'static str, seed: u32) -> Release {
    Release {
        version,
        boot_a: bytes(seed, 32 << 10),
        boot_b: bytes(seed + 1, 32 << 10),
        system: bytes(seed + 2, (512 << 10) + 100),
    }
}

/// A release as the builder makes one: each boot image names its own slot's system
/// partition on its kernel command line, the system is a real ext4 file system.
pub fn bootable_release(version: &'static str, seed: u32) -> Release {
    let dir = tempfile::tempdir().unwrap();
    let fs = dir.path().join("system");
    std::fs::write(&fs, bytes(seed, 768 << 10)).unwrap();
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-b", "1024", "-L", "system"])
        .arg(&fs)
        .arg("768")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let boot = |partuuid: &str| {
        let mut b = bytes(seed + 1, 32 << 10);
        let line = format!("console=ttyS0 root=PARTUUID={partuuid} rw rootwait\n");
        b[4096..4096 + line.len()].copy_from_slice(line.as_bytes());
        b
    };
    Release {
        version,
        boot_a: boot(PARTUUID[0]),
        boot_b: boot(PARTUUID[1]),
        system: std::fs::read(&fs).unwrap(),
    }
}

pub struct Key {
    pub sk: minisign::SecretKey,
    pub public: String,
}

pub fn key() -> Key {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    Key {
        public: pair.pk.to_box().unwrap().into_string(),
        sk: pair.sk,
    }
}

pub fn bundle_of(r: &Release, board: &str, key: &Key) -> Vec<u8> {
    let (mut a, mut b, mut s) = (&r.boot_a[..], &r.boot_b[..], &r.system[..]);
    let mut inputs = [
        bundle::write::Input {
            name: "boot-a".into(),
            role: Role::Boot,
            slot: Some(Slot::A),
            reader: &mut a,
        },
        bundle::write::Input {
            name: "boot-b".into(),
            role: Role::Boot,
            slot: Some(Slot::B),
            reader: &mut b,
        },
        bundle::write::Input {
            name: "system".into(),
            role: Role::System,
            slot: None,
            reader: &mut s,
        },
    ];
    let mut payload = Vec::new();
    let packed = bundle::pack(&mut inputs, BLOCK, 3, 1, &mut payload).unwrap();
    let manifest = Manifest {
        format: bundle::FORMAT,
        product: "d3kOS".into(),
        version: r.version.into(),
        board: board.into(),
        compatible: format!("d3kOS/{board}"),
        created: 0,
        block_size: BLOCK,
        payload: packed.payload,
        images: packed.images,
    };
    let text = serde_json::to_vec(&manifest).unwrap();
    let sig = minisign::sign(None, &key.sk, &text[..], Some("test"), None)
        .unwrap()
        .into_string();
    let mut out = Vec::new();
    bundle::write_bundle(&mut out, &text, &sig, &mut &payload[..]).unwrap();
    out
}

/// A device of file-backed slots, shipped with `first` in slot a.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub releases: Vec<Release>,
    /// The running system cannot find the boat log (its appliance's configuration is
    /// broken).
    pub log_lost: std::cell::Cell<bool>,
}

pub const PARTUUID: [&str; 2] = ["0000000a-05", "0000000b-06"];
pub const BOOT_NUMBER: [u32; 2] = [2, 3];

impl Rig {
    pub fn new(first: &Release, key: &Key) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_owned();
        for d in ["keys", "config", "state", "slots"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        std::fs::write(p.join("keys/release.pub"), &key.public).unwrap();
        std::fs::write(
            p.join("config/autoboot.txt"),
            appliance::layout::autoboot::Autoboot {
                default: 2,
                tryboot: Some(3),
            }
            .render(),
        )
        .unwrap();
        for (name, size) in [("boot-a", BOOT_PARTITION), ("boot-b", BOOT_PARTITION)] {
            std::fs::write(p.join("slots").join(name), vec![0u8; size as usize]).unwrap();
        }
        for name in ["system-a", "system-b"] {
            std::fs::write(
                p.join("slots").join(name),
                vec![0u8; SYSTEM_PARTITION as usize],
            )
            .unwrap();
        }
        let rig = Rig {
            dir,
            releases: vec![first.clone()],
            log_lost: Default::default(),
        };
        appliance::boatlog::Boatlog::in_state(&p.join("state")).auto(0, "The log begins.");
        rig.write_slot(Slot::A, first);
        // A healthy system's database.
        let db = rusqlite::Connection::open(rig.path("state/health.db")).unwrap();
        db.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        rig.boot_into(Slot::A, false, first.version);
        rig
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn slot_files(&self, slot: Slot) -> (PathBuf, PathBuf) {
        let l = slot_letter(slot);
        (
            self.path(&format!("slots/boot-{l}")),
            self.path(&format!("slots/system-{l}")),
        )
    }

    pub fn write_slot(&self, slot: Slot, r: &Release) {
        use std::os::unix::fs::FileExt;
        let (boot, system) = self.slot_files(slot);
        let b = if slot == Slot::A {
            &r.boot_a
        } else {
            &r.boot_b
        };
        let f = std::fs::File::options().write(true).open(boot).unwrap();
        f.write_all_at(b, 0).unwrap();
        let f = std::fs::File::options().write(true).open(system).unwrap();
        f.write_all_at(&r.system, 0).unwrap();
    }

    /// The release slot `slot` holds whole, if any.
    pub fn holds(&self, slot: Slot) -> Option<&'static str> {
        let (boot, system) = self.slot_files(slot);
        let (boot, system) = (std::fs::read(boot).unwrap(), std::fs::read(system).unwrap());
        self.releases.iter().find_map(|r| {
            let b = if slot == Slot::A {
                &r.boot_a
            } else {
                &r.boot_b
            };
            (boot.starts_with(b) && system.starts_with(&r.system)).then_some(r.version)
        })
    }

    /// The device description the running `version` in `slot` sees.
    pub fn boot_into(&self, slot: Slot, trying: bool, version: &str) {
        let i = slot_index(slot);
        let mut cmdline = format!("console=ttyS0 root=PARTUUID={} rw", PARTUUID[i]);
        if trying {
            cmdline.push_str(" d3kos.tryboot=1");
        }
        std::fs::write(self.path("cmdline"), cmdline + "\n").unwrap();
        let slot_json = |s: usize| {
            let l = ["a", "b"][s];
            json!({
                "boot": self.path(&format!("slots/boot-{l}")),
                "boot_number": BOOT_NUMBER[s],
                "system": self.path(&format!("slots/system-{l}")),
                "system_partuuid": PARTUUID[s],
            })
        };
        let device = json!({
            "compatible": "d3kOS/qemu-amd64",
            "version": version,
            "keys": self.path("keys"),
            "config": self.path("config"),
            "state": self.path("state"),
            "boot_control": "harness",
            "a": slot_json(0),
            "b": slot_json(1),
            "cmdline": self.path("cmdline"),
            "bootloader": self.path("no-bootloader"),
            "tryboot_flag": self.path("no-flag"),
            "health": {
                "units": [],
                "url": null,
                "mounts": [],
                "databases": [self.path("state/health.db")],
                "limit_secs": 1,
            },
            "boatlog": (!self.log_lost.get()).then(|| self.path("state/boatlog.db")),
            "reboot": [],
        });
        std::fs::write(self.path("device.json"), device.to_string()).unwrap();
    }

    /// The firmware's part at power-on: the slot autoboot.txt names, or once the one the
    /// flag asks for; that slot must hold a whole release, which then runs.
    pub fn power_on(&self) -> (Slot, bool, &'static str) {
        let text = std::fs::read_to_string(self.path("config/autoboot.txt")).unwrap();
        let a =
            Autoboot::parse(&text).unwrap_or_else(|| panic!("autoboot.txt unreadable: {text:?}"));
        let flag = self.path("config/tryboot");
        let trying = flag.exists();
        let number = if trying {
            std::fs::remove_file(&flag).unwrap();
            a.tryboot.expect("a flag without a [tryboot] partition")
        } else {
            a.default
        };
        let slot = [Slot::A, Slot::B][BOOT_NUMBER.iter().position(|n| *n == number).unwrap()];
        let version = self.holds(slot).unwrap_or_else(|| {
            panic!("power-on into slot {slot:?} (trying {trying}), which holds no whole release")
        });
        self.boot_into(slot, trying, version);
        (slot, trying, version)
    }

    pub fn committed(&self) -> Slot {
        let text = std::fs::read_to_string(self.path("config/autoboot.txt")).unwrap();
        let n = Autoboot::parse(&text).unwrap().default;
        [Slot::A, Slot::B][BOOT_NUMBER.iter().position(|x| *x == n).unwrap()]
    }

    pub fn d3kosd(&self, args: &[&str], envs: &[(&str, String)]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("update")
            .args(args)
            .arg("--device")
            .arg(self.path("device.json"));
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.d3kosd(args, &[]);
        assert!(
            out.status.success(),
            "d3kosd update {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn refused(&self, args: &[&str]) -> String {
        let out = self.d3kosd(args, &[]);
        assert!(!out.status.success(), "d3kosd update {args:?} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn settle(&self) -> Value {
        serde_json::from_str(&self.ok(&["settle", "--no-reboot"])).unwrap()
    }

    pub fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status"])).unwrap()
    }

    pub fn write_bundle(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// Everything an install may touch: both slots, the record, the config folder.
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for dir in ["slots", "config", "state"] {
            let mut names: Vec<_> = std::fs::read_dir(self.path(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            for n in names {
                out.push((n.display().to_string(), std::fs::read(&n).unwrap()));
            }
        }
        out
    }
}

pub fn slot_index(s: Slot) -> usize {
    match s {
        Slot::A => 0,
        Slot::B => 1,
    }
}

pub fn slot_letter(s: Slot) -> char {
    ["a", "b"][slot_index(s)].chars().next().unwrap()
}

/// The root helper without systemd: `d3kosd update serve --listen` on a socket of its own,
/// as the test's user, writing the rig's file-backed slots.
pub struct Helper {
    pub child: std::process::Child,
    pub socket: PathBuf,
}

impl Helper {
    pub fn start(rig: &Rig) -> Helper {
        let socket = rig.path("update.sock");
        let child = Command::new(BIN)
            .args(["update", "serve", "--device"])
            .arg(rig.path("device.json"))
            .arg("--listen")
            .arg(&socket)
            .spawn()
            .unwrap();
        super::eventually(
            "the helper listens",
            std::time::Duration::from_secs(10),
            || socket.exists(),
        );
        Helper { child, socket }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
