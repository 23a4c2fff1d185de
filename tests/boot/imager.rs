//! Raspberry Pi Imager's customisation in the boot test: its cloud-init files planted on the
//! config partition, what they asked for checked inside over SSH, their secrets gone from
//! the card afterwards; and, on a card without them, no way in.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::boot::{Guest, ssh_refused, ssh_run};
use crate::table::Partition;
use crate::{fs_at, planned_partition, repo, run};

/// What user-data and network-config ask for (tests/fixture/imager).
const HOST: &str = "sailfish";
pub const USER: &str = "skipper";
const INSTANCE: &str = "rpi-imager-1764590000000";
const PASSWORD: &str = "fair winds 42";
const SALT: &str = "d3kosimager";
/// The WPA PSK Imager derives from "Marina Guest" and "correct horse battery".
const PSK: &str = "148e2b13b6bbcb955196d5610c8bf5ae5806768cc27b22c8626ff3fe5d2eacb1";
const WPA: &str = "/etc/wpa_supplicant/wpa_supplicant-wlan0.conf";

/// The console line of the first boot at which the boot test cuts the power: the
/// customisation has just been applied, its secrets are still on the card.
pub const CUT_AT: &str = "imager: applied host name";

/// The files Imager 2.x writes onto the first FAT partition.
const FILES: [&str; 4] = ["user-data", "network-config", "meta-data", "cmdline.txt"];

/// The customisation as Imager would write it for this test: its files with the test's
/// password hash and key filled in, and the key to log in with.
pub struct Imager {
    dir: PathBuf,
    pub key: PathBuf,
    hash: String,
}

/// `DISK@@OFFSET`: mtools' name for the FAT file system of partition `p`.
fn fat_at(disk: &Path, p: &Partition) -> String {
    format!("{}@@{}", disk.display(), p.start)
}

fn mtools(program: &str, disk: &Path, p: &Partition) -> Command {
    let mut cmd = Command::new(program);
    cmd.arg("-i")
        .arg(fat_at(disk, p))
        .env("MTOOLS_SKIP_CHECK", "1");
    cmd
}

/// The sha512crypt hash of `password`, as Imager puts in `passwd:`: from openssl, or from
/// mkpasswd (Debian's whois) where openssl is missing. The fixed salt keeps it the same
/// on every run.
fn sha512crypt(password: &str, salt: &str) -> String {
    let openssl = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, password])
        .output();
    let out = match openssl {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout).unwrap(),
        _ => run(Command::new("mkpasswd").args(["--method=sha-512", "--salt", salt, password])),
    };
    let hash = out.trim().to_owned();
    assert!(
        hash.starts_with(&format!("$6${salt}$")),
        "not sha512crypt: {hash}"
    );
    hash
}

