//! A/B updates in the booted image, the harness playing the firmware: bundles of the next
//! releases served over HTTP to the running system, refused ones writing nothing, a healthy
//! one tried and committed, a broken one tried and rolled back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::boot::{Accel, Guest, console_value, firmware, http};
use crate::{BIN, repo, run, shipped};

/// The releases the round trip uses: the one the images ship (the default recipe's), the
/// next, and a broken one after that, so that a new version in the recipe needs no edit here.
pub struct Releases {
    pub shipped: String,
    pub next: String,
    pub broken: String,
}

pub fn releases() -> Releases {
    let shipped = shipped();
    let bumped = |by: u64| {
        let (head, last) = shipped.rsplit_once('.').expect("a version like 0.9.1.2");
        let last: u64 = last.parse().expect("a release version ends in a number");
        format!("{head}.{}", last + by)
    };
    Releases {
        next: bumped(1),
        broken: bumped(2),
        shipped,
    }
}

/// A minisign key pair made by minisign itself, the secret without a password.
pub fn keys(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (sk, pk) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    run(Command::new("minisign")
        .args(["-G", "-W", "-f", "-s"])
        .arg(&sk)
        .arg("-p")
        .arg(&pk));
    (sk, pk)
}

/// The bundles the guest is offered.
pub struct Bundles {
    pub dir: PathBuf,
}

/// Builds the next two releases of `board` with their bundles signed by `sk`: the next, and
/// a broken one whose appliance cannot start (its configuration is not TOML). Beside them:
/// the next signed by another key, with a flipped byte, and cut short.
pub fn bundles(board: &str, work: &Path, sk: &Path, pk: &Path) -> Bundles {
    let dir = work.join("bundles");
    std::fs::create_dir_all(&dir).unwrap();
    let broken = work.join("broken-overlay/etc/d3kos");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("appliance.toml"), "this is [not TOML\n").unwrap();
    let Releases { next, broken, .. } = releases();
    for (version, extra) in [
        (next.as_str(), None),
        (broken.as_str(), Some(work.join("broken-overlay"))),
    ] {
        let out = work.join(format!("out-{version}"));
        let t = std::time::Instant::now();
        let mut c = Command::new(BIN);
        c.current_dir(repo())
            .args([
                "build",
                "--board",
                board,
                "--formats",
                "img",
                "--release",
                version,
            ])
            .args(["--bundle-level", "3", "--out"])
            .arg(&out)
            .arg("--trust")
            .arg(pk)
            .arg("--key")
            .arg(sk);
        if let Some(o) = &extra {
            c.arg("--overlay").arg(o);
        }
        run(&mut c);
        let name = format!("d3kOS-{version}-{board}.d3kb");
        std::fs::rename(out.join(&name), dir.join(&name)).unwrap();
        eprintln!(
            "{board}: release {version} and its bundle built in {:.1} s ({} MB)",
            t.elapsed().as_secs_f64(),
            std::fs::metadata(dir.join(&name)).unwrap().len() >> 20
        );
        // Only the bundles are kept: the images are 1.5 GB each.
        std::fs::remove_dir_all(&out).unwrap();
    }
    let good = std::fs::read(dir.join(format!("d3kOS-{next}-{board}.d3kb"))).unwrap();
    let mut flipped = good.clone();
    let at = good.len() - good.len() / 3;
    flipped[at] ^= 0x40;
    std::fs::write(dir.join("flipped.d3kb"), flipped).unwrap();
    std::fs::write(dir.join("truncated.d3kb"), &good[..good.len() / 2]).unwrap();
    // The same bundle signed by another key: the manifest re-signed, payload unchanged.
    let (other, _) = keys(work, "other");
    let m = u32::from_le_bytes(good[8..12].try_into().unwrap()) as usize;
    let s = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
    let manifest = work.join("manifest.json");
    std::fs::write(&manifest, &good[16..16 + m]).unwrap();
    run(Command::new("minisign")
        .args(["-S", "-s"])
        .arg(&other)
        .arg("-m")
        .arg(&manifest));
    let sig = std::fs::read(work.join("manifest.json.minisig")).unwrap();
    let mut resigned = Vec::new();
    resigned.extend_from_slice(&good[..8]);
    resigned.extend_from_slice(&(m as u32).to_le_bytes());
    resigned.extend_from_slice(&(sig.len() as u32).to_le_bytes());
    resigned.extend_from_slice(&good[16..16 + m]);
    resigned.extend_from_slice(&sig);
    resigned.extend_from_slice(&good[16 + m + s..]);
    std::fs::write(dir.join("other-key.d3kb"), resigned).unwrap();
    Bundles { dir }
}

