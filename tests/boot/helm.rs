//! The helm screen in the boot test: the kiosk's picture, taken with QEMU's screendump from
//! the virtual display, compared with a reference rendering of the same page by headless
//! Chromium on the host (tests/pages/reference.mjs). The pictures are kept in the work
//! folder and named in the test output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::boot::Guest;
use crate::screen::{Shot, likeness, read_png, read_ppm, same_page, wait_for_top};
use crate::{repo, run};

/// The main menu rendered by headless Chromium on the host, through the guest's forwarded
/// port (a client on the network: no first-use panel).
pub fn reference(port: u16, work: &Path) -> (PathBuf, Shot) {
    reference_as(port, work, "helm-reference")
}

/// The page the guest serves at `/`, rendered on the host as `work/NAME.png`.
pub fn reference_as(port: u16, work: &Path, name: &str) -> (PathBuf, Shot) {
    let out = work.join(format!("{name}.png"));
    run(Command::new("node")
        .arg(repo().join("tests/pages/reference.mjs"))
        .arg(format!("http://127.0.0.1:{port}/"))
        .args(["1280", "800"])
        .arg(&out));
    let shot = read_png(&out);
    (out, shot)
}

/// Takes the screen behind `qmp` every two seconds until its top matches the reference's
/// top; returns the time from `started` (power-on), and keeps that picture as `name`.
pub fn wait_for_menu_at(
    qmp: &Path,
    started: Instant,
    reference: &Shot,
    work: &Path,
    name: &str,
) -> Result<Duration, String> {
    let ppm = work.join(format!("{name}.ppm"));
    wait_for_top(
        qmp,
        started,
        reference,
        &ppm,
        Duration::from_secs(2),
        Duration::from_secs(420),
    )
}

/// [`wait_for_menu_at`] for `guest`, failing the test when the menu never shows.
pub fn wait_for_menu(guest: &Guest, reference: &Shot, work: &Path, name: &str) -> Duration {
    wait_for_menu_at(guest.qmp_path(), guest.started, reference, work, name)
        .unwrap_or_else(|e| panic!("{e}\n{}", guest.console_tail()))
}

/// Watches the screen on a thread of its own from power-on, while the other checks run:
/// the time to the menu is measured from the screen, not from when a check looked.
pub struct Watcher(std::thread::JoinHandle<Result<Duration, String>>);

impl Watcher {
    pub fn start(guest: &Guest, reference: &Path, work: &Path) -> Watcher {
        let (qmp, started) = (guest.qmp_path().to_owned(), guest.started);
        let (reference, work) = (reference.to_owned(), work.to_owned());
        Watcher(std::thread::spawn(move || {
            wait_for_menu_at(
                &qmp,
                started,
                &read_png(&reference),
                &work,
                "helm-first-boot",
            )
        }))
    }

    /// The time from power-on to the menu on the screen.
    pub fn shown(self) -> Duration {
        self.0
            .join()
            .expect("the screen watcher ran")
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The whole screen against the reference, once the owner exists and the first-use panel
/// is gone: the same page.
pub fn whole_screen_matches(guest: &Guest, reference: &Shot, work: &Path) {
    screen_shows(
        guest,
        reference,
        work,
        "helm-owner",
        Duration::from_secs(60),
    );
}

/// Takes the whole screen every two seconds until it is the reference's page, within
/// `limit`; keeps the last picture as `work/NAME.ppm` and returns when the page was there,
/// from power-on.
pub fn screen_shows(
    guest: &Guest,
    reference: &Shot,
    work: &Path,
    name: &str,
    limit: Duration,
) -> Duration {
    let ppm = work.join(format!("{name}.ppm"));
    let t = Instant::now();
    loop {
        let seen = guest.screendump(&ppm).map(|()| read_ppm(&ppm));
        let (r, diff) = match &seen {
            Ok(shot) if (shot.width, shot.height) == (reference.width, reference.height) => {
                likeness(shot, reference, shot.height)
            }
            _ => (0.0, 255.0),
        };
        if same_page(r, diff) {
            eprintln!(
                "helm screen: the whole screen matches the reference {:.1} s after power-on \
                 (r = {r:.3}, difference {diff:.1}); picture {}",
                guest.started.elapsed().as_secs_f64(),
                ppm.display()
            );
            return guest.started.elapsed();
        }
        assert!(
            t.elapsed() < limit,
            "the helm screen is not the page (r = {r:.3}, difference {diff:.1}, {}); picture \
             {}\n{}",
            seen.err().unwrap_or_default(),
            ppm.display(),
            guest.console_tail()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Inside, through `sh` (a shell in the guest with sudo): the kiosk runs where the login
/// prompt would be, what it holds in memory, and that it comes back when it dies.
pub fn kiosk_inside(guest: &Guest, reference: &Shot, work: &Path, sh: impl Fn(&str) -> String) {
    // What the kiosk and its browser said since power-on, kept beside the pictures.
    let journal = sh(
        "sudo -n journalctl -b --no-pager -o short-monotonic -u d3kos-kiosk.service \
         -u d3kosd.service -u 'user@*.service' -u systemd-logind.service || true",
    );
    let kept = work.join("kiosk-journal.txt");
    std::fs::write(&kept, &journal).unwrap();
    eprintln!("helm screen: the kiosk's journal {}", kept.display());
    assert_eq!(
        sh("systemctl is-active d3kos-kiosk.service").trim(),
        "active"
    );
    let getty = sh("systemctl is-active getty@tty1.service || true");
    assert_ne!(getty.trim(), "active", "a login prompt on the helm screen");
    let rss_kib: u64 = sh("ps -C cage,chromium,chrome_crashpad -o rss= || true")
        .split_whitespace()
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // RSS counts the pages Chromium's processes share once per process; PSS shares them out.
    let pss_kib: u64 = sh(
        "for p in $(pgrep -x cage) $(pgrep -x chromium) $(pgrep -x chrome_crashpad); do \
         sudo -n awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup; done || true",
    )
    .split_whitespace()
    .filter_map(|v| v.parse::<u64>().ok())
    .sum();
    let processes = sh("ps -C cage,chromium,chrome_crashpad -o comm= | sort | uniq -c | xargs");
    // The session (pam_systemd) puts the kiosk's processes in its user's slice.
    let slice = sh("systemctl show -P MemoryCurrent user-$(id -u d3kos-helm).slice");
    eprintln!(
        "helm screen: kiosk memory: PSS {:.0} MiB, RSS summed {:.0} MiB ({}), its user slice \
         {:.0} MiB with page cache",
        pss_kib as f64 / 1024.0,
        rss_kib as f64 / 1024.0,
        processes.trim(),
        slice.trim().parse::<f64>().unwrap_or(0.0) / 1048576.0
    );
    assert!(rss_kib > 0, "no kiosk processes");

    // The compositor killed (the browser goes with it): systemd starts both again and the
    // menu comes back.
    let before = sh("systemctl show -P MainPID d3kos-kiosk.service");
    sh("sudo -n pkill -KILL -x cage");
    let t = Instant::now();
    loop {
        let now = sh("systemctl show -P MainPID d3kos-kiosk.service");
        if now.trim() != before.trim() && now.trim() != "0" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the kiosk did not come back after it was killed"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let back = Instant::now();
    // The menu is found by its top rows, as after power-on.
    wait_for_menu(guest, reference, work, "helm-after-kill");
    eprintln!(
        "helm screen: killed, restarted by systemd, the menu back {:.1} s after the restart",
        back.elapsed().as_secs_f64()
    );
}