/// Makes an ed25519 key at `path` for logging in as Imager's user.
fn keypair(path: &Path) -> String {
    run(Command::new("ssh-keygen")
        .args(["-t", "ed25519", "-N", "", "-q"])
        .args(["-C", "skipper@chart-table", "-f"])
        .arg(path));
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Imager 1.8's customisation (tests/fixture/imager-1.8): the user in a `users:` list with
/// a sha256crypt hash, password login allowed, no Wi-Fi and no meta-data.
pub struct Imager18 {
    user_data: PathBuf,
    key: PathBuf,
    hash: String,
}

impl Imager18 {
    const HOST: &str = "deckhand";
    const USER: &str = "mate";

    pub fn new(work: &Path) -> Imager18 {
        let key = work.join("id_ed25519_1_8");
        let public = keypair(&key);
        let out = run(Command::new("openssl").args(["passwd", "-5", "-salt", SALT, PASSWORD]));
        let hash = out.trim().to_owned();
        assert!(
            hash.starts_with(&format!("$5${SALT}$")),
            "not sha256crypt: {hash}"
        );
        let text =
            std::fs::read_to_string(repo().join("tests/fixture/imager-1.8/user-data")).unwrap();
        assert!(text.contains("@HASH@") && text.contains("@KEY@"), "{text}");
        let user_data = work.join("user-data-1.8");
        std::fs::write(
            &user_data,
            text.replace("@HASH@", &hash).replace("@KEY@", &public),
        )
        .unwrap();
        Imager18 {
            user_data,
            key,
            hash,
        }
    }

    pub fn plant(&self, disk: &Path, config: &Partition) {
        run(mtools("mcopy", disk, config)
            .arg("-o")
            .arg(&self.user_data)
            .arg("::/user-data"));
    }

    /// Runs `cmd` as Imager's user over SSH; its output.
    pub fn inside(&self, guest: &Guest, cmd: &str) -> String {
        ssh_run(guest.ssh_port, &self.key, Self::USER, cmd)
    }

    /// Inside the first boot: the host name, the user with its hash, key and passwordless
    /// sudo, and sshd offering password logins as `ssh_pwauth: true` asks.
    pub fn applied_inside(&self, guest: &Guest) {
        let sh = |cmd: &str| ssh_run(guest.ssh_port, &self.key, Self::USER, cmd);
        assert_eq!(sh("hostname").trim(), Self::HOST);
        let shadow = sh(&format!("sudo -n getent shadow {}", Self::USER));
        assert_eq!(
            shadow.split(':').nth(1).unwrap_or_default(),
            self.hash,
            "the hash from user-data"
        );
        let groups = sh("id -nG");
        assert!(
            groups.split_whitespace().any(|g| g == "sudo"),
            "{} is not in sudo: {groups}",
            Self::USER
        );
        let offered = ssh_refused(
            guest.ssh_port,
            &self.key,
            Self::USER,
            &[
                "PreferredAuthentications=password",
                "PubkeyAuthentication=no",
            ],
        );
        assert!(
            offered.iter().any(|m| m == "password"),
            "ssh_pwauth: true, but sshd offers {offered:?}"
        );
        eprintln!(
            "imager 1.8 customisation inside: host {}, user {} from the users: list \
             (sha256crypt hash, sudo), key login ok, password login offered",
            Self::HOST,
            Self::USER
        );
    }
}

impl Imager {
    /// Makes the test's ed25519 key and renders Imager's files into `work/imager`.
    pub fn new(work: &Path) -> Imager {
        let dir = work.join("imager");
        std::fs::create_dir_all(&dir).unwrap();
        let key = work.join("id_ed25519");
        let public = keypair(&key);
        let hash = sha512crypt(PASSWORD, SALT);
        let fixture = repo().join("tests/fixture/imager");
        for name in FILES {
            let text = std::fs::read_to_string(fixture.join(name)).unwrap();
            let text = if name == "user-data" {
                assert!(text.contains("@HASH@") && text.contains("@KEY@"), "{text}");
                text.replace("@HASH@", &hash).replace("@KEY@", &public)
            } else {
                text
            };
            std::fs::write(dir.join(name), text).unwrap();
        }
        Imager { dir, key, hash }
    }

    /// Writes the files onto the config partition of `disk`, as Imager does after writing
    /// the image.
    pub fn plant(&self, disk: &Path, config: &Partition) {
        for name in FILES {
            run(mtools("mcopy", disk, config)
                .arg("-o")
                .arg(self.dir.join(name))
                .arg(format!("::/{name}")));
        }
    }

    /// Runs `cmd` in the guest as Imager's user, over SSH with its key.
    pub fn inside(&self, guest: &Guest, cmd: &str) -> String {
        ssh_run(guest.ssh_port, &self.key, USER, cmd)
    }

    /// The hash `/etc/shadow` holds for the user, read through passwordless sudo.
    fn shadow_hash(&self, guest: &Guest) -> String {
        let line = self.inside(guest, &format!("sudo -n getent shadow {USER}"));
        line.split(':').nth(1).unwrap_or_default().to_owned()
    }

    /// Inside the first boot: the host name, the user with its hash, key and passwordless
    /// sudo, the Wi-Fi and the keyboard are applied; what d3kOS does not apply is listed in
    /// the public summary; sshd offers no password login (`ssh_pwauth: false`).
    pub fn applied_inside(&self, guest: &Guest) {
        assert_eq!(self.inside(guest, "hostname").trim(), HOST);
        let groups = self.inside(guest, "id -nG");
        assert!(
            groups.split_whitespace().any(|g| g == "sudo"),
            "{USER} is not in sudo: {groups}"
        );
        assert_eq!(
            self.shadow_hash(guest),
            self.hash,
            "the hash from user-data"
        );

        let text = self.inside(guest, "sudo -n cat /data/d3kos/imager/settings.json");
        eprintln!("imager settings: {text}");
        let settings: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("settings.json: {e}: {text}"));
        assert_eq!(settings["instance_id"], INSTANCE, "{settings}");
        assert_eq!(settings["hostname"], HOST, "{settings}");
        assert_eq!(settings["user"], USER, "{settings}");
        assert_eq!(settings["problems"], serde_json::json!([]), "{settings}");
        // The first-boot units are ordered without a cycle systemd had to break.
        let cycles = self.inside(
            guest,
            "sudo -n journalctl -b --no-pager | grep -c 'ordering cycle' || true",
        );
        assert_eq!(cycles.trim(), "0", "systemd broke an ordering cycle");
        // mDNS: avahi announces the host name Imager gave.
        let avahi = self.inside(
            guest,
            "sudo -n journalctl -b -u avahi-daemon --no-pager | grep 'Host name is' || true",
        );
        assert!(
            avahi.contains(&format!("Host name is {HOST}.local")),
            "avahi-daemon: {avahi}"
        );
        let ignored: Vec<&str> = settings["ignored"]
            .as_array()
            .unwrap_or_else(|| panic!("no ignored list: {settings}"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for key in ["packages", "apt", "runcmd"] {
            assert!(
                ignored.iter().any(|i| i.contains(key)),
                "{key} is not among the ignored: {ignored:?}"
            );
        }

        assert_eq!(
            self.inside(guest, &format!("sudo -n stat -c %a {WPA}"))
                .trim(),
            "600"
        );
        let wpa = self.inside(guest, &format!("sudo -n cat {WPA}"));
        assert!(
            // The SSID in hex, so any bytes are kept: "Marina Guest".
            wpa.contains("ssid=4d6172696e61204775657374")
                && wpa.lines().any(|l| l.trim() == format!("psk={PSK}")),
            "{WPA}:\n{wpa}"
        );
        let keyboard = self.inside(guest, "cat /etc/default/keyboard");
        assert!(
            keyboard.contains("XKBLAYOUT=\"de\"") && keyboard.contains("XKBMODEL=\"pc105\""),
            "/etc/default/keyboard:\n{keyboard}"
        );

        self.applied_once(guest);

        // Last: OpenSSH 9.8 and newer hold a failed login against its source address
        // (PerSourcePenalties), and every login here comes from QEMU's one user-mode address.
        let offered = ssh_refused(
            guest.ssh_port,
            &self.key,
            USER,
            &[
                "PreferredAuthentications=password",
                "PubkeyAuthentication=no",
            ],
        );
        assert!(
            !offered.iter().any(|m| m == "password"),
            "sshd still offers password logins: {offered:?}"
        );
        eprintln!(
            "imager customisation inside: host {HOST}, user {USER} (sudo), key login ok, \
             password login refused (sshd offers {offered:?})"
        );
    }

    /// After the first boot: the secrets are gone from the card's FAT partition, from its
    /// files and from every sector of it (no copy left in a freed cluster), the file system
    /// is clean, and the rest of Imager's files are still there.
    pub fn secrets_gone(&self, disk: &Path, config: &Partition, work: &Path) {
        let bytes = partition_bytes(disk, config);
        for secret in [self.hash.as_str(), PSK] {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{secret} is still in a sector of the config partition"
            );
        }
        let fsck = fsck_fat(&bytes, work);
        assert!(
            fsck.clean,
            "fsck.fat -n on the config partition: {}",
            fsck.text
        );
        let read = |name: &str| run(mtools("mtype", disk, config).arg(format!("::/{name}")));
        for name in ["user-data", "network-config"] {
            let text = read(name);
            // The keys stay, their values are blanked where they lay.
            for key in ["passwd:", "password:"] {
                assert!(
                    !text.lines().any(|l| l
                        .trim_start()
                        .strip_prefix(key)
                        .is_some_and(|v| !v.trim().is_empty())),
                    "{name} still holds a value for {key}\n{text}"
                );
            }
            for secret in [self.hash.as_str(), PSK] {
                assert!(
                    !text.contains(secret),
                    "{name} still holds {secret}:\n{text}"
                );
            }
        }
        assert!(
            read("user-data").contains(&format!("hostname: {HOST}")),
            "{}",
            read("user-data")
        );
        assert_eq!(
            read("meta-data"),
            std::fs::read_to_string(self.dir.join("meta-data")).unwrap(),
            "meta-data changed"
        );
        eprintln!("imager files on the card: no password hash, no Wi-Fi key left");
    }

    /// Inside the second boot: the record re-applied the customisation, nothing twice.
    pub fn kept_inside(&self, guest: &Guest) {
        assert_eq!(self.inside(guest, "hostname").trim(), HOST);
        self.applied_once(guest);
        assert_eq!(self.shadow_hash(guest), self.hash, "the hash kept");
        eprintln!("imager customisation kept: host {HOST}, user {USER}, key login ok");
    }

    /// Each thing the customisation adds is there once, however often it was applied (a cut
    /// first boot and the boots after it each apply the record).
    fn applied_once(&self, guest: &Guest) {
        let count = |what: &str, cmd: &str| {
            let n = self.inside(guest, &format!("{cmd} || true"));
            assert_eq!(n.trim(), "1", "{what}: {cmd} counts {n}");
        };
        count("the user", &format!("grep -c '^{USER}:' /etc/passwd"));
        count(
            "its password",
            &format!("sudo -n grep -c '^{USER}:' /etc/shadow"),
        );
        count("its group", &format!("grep -c '^{USER}:' /etc/group"));
        count(
            "its membership of sudo",
            &format!("getent group sudo | cut -d: -f4 | tr , '\\n' | grep -cx {USER}"),
        );
        count(
            "its SSH key",
            "grep -c 'skipper@chart-table' ~/.ssh/authorized_keys",
        );
        count(
            "the Wi-Fi network",
            &format!("sudo -n grep -c 'network={{' {WPA}"),
        );
        count(
            "the host name in /etc/hosts",
            &format!("grep -cw {HOST} /etc/hosts"),
        );
        eprintln!(
            "imager customisation applied once: {USER} in passwd, shadow, group and sudo, its \
             key, the Wi-Fi network and {HOST} in /etc/hosts each once"
        );
    }

    /// What the power cut left on `disk`, seen from outside: whether the password hash was
    /// still in the config partition's sectors, what fsck.fat found there (FAT has no
    /// journal), and whether the record had reached the data partition. Printed, not
    /// asserted: the boot after the cut has to finish either way.
    pub fn after_cut(&self, disk: &Path, image: &Path, work: &Path) {
        let config = planned_partition(image, disk, "config");
        let bytes = partition_bytes(disk, &config);
        let fsck = fsck_fat(&bytes, work);
        let data = planned_partition(image, disk, "data");
        let listing = Command::new("debugfs")
            .arg("-R")
            .arg("ls -l /d3kos/imager")
            .arg(fs_at(disk, &data))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let files: Vec<&str> = listing
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .filter(|n| n.ends_with(".json"))
            .collect();
        eprintln!(
            "after the cut: the password hash is {} the config partition's sectors; fsck.fat \
             -n there: {}; the data partition's /d3kos/imager holds {:?}",
            if contains(&bytes, self.hash.as_bytes()) {
                "still in"
            } else {
                "gone from"
            },
            fsck.summary(),
            files
        );
    }
}

/// The bytes of partition `p` of `disk`.
fn partition_bytes(disk: &Path, p: &Partition) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(disk).unwrap();
    f.seek(SeekFrom::Start(p.start)).unwrap();
    let mut bytes = vec![0; p.size as usize];
    f.read_exact(&mut bytes).unwrap();
    bytes
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What `fsck.fat -n` (check, change nothing) says of a FAT file system.
struct Fsck {
    clean: bool,
    text: String,
}

impl Fsck {
    /// Its findings on one line, or "clean".
    fn summary(&self) -> String {
        if self.clean {
            return "clean".into();
        }
        self.text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("fsck.fat") && !l.starts_with("Leaving"))
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

fn fsck_fat(bytes: &[u8], work: &Path) -> Fsck {
    let copy = work.join("config-partition.img");
    std::fs::write(&copy, bytes).unwrap();
    let out = Command::new("fsck.fat")
        .arg("-n")
        .arg(&copy)
        .output()
        .expect("fsck.fat runs (dosfstools)");
    let _ = std::fs::remove_file(&copy);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // Exit 0 with nothing to fix; a dirty bit alone is a file system not unmounted.
    let clean = out.status.success() && !text.contains("Dirty bit");
    Fsck { clean, text }
}

/// Without customisation nobody gets in with the test's key.
pub fn no_way_in(guest: &Guest, key: &Path) {
    for user in [USER, "d3kos", "root"] {
        let offered = ssh_refused(guest.ssh_port, key, user, &[]);
        eprintln!("without customisation: SSH as {user} refused (sshd offers {offered:?})");
    }
}

/// Without customisation no account has a usable password: every password field of
/// `/etc/shadow` is `*` or starts with `!` (locked).
pub fn shadow_locked(shadow: &str) {
    let mut accounts = Vec::new();
    for line in shadow.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split(':');
        let (name, password) = (fields.next().unwrap(), fields.next().unwrap_or(""));
        assert!(
            password == "*" || password.starts_with('!'),
            "{name} has a usable password (or none): {password:?}"
        );
        accounts.push(name);
    }
    assert!(!accounts.is_empty(), "/etc/shadow is empty");
    eprintln!(
        "without customisation: no usable password in /etc/shadow for {}",
        accounts.join(", ")
    );
}
