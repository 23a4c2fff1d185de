//! The boot test harness: boots a built image in QEMU the way the board's loader would, with
//! the kernel, initramfs and command line read from the boot partition that the image's own
//! autoboot.txt names (no mounts), the serial console in a log file, and the appliance's
//! port and SSH forwarded to 127.0.0.1 only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::screen::{qmp_at, screendump_at};

const BIN: &str = env!("CARGO_BIN_EXE_d3kos-build");

/// What the host machine emulates the guest with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation with a named CPU model.
    Kvm(&'static str),
    Tcg,
}

/// The boot partition autoboot.txt names outside its `[tryboot]` section (Raspberry Pi
/// bootloader docs, "autoboot.txt"); `tryboot` picks the one in `[tryboot]`.
pub fn autoboot_partition(text: &str, tryboot: bool) -> u32 {
    let mut section = "all".to_owned();
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
        } else if let Some(n) = line.strip_prefix("boot_partition=") {
            let wanted = if tryboot {
                section == "tryboot"
            } else {
                section == "all"
            };
            if wanted {
                found = n.trim().parse().ok();
            }
        }
    }
    found.unwrap_or_else(|| panic!("autoboot.txt names no boot partition:\n{text}"))
}

/// The file `spec` (NUMBER:PATH) from a FAT partition; `Err` says why not.
fn inspect_cat_if(image: &Path, spec: &str) -> Result<Vec<u8>, String> {
    let out = Command::new(BIN)
        .arg("inspect")
        .arg(image)
        .arg("--cat")
        .arg(spec)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The firmware's part at power-on, for the QEMU boards: autoboot.txt's default partition,
/// or once the one under `[tryboot]` when the updater left the one-time flag file on the
/// config partition (removed here, as the Pi firmware clears its flag); a try is told to the
/// kernel on its command line, where the Pi firmware tells it in the device tree. Returns
/// the boot files and whether this is a try.
pub fn firmware(disk: &Path, config_start: u64, work: &Path) -> (BootFiles, bool) {
    let autoboot = String::from_utf8(inspect_cat(disk, "1:autoboot.txt")).unwrap();
    let trying = inspect_cat_if(disk, "1:tryboot").is_ok();
    let n = autoboot_partition(&autoboot, trying);
    if trying {
        let out = Command::new("mdel")
            .arg("-i")
            .arg(format!("{}@@{config_start}", disk.display()))
            .arg("::tryboot")
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mdel: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut files = copy_boot_files(disk, work, n, "vmlinuz", "initrd.img");
    if trying {
        files.cmdline.push_str(" d3kos.tryboot=1");
    }
    (files, trying)
}

fn inspect_cat(image: &Path, spec: &str) -> Vec<u8> {
    inspect_cat_if(image, spec).unwrap_or_else(|e| panic!("inspect --cat {spec}: {e}"))
}

/// Kernel, initramfs and command line as the loader would take them.
#[derive(Debug)]
pub struct BootFiles {
    pub partition: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
}

pub fn boot_files(disk: &Path, work: &Path) -> BootFiles {
    let n = autoboot_partition(
        &String::from_utf8(inspect_cat(disk, "1:autoboot.txt")).unwrap(),
        false,
    );
    copy_boot_files(disk, work, n, "vmlinuz", "initrd.img")
}

/// What the Raspberry Pi firmware would load: the boot partition autoboot.txt names, the
/// kernel and initramfs its config.txt names (`kernel=`, `initramfs NAME followkernel`),
/// and its cmdline.txt.
pub fn pi_boot_files(disk: &Path, work: &Path) -> BootFiles {
    let n = autoboot_partition(
        &String::from_utf8(inspect_cat(disk, "1:autoboot.txt")).unwrap(),
        false,
    );
    let config = String::from_utf8(inspect_cat(disk, &format!("{n}:config.txt"))).unwrap();
    let named = |key: &str| {
        config
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("config.txt names no `{key}`:\n{config}"))
            .to_owned()
    };
    copy_boot_files(disk, work, n, &named("kernel="), &named("initramfs "))
}

/// The kernel and initramfs of boot partition `n` copied into `work`, with its cmdline.txt.
fn copy_boot_files(disk: &Path, work: &Path, n: u32, kernel: &str, initrd: &str) -> BootFiles {
    let copy = |name: &str, dest: &str| {
        let to = work.join(dest);
        std::fs::write(&to, inspect_cat(disk, &format!("{n}:{name}"))).unwrap();
        to
    };
    let cmdline = String::from_utf8(inspect_cat(disk, &format!("{n}:cmdline.txt")))
        .unwrap()
        .trim()
        .to_owned();
    BootFiles {
        partition: n,
        kernel: copy(kernel, "vmlinuz"),
        initrd: copy(initrd, "initrd.img"),
        cmdline,
    }
}

/// A copy of the image on a larger virtual card, as when an owner flashes a big SD card.
pub fn make_disk(image: &Path, dest: &Path, extra: u64) {
    let status = Command::new("cp")
        .arg("--sparse=always")
        .arg(image)
        .arg(dest)
        .status()
        .unwrap();
    assert!(status.success());
    let f = std::fs::OpenOptions::new().write(true).open(dest).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len + extra).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running guest.
pub struct Guest {
    child: Child,
    pub serial: PathBuf,
    stderr: PathBuf,
    qmp: PathBuf,
    pub port: u16,
    /// The host port forwarded to the guest's sshd.
    pub ssh_port: u16,
    pub started: Instant,
    pub accel: Accel,
}

/// Signs of a guest kernel that the host's virtualisation broke: on the console, or from
/// QEMU itself (a KVM that cannot emulate an instruction the kernel uses stops the vCPU).
const CRASHES: &[&str] = &[
    "Kernel panic",
    "invalid opcode",
    "general protection fault",
    "Oops:",
    "KVM internal error",
    "emulation failure",
];

impl Guest {
    pub fn start(
        arch: &str,
        disk: &Path,
        files: &BootFiles,
        accel: Accel,
        work: &Path,
        tag: &str,
        usb_stick: Option<&Path>,
    ) -> Guest {
        let serial = work.join(format!("serial-{tag}.log"));
        let qmp = work.join(format!("qmp-{tag}.sock"));
        let stderr = work.join(format!("qemu-{tag}.err"));
        let _ = std::fs::remove_file(&qmp);
        let port = free_port();
        let ssh_port = std::iter::repeat_with(free_port)
            .find(|&p| p != port)
            .unwrap();
        let (program, machine, console) = match arch {
            "arm64" => ("qemu-system-aarch64", "virt", "ttyAMA0"),
            _ => ("qemu-system-x86_64", "q35", "ttyS0"),
        };
        let mut cmd = Command::new(program);
        // amd64 has a screen (bochs-drm, as the board says `display = true`) and runs the
        // helm screen's browser beside the appliance.
        let memory = if arch == "arm64" { "1024" } else { "2048" };
        cmd.args([
            "-machine",
            machine,
            "-m",
            memory,
            "-smp",
            "2",
            "-display",
            "none",
            "-no-reboot",
        ]);
        match &accel {
            Accel::Kvm(cpu) => cmd.args(["-accel", "kvm", "-cpu", cpu]),
            Accel::Tcg if arch == "arm64" => {
                cmd.args(["-accel", "tcg,thread=multi", "-cpu", "cortex-a72"])
            }
            Accel::Tcg => cmd.args(["-accel", "tcg,thread=multi", "-cpu", "max"]),
        };
        cmd.arg("-kernel")
            .arg(&files.kernel)
            .arg("-initrd")
            .arg(&files.initrd)
            .arg("-append")
            .arg(format!(
                "{} console={console},115200 systemd.show_status=1",
                files.cmdline
            ))
            .arg("-drive")
            .arg(format!(
                "file={},format=raw,if=virtio,cache=unsafe",
                disk.display()
            ))
            .arg("-netdev")
            .arg(format!(
                "user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:80,hostfwd=tcp:127.0.0.1:{ssh_port}-:22"
            ))
            .args(["-device", "qemu-xhci,id=xhci"]);
        if let Some(stick) = usb_stick {
            cmd.arg("-drive")
                .arg(format!(
                    "if=none,id=stick,format=raw,cache=unsafe,file={}",
                    stick.display()
                ))
                .args(["-device", "usb-storage,bus=xhci.0,drive=stick"]);
        }
        if arch != "arm64" {
            // The helm screen's size in the page checks; bochs-drm offers it as the
            // preferred mode, which the compositor takes.
            cmd.args(["-vga", "none", "-device", "VGA,xres=1280,yres=800"]);
        }
        // The hardware watchdog the image's systemd drives; with -no-reboot, its reset ends
        // QEMU as a restart does, and the harness powers on again.
        cmd.args(["-device", "i6300esb", "-action", "watchdog=reset"]);
        cmd.args(["-device", "virtio-net-pci,netdev=net0,romfile="])
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .args(["-monitor", "none"])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{program}: {e}"));
        Guest {
            child,
            serial,
            stderr,
            qmp,
            port,
            ssh_port,
            started: Instant::now(),
            accel,
        }
    }

    /// The console so far, without the colour escapes systemd's status lines carry.
    pub fn console(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(
            &std::fs::read(&self.serial).unwrap_or_default(),
        ))
    }

    /// The console so far, for failure messages: its last lines.
    pub fn console_tail(&self) -> String {
        let text = self.console();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    pub fn crashed(&self) -> bool {
        let text = self.console()
            + &String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default());
        CRASHES.iter().any(|c| text.contains(c))
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits until the appliance answers on the forwarded port; returns how long that took
    /// from the start of the guest. `Err` when the guest crashed or exited first.
    pub fn wait_ready(&mut self, limit: Duration) -> Result<Duration, String> {
        while self.started.elapsed() < limit {
            if let Some(status) = self.exited() {
                let err = String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default())
                    .into_owned();
                return Err(format!(
                    "QEMU exited ({status}): {err}\n{}",
                    self.console_tail()
                ));
            }
            if self.crashed() {
                let err = String::from_utf8_lossy(&std::fs::read(&self.stderr).unwrap_or_default())
                    .into_owned();
                return Err(format!(
                    "the guest crashed: {}\n{}",
                    err.lines().take(3).collect::<Vec<_>>().join(" / "),
                    self.console_tail()
                ));
            }
            if let Some((code, _)) = http(self.port, "GET", "/api/version", None, None)
                && code > 0
            {
                return Ok(self.started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!(
            "no answer within {limit:?}:\n{}",
            self.console_tail()
        ))
    }

    /// A power cut: QEMU is killed (SIGKILL, no shutdown, nothing the guest had not yet
    /// written reaches the disk) as soon as the console shows `marker`. Returns how long after
    /// power-on that was. `Err` when the guest crashed, exited or never showed it.
    pub fn cut_at(&mut self, marker: &str, limit: Duration) -> Result<Duration, String> {
        while self.started.elapsed() < limit {
            if self.console().contains(marker) {
                let at = self.started.elapsed();
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Ok(at);
            }
            if let Some(status) = self.exited() {
                return Err(format!("QEMU exited ({status}):\n{}", self.console_tail()));
            }
            if self.crashed() {
                return Err(format!("the guest crashed:\n{}", self.console_tail()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "the console never said {marker:?} within {limit:?}:\n{}",
            self.console_tail()
        ))
    }

    /// A power cut `after` power-on (SIGKILL, as [`Guest::cut_at`]), or at once when that
    /// has passed; `false` when QEMU had ended by itself first.
    pub fn cut_after(&mut self, after: Duration) -> bool {
        while self.started.elapsed() < after {
            if self.exited().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let ran = self.exited().is_none();
        let _ = self.child.kill();
        let _ = self.child.wait();
        ran
    }

    fn qmp(&self, command: &str) {
        self.qmp_json(&format!("{{\"execute\":\"{command}\"}}"));
    }

    fn qmp_json(&self, command: &str) -> String {
        qmp_at(&self.qmp, command)
    }

    /// The guest's QMP socket, for a watcher on another thread.
    pub fn qmp_path(&self) -> &Path {
        &self.qmp
    }

    /// The guest's screen as QEMU's display device shows it, written to `ppm` (PPM, P6).
    pub fn screendump(&self, ppm: &Path) -> Result<(), String> {
        screendump_at(&self.qmp, ppm)
    }

    /// Waits for the guest to stop by itself (QEMU runs with -no-reboot: a restart ends it).
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < limit {
            if self.exited().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }

    /// Presses the virtual power button and waits for the guest to shut down. A press can
    /// be lost while the guest is busy, so it is pressed again; a guest that still runs is
    /// stopped by QEMU (its file systems then replay their journals on the next mount).
    /// Returns whether the guest shut itself down.
    pub fn power_down(mut self, limit: Duration) -> bool {
        for _ in 0..2 {
            self.qmp("system_powerdown");
            if self.wait_exit(limit / 2) {
                return true;
            }
        }
        eprintln!(
            "the guest did not power off within {limit:?}; stopping QEMU:\n{}",
            self.console_tail()
        );
        self.qmp("quit");
        self.wait_exit(Duration::from_secs(10));
        false
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A 64 MiB USB stick with a FAT file system, as an owner would plug in: the volume id
/// `4A1B-22F0` is the UUID udev reports.
pub fn make_usb_stick(path: &Path) {
    let _ = std::fs::remove_file(path);
    let out = Command::new("mkfs.vfat")
        .args(["-C", "-n", "BOATSTICK", "-i", "4A1B22F0"])
        .arg(path)
        .arg("65536")
        .output()
        .expect("mkfs.vfat runs (dosfstools)");
    assert!(
        out.status.success(),
        "mkfs.vfat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One HTTP request with curl: `(status, body)`, or `None` when nothing answered.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    jar: Option<&Path>,
) -> Option<(u16, String)> {
    http_with(port, method, path, body, jar, &[])
}

/// [`http`] with extra request headers (`Name: value`).
pub fn http_with(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    jar: Option<&Path>,
    headers: &[&str],
) -> Option<(u16, String)> {
    let mut cmd = Command::new("curl");
    for h in headers {
        cmd.arg("--header").arg(h);
    }
    cmd.args([
        "--silent",
        "--max-time",
        "30",
        "--write-out",
        "\n%{http_code}",
        "--request",
        method,
    ]);
    if let Some(jar) = jar {
        cmd.arg("--cookie").arg(jar).arg("--cookie-jar").arg(jar);
    }
    if let Some(b) = body {
        cmd.args(["--header", "Content-Type: application/json", "--data"])
            .arg(b.to_string());
    }
    cmd.arg(format!("http://127.0.0.1:{port}{path}"));
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_owned()))
}

/// How an SSH login to the guest ended.
pub enum Login {
    /// In, and the command succeeded: its output.
    Ran(String),
    /// In, and the command failed: its exit status and stderr.
    Failed(String),
    /// sshd refused the login: the methods it still offered (`Permission denied (publickey).`).
    Refused(Vec<String>),
    /// No sshd to talk to yet (not started, or its host keys still being made).
    NoAnswer(String),
}

/// Runs `cmd` as `user` over the forwarded SSH `port` with `key` alone (no agent, no
/// configuration, no prompts, the host key not kept), with extra `-o` options.
pub fn ssh(port: u16, key: &Path, user: &str, options: &[&str], cmd: &str) -> Login {
    let mut command = Command::new("ssh");
    command
        .args(["-F", "/dev/null", "-p", &port.to_string(), "-i"])
        .arg(key);
    for option in [
        "IdentitiesOnly=yes",
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "BatchMode=yes",
        "ConnectTimeout=10",
        "LogLevel=ERROR",
    ]
    .iter()
    .chain(options)
    {
        command.args(["-o", option]);
    }
    let out = command
        .arg(format!("{user}@127.0.0.1"))
        .arg(cmd)
        .stdin(Stdio::null())
        .output()
        .expect("ssh runs (openssh-client)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        return Login::Ran(stdout);
    }
    // ssh's own failures exit 255; "Permission denied (LIST)." names what sshd still offers.
    if out.status.code() == Some(255) {
        match stderr
            .split_once("Permission denied (")
            .and_then(|(_, rest)| rest.split_once(')'))
        {
            Some((methods, _)) => Login::Refused(methods.split(',').map(str::to_owned).collect()),
            None => Login::NoAnswer(stderr),
        }
    } else {
        Login::Failed(format!("{}: {stdout}{stderr}", out.status))
    }
}

/// [`ssh`] that must get in and succeed, waiting up to a minute for sshd (it may start a
/// little after the appliance answers); the command's output.
pub fn ssh_run(port: u16, key: &Path, user: &str, cmd: &str) -> String {
    let t = Instant::now();
    loop {
        let why = match ssh(port, key, user, &[], cmd) {
            Login::Ran(out) => return out,
            Login::Failed(why) => panic!("`{cmd}` as {user} over SSH: {why}"),
            Login::Refused(methods) => format!("refused; sshd offers {methods:?}"),
            Login::NoAnswer(why) => why,
        };
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no SSH login as {user} within a minute for `{cmd}`: {why}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// [`ssh`] that sshd must refuse, waiting up to a minute for sshd to answer; the methods
/// it still offered.
pub fn ssh_refused(port: u16, key: &Path, user: &str, options: &[&str]) -> Vec<String> {
    let t = Instant::now();
    loop {
        match ssh(port, key, user, options, "true") {
            Login::Refused(methods) => return methods,
            Login::NoAnswer(why) => assert!(
                t.elapsed() < Duration::from_secs(60),
                "no sshd answered within a minute: {why}"
            ),
            Login::Ran(_) | Login::Failed(_) => {
                panic!("SSH as {user} with {options:?} got in")
            }
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Removes ANSI escape sequences (`ESC [ … letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `KEY value` lines the first-boot identity step prints on the console, last one wins.
pub fn console_value(console: &str, key: &str) -> Option<String> {
    console
        .lines()
        .filter_map(|l| l.split_once(key).map(|(_, rest)| rest.trim().to_owned()))
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_escapes_are_stripped() {
        assert_eq!(
            strip_ansi(
                "[\u{1b}[0;32m  OK  \u{1b}[0m] Reached target \u{1b}[0;1;39mmulti-user.target\u{1b}[0m"
            ),
            "[  OK  ] Reached target multi-user.target"
        );
    }

    #[test]
    fn autoboot_names_the_partition_outside_and_inside_tryboot() {
        let text = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n";
        assert_eq!(autoboot_partition(text, false), 2);
        assert_eq!(autoboot_partition(text, true), 3);
    }
}