/// Serves `dir`'s files over HTTP/1.1 on the host's loopback, which the guest reaches as
/// 10.0.2.2; returns the port.
pub fn serve(dir: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let name = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/');
                match std::fs::File::open(dir.join(name)) {
                    Ok(mut f) if !name.contains("..") => {
                        let len = f.metadata().unwrap().len();
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                        );
                        let _ = std::io::copy(&mut f, &mut conn);
                    }
                    _ => {
                        let _ = conn.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                }
                let _ = conn.read(&mut [0u8; 1]);
            });
        }
    });
    port
}

/// Runs `cmd` in the guest through `shell`; its output and exit status.
fn inside(shell: &dyn Fn(&Guest, &str) -> String, g: &Guest, cmd: &str) -> (String, i32) {
    let out = shell(g, &format!("{cmd} 2>&1; echo \"exit=$?\""));
    let (text, code) = out.trim_end().rsplit_once("exit=").unwrap();
    (text.to_owned(), code.trim().parse().unwrap())
}

pub fn status(shell: &dyn Fn(&Guest, &str) -> String, g: &Guest) -> Value {
    let (out, code) = inside(shell, g, "sudo -n d3kosd update status");
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

pub fn version(g: &Guest) -> String {
    let (code, body) = http(g.port, "GET", "/api/version", None, None).unwrap();
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["version"].as_str().unwrap().to_owned()
}

/// Restarts the guest from inside and waits for QEMU to end (it runs with -no-reboot).
pub fn restart(shell: &dyn Fn(&Guest, &str) -> String, mut g: Guest) {
    // Two seconds later, so the SSH session that asks ends before sshd does.
    let (out, code) = inside(
        shell,
        &g,
        "sudo -n systemd-run --on-active=2 systemctl reboot",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        g.wait_exit(Duration::from_secs(300)),
        "the guest did not restart:\n{}",
        g.console_tail()
    );
}

/// A card in the harness: the machine it boots in, where it is, and its config partition
/// (where the firmware's part reads autoboot.txt and the one-time flag).
pub struct Card<'a> {
    pub arch: &'a str,
    pub disk: &'a Path,
    pub config_start: u64,
    pub work: &'a Path,
    pub accel: Accel,
}

impl Card<'_> {
    /// Power-on: the firmware's part picks the boot partition; the guest and whether it is a
    /// try.
    pub fn power_on(&self, tag: &str) -> (Guest, bool) {
        let (files, trying) = firmware(self.disk, self.config_start, self.work);
        eprintln!(
            "{}: {tag}: the firmware boots partition {} (try: {trying})",
            self.arch, files.partition
        );
        (
            Guest::start(
                self.arch,
                self.disk,
                &files,
                self.accel.clone(),
                self.work,
                tag,
                None,
            ),
            trying,
        )
    }
}

