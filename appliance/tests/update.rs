//! A/B updates through the real `d3kosd update` on file-backed slots: install, try, commit,
//! roll back, refusals that write nothing, and a power cut at every step.
//!
//! The test plays the firmware: at each power-on it reads autoboot.txt and the harness's
//! one-time flag from the config folder as the boot test's harness does, boots the slot they
//! name (the kernel command line's root= and, for a try, the try parameter), and first
//! checks that slot holds one whole release, byte for byte.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use appliance::bundle::{self, Manifest};
use appliance::layout::autoboot::Autoboot;
use appliance::layout::{Role, Slot};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_d3kosd");
const BLOCK: u32 = 4096;
const BOOT_PARTITION: u64 = 64 << 10;
const SYSTEM_PARTITION: u64 = 1 << 20;

/// One release's three images: boot for slot a, boot for slot b, the system.
#[derive(Clone)]
struct Release {
    version: &'static str,
    boot_a: Vec<u8>,
    boot_b: Vec<u8>,
    system: Vec<u8>,
}

fn bytes(seed: u32, len: usize) -> Vec<u8> {
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

fn release(version: &'static str, seed: u32) -> Release {
    Release {
        version,
        boot_a: bytes(seed, 32 << 10),
        boot_b: bytes(seed + 1, 32 << 10),
        system: bytes(seed + 2, (512 << 10) + 100),
    }
}

struct Key {
    sk: minisign::SecretKey,
    public: String,
}

fn key() -> Key {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    Key {
        public: pair.pk.to_box().unwrap().into_string(),
        sk: pair.sk,
    }
}

fn bundle_of(r: &Release, board: &str, key: &Key) -> Vec<u8> {
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
struct Rig {
    dir: tempfile::TempDir,
    releases: Vec<Release>,
    /// The running system cannot find the boat log (its appliance's configuration is
    /// broken).
    log_lost: std::cell::Cell<bool>,
}

const PARTUUID: [&str; 2] = ["0000000a-05", "0000000b-06"];
const BOOT_NUMBER: [u32; 2] = [2, 3];

impl Rig {
    fn new(first: &Release, key: &Key) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_owned();
        for d in ["keys", "config", "state", "slots"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        std::fs::write(p.join("keys/release.pub"), &key.public).unwrap();
        std::fs::write(
            p.join("config/autoboot.txt"),
            "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n",
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

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn slot_files(&self, slot: Slot) -> (PathBuf, PathBuf) {
        let l = slot_letter(slot);
        (
            self.path(&format!("slots/boot-{l}")),
            self.path(&format!("slots/system-{l}")),
        )
    }

    fn write_slot(&self, slot: Slot, r: &Release) {
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
    fn holds(&self, slot: Slot) -> Option<&'static str> {
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
    fn boot_into(&self, slot: Slot, trying: bool, version: &str) {
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
    fn power_on(&self) -> (Slot, bool, &'static str) {
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

    fn committed(&self) -> Slot {
        let text = std::fs::read_to_string(self.path("config/autoboot.txt")).unwrap();
        let n = Autoboot::parse(&text).unwrap().default;
        [Slot::A, Slot::B][BOOT_NUMBER.iter().position(|x| *x == n).unwrap()]
    }

    fn d3kosd(&self, args: &[&str], envs: &[(&str, String)]) -> Output {
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

    fn ok(&self, args: &[&str]) -> String {
        let out = self.d3kosd(args, &[]);
        assert!(
            out.status.success(),
            "d3kosd update {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn refused(&self, args: &[&str]) -> String {
        let out = self.d3kosd(args, &[]);
        assert!(!out.status.success(), "d3kosd update {args:?} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn settle(&self) -> Value {
        serde_json::from_str(&self.ok(&["settle", "--no-reboot"])).unwrap()
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status"])).unwrap()
    }

    fn write_bundle(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// Everything an install may touch: both slots, the record, the config folder.
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
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

fn slot_index(s: Slot) -> usize {
    match s {
        Slot::A => 0,
        Slot::B => 1,
    }
}

fn slot_letter(s: Slot) -> char {
    ["a", "b"][slot_index(s)].chars().next().unwrap()
}

#[test]
fn a_bundle_is_installed_tried_committed_and_a_failing_one_goes_back() {
    let key = key();
    let (v1, v2, v3) = (release("1.0", 1), release("2.0", 10), release("3.0", 20));
    let mut rig = Rig::new(&v1, &key);
    rig.releases.extend([v2.clone(), v3.clone()]);
    assert_eq!(rig.settle()["verdict"], "steady");

    let b2 = rig.write_bundle("v2.d3kb", &bundle_of(&v2, "qemu-amd64", &key));
    let checked = rig.ok(&["check", &b2]);
    assert!(
        checked.contains("d3kOS 2.0 for qemu-amd64") && checked.contains("slot B"),
        "{checked}"
    );
    let said = rig.ok(&["install", &b2, "--no-reboot"]);
    assert!(said.contains("into slot B"), "{said}");
    assert_eq!(rig.holds(Slot::B), Some("2.0"));
    assert_eq!(
        rig.committed(),
        Slot::A,
        "nothing is committed before the try"
    );
    let s = rig.status();
    assert_eq!(s["last_attempt"]["outcome"], "pending", "{s}");
    assert_eq!(s["b"]["state"], "installed", "{s}");

    // The try: healthy, committed.
    assert_eq!(rig.power_on(), (Slot::B, true, "2.0"));
    let v = rig.settle();
    assert_eq!(
        v,
        json!({"verdict": "committed", "slot": "b", "version": "2.0"})
    );
    assert_eq!(rig.committed(), Slot::B);
    assert_eq!(rig.power_on(), (Slot::B, false, "2.0"));
    assert_eq!(rig.settle()["verdict"], "steady");
    let s = rig.status();
    assert_eq!(
        (s["running"].clone(), s["committed"].clone()),
        (json!("b"), json!("b"))
    );
    assert_eq!(s["a"]["version"], "1.0");
    assert_eq!(s["a"]["state"], "good", "{s}");
    assert_eq!(s["b"]["state"], "good", "{s}");
    assert_eq!(s["last_attempt"]["outcome"], "committed", "{s}");
    // The appliance shows the same.
    let device = common::Device::new(&format!(
        "update_device = \"{}\"\n",
        rig.path("device.json").display()
    ));
    let daemon = device.start();
    let r = common::get(&daemon, "/api/update/status");
    let shown = r.json();
    assert_eq!(r.status, 200, "{shown}");
    assert_eq!(shown["data"], s, "{shown}");

    // v3 goes to slot a; its system is not healthy in time: rolled back, v2 runs on. The
    // try cannot reach the boat log; v2 notes the rollback when it runs again.
    let b3 = rig.write_bundle("v3.d3kb", &bundle_of(&v3, "qemu-amd64", &key));
    rig.ok(&["install", &b3, "--no-reboot"]);
    assert_eq!(rig.holds(Slot::A), Some("3.0"));
    rig.log_lost.set(true);
    assert_eq!(rig.power_on(), (Slot::A, true, "3.0"));
    rig.log_lost.set(false);
    std::fs::write(
        rig.path("state/health.db"),
        b"not a database at all, 32 bytes!",
    )
    .unwrap();
    let v = rig.settle();
    assert_eq!(v["verdict"], "rolled-back", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("health.db"), "{v}");
    assert_eq!(rig.committed(), Slot::B);
    assert_eq!(rig.power_on(), (Slot::B, false, "2.0"));
    assert_eq!(rig.settle()["verdict"], "steady");
    let s = rig.status();
    assert_eq!(s["a"]["state"], "bad", "{s}");
    assert_eq!(s["last_attempt"]["outcome"], "rolled-back", "{s}");
    assert_eq!(s["last_attempt"]["version"], "3.0", "{s}");

    // A try that never comes up (it hangs; the watchdog restarts into the default).
    let db = rusqlite::Connection::open(rig.path("state/health2.db")).unwrap();
    db.execute_batch("CREATE TABLE t (x);").unwrap();
    std::fs::rename(rig.path("state/health2.db"), rig.path("state/health.db")).unwrap();
    rig.ok(&["install", &b3, "--no-reboot"]);
    assert_eq!(rig.power_on(), (Slot::A, true, "3.0"));
    assert_eq!(rig.power_on(), (Slot::B, false, "2.0"));
    let v = rig.settle();
    assert_eq!(
        v,
        json!({"verdict": "never-came-up", "slot": "a", "version": "3.0"})
    );

    // Back to the release that ran before: slot a now holds v3 (bad), so nothing to go back
    // to; v1 is gone. Installing v1 again over it is an older version: forced.
    let said = rig.refused(&["switch", "--no-reboot"]);
    assert!(said.contains("nothing to go back to"), "{said}");
    let b1 = rig.write_bundle("v1.d3kb", &bundle_of(&v1, "qemu-amd64", &key));
    let said = rig.refused(&["install", &b1, "--no-reboot"]);
    assert!(said.contains("not newer than the running 2.0"), "{said}");
    rig.ok(&["install", &b1, "--force", "--no-reboot"]);
    assert_eq!(rig.power_on(), (Slot::A, true, "1.0"));
    assert_eq!(rig.settle()["verdict"], "committed");
    // And the switch back to v2, tried then committed.
    assert_eq!(rig.power_on(), (Slot::A, false, "1.0"));
    rig.ok(&["switch", "--no-reboot"]);
    assert_eq!(rig.power_on(), (Slot::B, true, "2.0"));
    assert_eq!(rig.settle()["verdict"], "committed");
    assert_eq!(rig.committed(), Slot::B);
    // A second verdict in the same boot changes and notes nothing.
    assert_eq!(rig.settle()["verdict"], "steady");

    // Each install, commit, rollback and switch is in the boat log once, in order.
    let log = rusqlite::Connection::open(rig.path("state/boatlog.db")).unwrap();
    let mut q = log
        .prepare("SELECT text FROM entry WHERE kind = 'auto' AND at > 0 ORDER BY id")
        .unwrap();
    let entries: Vec<String> = q
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: &[&[&str]] = &[
        &["d3kOS 2.0 installed into slot B", "running 1.0"],
        &[
            "2.0 came up healthy in slot B and is committed",
            "1.0 stays in slot A",
        ],
        &["d3kOS 3.0 installed into slot A"],
        &["3.0 in slot A was not kept", "health.db", "2.0 runs"],
        &["d3kOS 3.0 installed into slot A"],
        &["3.0 in slot A was not kept", "did not come up"],
        &["d3kOS 1.0 installed into slot A"],
        &["1.0 came up healthy in slot A"],
        &["going back to 2.0 in slot B"],
        &["2.0 came up healthy in slot B", "1.0 stays in slot A"],
    ];
    assert_eq!(entries.len(), expected.len(), "{entries:#?}");
    for (e, words) in entries.iter().zip(expected) {
        for w in *words {
            assert!(e.contains(w), "{e:?} lacks {w:?}: {entries:#?}");
        }
    }
}

#[test]
fn bad_bundles_are_refused_with_nothing_written() {
    let key = key();
    let (v1, v2) = (release("1.0", 1), release("2.0", 10));
    let rig = Rig::new(&v1, &key);
    rig.settle();
    let good = bundle_of(&v2, "qemu-amd64", &key);
    let m_len = u32::from_le_bytes(good[8..12].try_into().unwrap()) as usize;
    let mut flipped_payload = good.clone();
    let last = good.len() - 3;
    flipped_payload[last] ^= 0x10;
    let mut flipped_manifest = good.clone();
    flipped_manifest[16 + m_len / 2] ^= 0x01;
    let mut cases = vec![
        (
            "another key",
            bundle_of(&v2, "qemu-amd64", &self::key()),
            "does not trust",
        ),
        ("a flipped payload byte", flipped_payload, "damaged"),
        ("a flipped manifest byte", flipped_manifest, "altered"),
        ("cut short", good[..good.len() / 2].to_vec(), "ends early"),
        (
            "another board",
            bundle_of(&v2, "rpi4", &key),
            "this system is d3kOS/qemu-amd64",
        ),
        (
            "an older version",
            bundle_of(&release("0.9", 5), "qemu-amd64", &key),
            "not newer",
        ),
        (
            "not a bundle",
            b"GIF89a and the rest of a picture".to_vec(),
            "not a d3kOS update bundle",
        ),
    ];
    cases.push((
        "the same version",
        bundle_of(&v1, "qemu-amd64", &key),
        "not newer",
    ));
    let before = rig.snapshot();
    for (what, bytes, says) in cases {
        let path = rig.write_bundle("bad.d3kb", &bytes);
        for verb in ["check", "install"] {
            let said =
                rig.refused(&[verb, &path, "--no-reboot"][..if verb == "check" { 2 } else { 3 }]);
            assert!(said.contains(says), "{what} ({verb}): {said}");
            assert!(
                rig.snapshot() == before,
                "{what} ({verb}) changed the device"
            );
        }
    }
    // From standard input, the payload's damage is found block by block: the slot is then
    // marked as being written (not bootable), nothing is tried, the committed slot runs.
    let mut flipped = good.clone();
    let at = good.len() - 3;
    flipped[at] ^= 0x10;
    let out = Command::new(BIN)
        .args(["update", "install", "-", "--no-reboot", "--device"])
        .arg(rig.path("device.json"))
        .stdin(std::fs::File::open(rig.write_bundle("f.d3kb", &flipped)).unwrap())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("damaged"), "{said}");
    assert!(!rig.path("config/tryboot").exists());
    assert_eq!(rig.status()["b"]["state"], "writing");
    assert_eq!(rig.power_on(), (Slot::A, false, "1.0"));
}

/// Runs `args` with the crash point `n` armed; whether it was cut there.
fn cut_at(rig: &Rig, args: &[&str], n: u64) -> bool {
    let out = rig.d3kosd(args, &[("D3KOS_CRASH_AT", n.to_string())]);
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(9)
}

fn points(rig: &Rig, args: &[&str], log: &Path) -> Vec<String> {
    let out = rig.d3kosd(args, &[("D3KOS_CRASH_LOG", log.display().to_string())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_owned())
        .collect()
}

/// A power cut at every step of an install and of the verdict after its try, in both
/// directions: after each, the firmware boots a slot that holds a whole release, the next
/// verdict leaves a committed slot that holds one, and the update, run again, completes.
#[test]
fn a_power_cut_at_any_step_leaves_a_committed_bootable_slot() {
    let key = key();
    let (v1, v2, v3) = (release("1.0", 1), release("2.0", 10), release("3.0", 20));
    let mut cuts = 0;
    for (from, to, slot) in [(&v1, &v2, Slot::B), (&v2, &v3, Slot::A)] {
        // A device shipped with v1 that runs `from`, knowing all three releases.
        let running_from = || {
            let mut rig = Rig::new(&v1, &key);
            rig.releases = vec![v1.clone(), v2.clone(), v3.clone()];
            if from.version == "2.0" {
                let b = rig.write_bundle("b.d3kb", &bundle_of(&v2, "qemu-amd64", &key));
                rig.ok(&["install", &b, "--no-reboot"]);
                rig.power_on();
                rig.settle();
            }
            rig
        };
        // Count the steps on a rig of its own.
        let probe = running_from();
        let bundle = bundle_of(to, "qemu-amd64", &key);
        let b = probe.write_bundle("u.d3kb", &bundle);
        let install = points(
            &probe,
            &["install", &b, "--no-reboot"],
            &probe.path("install.log"),
        );
        assert!(
            install
                .iter()
                .filter(|p| *p == "update: block written")
                .count()
                > 100
        );
        probe.power_on();
        let settle = points(
            &probe,
            &["settle", "--no-reboot"],
            &probe.path("settle.log"),
        );
        assert!(
            settle.contains(&"update: autoboot commits".to_owned()),
            "{settle:?}"
        );

        for (phase, steps) in [("install", install.len()), ("settle", settle.len())] {
            for n in 1..=steps as u64 {
                let rig = running_from();
                let b = rig.write_bundle("u.d3kb", &bundle);
                if phase == "settle" {
                    rig.ok(&["install", &b, "--no-reboot"]);
                    rig.power_on();
                }
                let args: &[&str] = if phase == "install" {
                    &["install", &b, "--no-reboot"]
                } else {
                    &["settle", "--no-reboot"]
                };
                assert!(cut_at(&rig, args, n), "{phase} step {n} was not reached");
                cuts += 1;
                // Power on (the firmware checks the slot holds a whole release), the verdict,
                // and again: the committed slot holds one.
                rig.power_on();
                rig.settle();
                let (running, _, version) = rig.power_on();
                rig.settle();
                assert_eq!(running, rig.committed(), "{phase} {n}");
                assert!(rig.holds(rig.committed()).is_some(), "{phase} {n}");
                // The update, run again if it did not finish, completes.
                if version != to.version {
                    rig.ok(&["install", &b, "--no-reboot"]);
                    rig.power_on();
                    rig.settle();
                }
                assert_eq!(
                    rig.power_on(),
                    (slot, false, to.version),
                    "{phase} step {n}"
                );
            }
        }
    }
    eprintln!("{cuts} power cuts, each followed by two power-ons and a finished update");
    assert!(cuts >= 200, "only {cuts} cuts");
}

/// The root helper without systemd: `d3kosd update serve --listen` on a socket of its own,
/// as the test's user, writing the rig's file-backed slots.
struct Helper {
    child: std::process::Child,
    socket: PathBuf,
}

impl Helper {
    fn start(rig: &Rig) -> Helper {
        let socket = rig.path("update.sock");
        let child = Command::new(BIN)
            .args(["update", "serve", "--device"])
            .arg(rig.path("device.json"))
            .arg("--listen")
            .arg(&socket)
            .spawn()
            .unwrap();
        common::eventually(
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

fn upload(d: &common::Daemon, cookie: Option<&str>, query: &str, bytes: &[u8]) -> common::Reply {
    let origin = format!("http://{}", d.addr);
    let mut h = vec![
        ("Content-Type", "application/octet-stream"),
        ("Origin", origin.as_str()),
    ];
    if let Some(c) = cookie {
        h.push(("Cookie", c));
    }
    common::request(
        d.addr,
        "POST",
        &format!("/api/update/install{query}"),
        &h,
        bytes,
    )
}

#[test]
fn the_owner_installs_from_the_web_page_after_a_backup_and_a_refused_bundle_writes_nothing() {
    let key = key();
    let (v1, v2) = (release("1.0", 1), release("2.0", 10));
    let mut rig = Rig::new(&v1, &key);
    rig.releases.push(v2.clone());
    rig.settle();
    let mut helper = Helper::start(&rig);
    let device = common::Device::new(&format!(
        "update_device = \"{}\"\nupdate_helper = \"{}\"\n",
        rig.path("device.json").display(),
        helper.socket.display()
    ));
    let d = device.start();
    let good = bundle_of(&v2, "qemu-amd64", &key);

    // Only the owner.
    common::assert_error(&upload(&d, None, "", &good), 401, "unauthorized");
    let cookie = common::create_owner(&device, &d);

    // Signed by a key the device does not trust: refused at its first bytes, nothing
    // written; the backup taken first is kept all the same.
    let before = rig.snapshot();
    let r = upload(
        &d,
        Some(&cookie),
        "",
        &bundle_of(&v2, "qemu-amd64", &self::key()),
    );
    common::assert_error(&r, 422, "bundle_refused");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not trust")
    );
    assert!(
        rig.snapshot() == before,
        "a refused bundle changed the device"
    );
    // A URL the device cannot fetch, and one that is not http(s).
    let r = common::write(
        &d,
        "POST",
        "/api/update/install",
        Some(&cookie),
        &json!({"url": "http://127.0.0.1:9/d3kOS-2.0.d3kb"}),
    );
    common::assert_error(&r, 422, "bundle_refused");
    let r = common::write(
        &d,
        "POST",
        "/api/update/install",
        Some(&cookie),
        &json!({"url": "file:///etc/passwd"}),
    );
    common::assert_error(&r, 400, "bad_request");
    assert!(
        rig.snapshot() == before,
        "a refused request changed the device"
    );

    // The bundle itself: a backup of the data first, then written, tried at the next start.
    let r = upload(&d, Some(&cookie), "", &good);
    let done = common::assert_ok(&r);
    assert_eq!(
        (&done["version"], &done["slot"], &done["restarting"]),
        (&json!("2.0"), &json!("b"), &json!(true)),
        "{done}"
    );
    assert_eq!(rig.holds(Slot::B), Some("2.0"));
    let backup = done["backup"].as_str().unwrap().to_owned();
    let listed = common::assert_ok(&common::request(
        d.addr,
        "GET",
        "/api/backup/list",
        &[("Cookie", &cookie)],
        b"",
    ));
    let kept = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == backup.as_str())
        .unwrap_or_else(|| panic!("{backup} is not listed: {listed}"));
    assert_eq!(kept["kind"], "pre-update", "{kept}");
    let s = common::assert_ok(&common::get(&d, "/api/update/status"));
    assert_eq!(s["last_attempt"]["outcome"], "pending", "{s}");
    assert!(s.get("installing").is_none(), "{s}");
    // The helper gone: said plainly.
    helper.child.kill().unwrap();
    helper.child.wait().unwrap();
    std::fs::remove_file(&helper.socket).unwrap();
    let r = upload(&d, Some(&cookie), "", &good);
    common::assert_error(&r, 503, "update_unavailable");
}