pub fn ready(mut g: Guest, what: &str) -> Guest {
    let t = g
        .wait_ready(Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!(
        "{what}: the appliance answers after {:.1} s",
        t.as_secs_f64()
    );
    g
}

/// The verdict the settle unit printed on the console.
pub fn verdict(g: &Guest, limit: Duration) -> Value {
    let t = std::time::Instant::now();
    loop {
        if let Some(line) = console_value(&g.console(), "{\"verdict\":") {
            return serde_json::from_str(&format!("{{\"verdict\":{line}"))
                .unwrap_or_else(|e| panic!("{e}: {line}"));
        }
        assert!(
            t.elapsed() < limit,
            "no verdict on the console:\n{}",
            g.console_tail()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// From a running `guest` of the shipped release: the refusals, the next installed, tried
/// and committed, the broken one installed from the committed try, failing and rolled back,
/// the next running after the restart that follows, a factory restore, and a hang reset.
/// Ends with the guest powered down.
pub fn round_trip(
    card: &Card,
    guest: Guest,
    bundles: &Bundles,
    shell: &dyn Fn(&Guest, &str) -> String,
    jar: &Path,
) {
    let arch = card.arch;
    let Releases {
        shipped,
        next,
        broken,
    } = releases();
    let (shipped, next, broken) = (shipped.as_str(), next.as_str(), broken.as_str());
    let port = serve(bundles.dir.clone());
    let url = |name: &str| format!("http://10.0.2.2:{port}/{name}");
    watchdog_armed(arch, shell, &guest);
    let before = status(shell, &guest);
    assert_eq!(before["running"], "a", "{before}");
    assert_eq!(before["committed"], "a", "{before}");
    for (name, says) in [
        ("other-key.d3kb", "does not trust"),
        ("flipped.d3kb", "damaged"),
        ("truncated.d3kb", "ends early"),
    ] {
        // `install` only: `check` reads a stream whole, a minute under TCG, and
        // appliance/tests/update.rs refuses every kind with both.
        let (out, code) = inside(
            shell,
            &guest,
            &format!("sudo -n d3kosd update install --no-reboot {}", url(name)),
        );
        assert_ne!(code, 0, "{name} was accepted: {out}");
        assert!(out.contains(says), "{name}: {out}");
        eprintln!("{arch}: {name} refused: {says}");
    }
    let after = status(shell, &guest);
    assert!(
        after["last_attempt"].is_null(),
        "a refused bundle left an attempt: {after}"
    );
    assert_ne!(after["b"]["state"], "installed", "{after}");

    // The next release, as the owner installs it from the web page: the appliance takes a backup, the
    // root helper (d3kos-update.socket) downloads and writes slot b, and restarts the device
    // into the try.
    let v2 = url(&format!("d3kOS-{next}-{}.d3kb", board_of(arch)));
    let t = std::time::Instant::now();
    let (answer, phases) = api_install(&guest, jar, &v2);
    assert_eq!(answer["data"]["slot"], "b", "{answer}");
    assert_eq!(answer["data"]["version"].as_str(), Some(next), "{answer}");
    assert!(
        phases.iter().any(|p| p == "installing"),
        "the status page never showed the install: {phases:?}"
    );
    eprintln!(
        "{arch}: {next} installed through POST /api/update/install in {:.1} s, after backup {} \
         (the status page showed {phases:?})",
        t.elapsed().as_secs_f64(),
        answer["data"]["backup"]
    );
    let (g, s) =
        restarted_into_a_committed_try(card, guest, shell, &format!("update-try-{next}"), "b");
    assert_eq!(s["a"]["version"].as_str(), Some(shipped), "{s}");
    assert_eq!(s["a"]["state"], "good", "{s}");
    assert_eq!(s["last_attempt"]["outcome"], "committed", "{s}");
    let log = boat_log(&g, jar);
    for says in [
        format!("{next} installed into slot B"),
        format!("{next} came up healthy in slot B"),
    ] {
        assert!(log.contains(&says), "the boat log lacks {says:?}: {log}");
    }
    eprintln!("{arch}: {next} tried and committed, both in the boat log");

    // The broken release, whose appliance does not start: tried, not committed, back to the
    // next, which also shows the commit of the next holding across a restart.
    let v3 = url(&format!("d3kOS-{broken}-{}.d3kb", board_of(arch)));
    let (out, code) = inside(
        shell,
        &g,
        &format!("sudo -n d3kosd update install --no-reboot {v3}"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("into slot A"), "{out}");
    restart(shell, g);
    let (mut g, trying) = card.power_on(&format!("update-try-{broken}"));
    assert!(trying);
    assert!(
        g.wait_exit(Duration::from_secs(900)),
        "the failing try did not restart:\n{}",
        g.console_tail()
    );
    let v = verdict(&g, Duration::from_secs(1));
    assert_eq!(v["verdict"], "rolled-back", "{v}");
    eprintln!("{arch}: {broken} rolled back: {}", v["reason"]);
    let (g, trying) = card.power_on(&format!("update-back-to-{next}"));
    assert!(!trying);
    let g = ready(g, &format!("back to {next}"));
    assert_eq!(version(&g), next);
    // Its verdict notes the rollback the broken try could not.
    let v = verdict(&g, Duration::from_secs(300));
    assert_eq!(v["verdict"], "steady", "{v}");
    let s = status(shell, &g);
    assert_eq!(
        (s["running"].as_str(), s["committed"].as_str()),
        (Some("b"), Some("b")),
        "{s}"
    );
    assert_eq!(s["a"]["state"], "bad", "{s}");
    assert_eq!(s["last_attempt"]["version"].as_str(), Some(broken), "{s}");
    assert_eq!(s["last_attempt"]["outcome"], "rolled-back", "{s}");
    let log = boat_log(&g, jar);
    assert!(
        log.contains(&format!("{broken} in slot A was not kept")),
        "the boat log lacks the rollback: {log}"
    );
    eprintln!("{arch}: {next} runs after the restart, committed; the rollback is in the boat log");

    // A factory restore from the web page: the data backup taken before the next release
    // restored, then the running next copied over the broken one in slot a, tried and
    // committed.
    let backup = answer["data"]["backup"].as_str().unwrap().to_owned();
    let t = std::time::Instant::now();
    let restored = owner_post(
        &g,
        jar,
        "/api/update/factory-restore",
        &serde_json::json!({ "backup": backup }).to_string(),
    );
    assert_eq!(restored["data"]["slot"], "a", "{restored}");
    assert_eq!(
        restored["data"]["version"].as_str(),
        Some(next),
        "{restored}"
    );
    assert_eq!(restored["data"]["restored"], backup.as_str(), "{restored}");
    eprintln!(
        "{arch}: factory restore through POST /api/update/factory-restore: backup {backup} \
         restored and {next} copied into slot a in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (g, s) = restarted_into_a_committed_try(card, g, shell, "factory-restore", "a");
    assert_eq!(s["b"]["version"].as_str(), Some(next), "{s}");
    let log = boat_log(&g, jar);
    assert!(
        log.contains(&format!(
            "Factory restore: {next} copied from slot B into slot A"
        )),
        "the boat log lacks the factory restore: {log}"
    );
    eprintln!("{arch}: the restored slot a runs {next}, committed; the owner signed in again");
    hang_is_reset(arch, shell, g);

    // After the reset the card powers on as after any cut: the committed slot, its release.
    let (g, trying) = card.power_on("after-the-hang");
    assert!(!trying, "the reset left a try arranged");
    let g = ready(g, "after the hang");
    runs_committed_next(shell, &g, "a");
    let clean = g.power_down(Duration::from_secs(120));
    assert!(clean, "the boot after the hang did not power off cleanly");
    eprintln!("{arch}: after the hang slot a came back with {next}, and powered off cleanly");
}

/// After the helper arranged a try of the next release in `slot`: the device restarts by itself, the
/// firmware's part boots the try, and its verdict commits it; the guest and its status.
fn restarted_into_a_committed_try(
    card: &Card,
    mut guest: Guest,
    shell: &dyn Fn(&Guest, &str) -> String,
    tag: &str,
    slot: &str,
) -> (Guest, Value) {
    assert!(
        guest.wait_exit(Duration::from_secs(300)),
        "the helper did not restart the device into the try:\n{}",
        guest.console_tail()
    );
    let (g, trying) = card.power_on(tag);
    assert!(trying, "{tag}: no try was arranged");
    let g = ready(g, &format!("{tag}: the try"));
    let v = verdict(&g, Duration::from_secs(400));
    assert_eq!(v["verdict"], "committed", "{v}");
    let s = runs_committed_next(shell, &g, slot);
    (g, s)
}

/// The guest runs the next release from `slot`, which is the committed one; its update status.
fn runs_committed_next(shell: &dyn Fn(&Guest, &str) -> String, g: &Guest, slot: &str) -> Value {
    assert_eq!(version(g), releases().next);
    let s = status(shell, g);
    assert_eq!(
        (s["running"].as_str(), s["committed"].as_str()),
        (Some(slot), Some(slot)),
        "{s}"
    );
    s
}

/// `POST path` with JSON `body` as the owner; the answer, which must be 200.
fn owner_post(g: &Guest, jar: &Path, path: &str, body: &str) -> Value {
    let out = run(Command::new("curl")
        .args([
            "--silent",
            "--max-time",
            "900",
            "--write-out",
            "\n%{http_code}",
        ])
        .arg("--cookie")
        .arg(jar)
        .args(["--header", "Content-Type: application/json", "--data"])
        .arg(body)
        .arg(format!("http://127.0.0.1:{}{path}", g.port)));
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(code, "200", "POST {path}: {body}");
    serde_json::from_str(body).unwrap()
}

/// `POST /api/update/install {"url": …}` as the owner, the status page watched meanwhile;
/// the answer and the phases the status page showed.
fn api_install(g: &Guest, jar: &Path, bundle: &str) -> (Value, Vec<String>) {
    let port = g.port;
    let post = {
        let jar = jar.to_owned();
        let body = serde_json::json!({ "url": bundle }).to_string();
        std::thread::spawn(move || {
            run(Command::new("curl")
                .args([
                    "--silent",
                    "--max-time",
                    "900",
                    "--write-out",
                    "\n%{http_code}",
                ])
                .arg("--cookie")
                .arg(&jar)
                .args(["--header", "Content-Type: application/json", "--data"])
                .arg(body)
                .arg(format!("http://127.0.0.1:{port}/api/update/install")))
        })
    };
    let mut phases: Vec<String> = Vec::new();
    while !post.is_finished() {
        if let Some((200, body)) = http(port, "GET", "/api/update/status", None, Some(jar)) {
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            if let Some(p) = v["data"]["installing"]["phase"].as_str()
                && phases.last().map(String::as_str) != Some(p)
            {
                phases.push(p.to_owned());
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let out = post.join().unwrap();
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(code, "200", "POST /api/update/install: {body}");
    (serde_json::from_str(body).unwrap(), phases)
}

/// The boat log's latest entries as the owner sees them, signed in afresh.
fn boat_log(g: &Guest, jar: &Path) -> String {
    let (code, body) = http(
        g.port,
        "POST",
        "/api/session",
        Some(&serde_json::json!({"username": crate::OWNER, "password": crate::PASSWORD})),
        Some(jar),
    )
    .unwrap();
    assert_eq!(code, 200, "sign-in: {body}");
    let (code, body) = http(g.port, "GET", "/api/boatlog?limit=50", None, Some(jar)).unwrap();
    assert_eq!(code, 200, "{body}");
    body
}

/// systemd drives the hardware watchdog: set to 15 s, with the device open in PID 1.
fn watchdog_armed(arch: &str, shell: &dyn Fn(&Guest, &str) -> String, g: &Guest) {
    let (set, _) = inside(shell, g, "systemctl show -p RuntimeWatchdogUSec --value");
    let (held, _) = inside(shell, g, "sudo -n ls -l /proc/1/fd | grep -c /dev/watchdog");
    let (said, _) = inside(
        shell,
        g,
        "ls /dev/watchdog*; cat /sys/class/watchdog/watchdog0/identity; \
         sudo -n journalctl -b -o cat | grep -i -e watchdog -e i6300",
    );
    assert_eq!(set.trim(), "15s", "RuntimeWatchdogUSec: {set}\n{said}");
    assert!(
        held.trim().parse::<u32>().unwrap_or(0) >= 1,
        "systemd does not hold the watchdog open ({held}):\n{said}"
    );
    eprintln!(
        "{arch}: watchdog armed (15 s, held by systemd): {}",
        said.trim().replace('\n', "; ")
    );
}

/// A hang: systemd frozen (its cgroup), so nobody pings the watchdog, which resets the
/// machine; nothing shuts down.
fn hang_is_reset(arch: &str, shell: &dyn Fn(&Guest, &str) -> String, mut g: Guest) {
    let (out, code) = inside(
        shell,
        &g,
        // Two seconds later, so the SSH session that asks has ended first.
        "sudo -n systemd-run --on-active=2 sh -c \
         'echo 1 > /sys/fs/cgroup/init.scope/cgroup.freeze'",
    );
    assert_eq!(code, 0, "{out}");
    let t = std::time::Instant::now();
    assert!(
        g.wait_exit(Duration::from_secs(180)),
        "the frozen system was not reset:\n{}",
        g.console_tail()
    );
    let console = g.console();
    assert!(
        !console.contains("reboot: Restarting system") && !console.contains("reboot: Power down"),
        "the system shut down instead of being reset:\n{}",
        g.console_tail()
    );
    eprintln!(
        "{arch}: a hang is reset by the watchdog {:.1} s after systemd froze",
        t.elapsed().as_secs_f64()
    );
}

/// The rpi4 image's d3kos_tryboot module, from outside: a relocatable aarch64 ELF whose
/// vermagic is the image's kernel.
pub fn tryboot_module_built(ko: &[u8], kernel: &str) {
    assert_eq!(&ko[..4], b"\x7fELF", "not an ELF file");
    assert_eq!((ko[4], ko[5]), (2, 1), "not 64-bit little-endian");
    let kind = u16::from_le_bytes([ko[16], ko[17]]);
    let machine = u16::from_le_bytes([ko[18], ko[19]]);
    assert_eq!(kind, 1, "not a relocatable object (ET_REL)");
    assert_eq!(machine, 183, "not aarch64 (EM_AARCH64)");
    let vermagic = format!("vermagic={kernel} ");
    assert!(
        ko.windows(vermagic.len()).any(|w| w == vermagic.as_bytes()),
        "not built for kernel {kernel}"
    );
    eprintln!(
        "rpi4: d3kos_tryboot.ko is an aarch64 module for {kernel} ({} bytes)",
        ko.len()
    );
}

/// The module in the arm64 guest, which has no Raspberry Pi firmware: loaded at boot, it says
/// so, and refuses to set the flag, so the updater refuses to start.
pub fn tryboot_module_inside(g: &Guest, shell: &dyn Fn(&Guest, &str) -> String) {
    let (out, code) = inside(shell, g, "systemctl is-active d3kos-modules.service");
    assert_eq!((out.trim(), code), ("active", 0), "d3kos-modules.service");
    let (said, _) = inside(
        shell,
        g,
        "sudo -n journalctl -k -b -o cat --grep d3kos_tryboot",
    );
    assert!(
        said.contains("no Raspberry Pi firmware here"),
        "the module did not say: {said}"
    );
    let (out, code) = inside(
        shell,
        g,
        "echo 1 | sudo -n tee /sys/module/d3kos_tryboot/parameters/flag",
    );
    assert_ne!(code, 0, "the flag was taken without a firmware: {out}");
    assert!(out.contains("No such device"), "{out}");
    eprintln!(
        "rpi4 as a virt machine: d3kos_tryboot loaded and says: {}",
        said.lines()
            .find(|l| l.contains("no Raspberry Pi firmware"))
            .unwrap_or_default()
            .trim()
    );
}

fn board_of(arch: &str) -> &'static str {
    if arch == "arm64" {
        "qemu-arm64"
    } else {
        "qemu-amd64"
    }
}
