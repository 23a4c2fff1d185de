//! The helm screen in the boot test: the kiosk's picture, taken with QEMU's screendump from
//! the virtual display, compared with a reference rendering of the same page by headless
//! Chromium on the host (tests/pages/reference.mjs). The pictures are kept in the work
//! folder and named in the test output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::boot::Guest;
use crate::{repo, run};

/// A picture as grey levels.
pub struct Shot {
    pub width: usize,
    pub height: usize,
    grey: Vec<u8>,
}

fn grey(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 299 + g as u32 * 587 + b as u32 * 114) / 1000) as u8
}

/// QEMU's screendump: binary PPM (P6, maxval 255).
pub fn read_ppm(path: &Path) -> Shot {
    let bytes = std::fs::read(path).unwrap();
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i] == b'#' {
            while bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
    }
    assert_eq!(fields[0], "P6", "{}", path.display());
    let (width, height): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = &bytes[i + 1..];
    assert!(pixels.len() >= width * height * 3, "{}", path.display());
    let grey = pixels
        .chunks_exact(3)
        .take(width * height)
        .map(|p| grey(p[0], p[1], p[2]))
        .collect();
    Shot {
        width,
        height,
        grey,
    }
}

pub fn read_png(path: &Path) -> Shot {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("{}: {other:?}", path.display()),
    };
    let grey = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|p| grey(p[0], p[1], p[2]))
        .collect();
    Shot {
        width: info.width as usize,
        height: info.height as usize,
        grey,
    }
}

/// How alike two pictures of one size are over their top `rows`: the block means (16 px
/// squares) compared by correlation (the same structure) and mean difference (the same
/// brightness). Text rasterised by two machines differs in single pixels, never in blocks.
pub fn likeness(a: &Shot, b: &Shot, rows: usize) -> (f64, f64) {
    assert_eq!((a.width, a.height), (b.width, b.height), "sizes differ");
    const B: usize = 16;
    let means = |s: &Shot| -> Vec<f64> {
        let mut out = Vec::new();
        for by in 0..rows.min(s.height) / B {
            for bx in 0..s.width / B {
                let mut sum = 0u32;
                for y in by * B..(by + 1) * B {
                    for x in bx * B..(bx + 1) * B {
                        sum += s.grey[y * s.width + x] as u32;
                    }
                }
                out.push(sum as f64 / (B * B) as f64);
            }
        }
        out
    };
    let (x, y) = (means(a), means(b));
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy, mut diff) = (0.0, 0.0, 0.0, 0.0);
    for (p, q) in x.iter().zip(&y) {
        sxy += (p - mx) * (q - my);
        sxx += (p - mx) * (p - mx);
        syy += (q - my) * (q - my);
        diff += (p - q).abs();
    }
    let r = if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    };
    (r, diff / n)
}

/// Alike enough to be the same page: limits found from the kiosk's pictures against the
/// host's (r about 0.99, difference under 4 grey levels) with room for font hinting.
fn same_page(r: f64, diff: f64) -> bool {
    r >= 0.93 && diff <= 12.0
}

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

/// The rows of the screen every state of the main menu shares: the navigation bar and the
/// page's heading.
const HEADER_ROWS: usize = 144;

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
    let t = Instant::now();
    let mut last;
    loop {
        match crate::boot::screendump_at(qmp, &ppm) {
            Ok(()) => {
                let shot = read_ppm(&ppm);
                if (shot.width, shot.height) == (reference.width, reference.height) {
                    let (r, diff) = likeness(&shot, reference, HEADER_ROWS);
                    if same_page(r, diff) {
                        eprintln!(
                            "helm screen: the main menu is on the screen {:.1} s after power-on \
                             (top rows r = {r:.3}, difference {diff:.1}); picture {}",
                            started.elapsed().as_secs_f64(),
                            ppm.display()
                        );
                        return Ok(started.elapsed());
                    }
                    last = format!("r = {r:.3}, difference {diff:.1}");
                } else {
                    last = format!("the screen is {}×{}", shot.width, shot.height);
                }
            }
            Err(e) => last = e,
        }
        if t.elapsed() > Duration::from_secs(420) {
            return Err(format!(
                "the helm screen never showed the main menu ({last}); last picture {}",
                ppm.display()
            ));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shot(f: impl Fn(usize, usize) -> u8) -> Shot {
        let (width, height) = (64, 48);
        let grey = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        Shot {
            width,
            height,
            grey,
        }
    }

    #[test]
    fn likeness_tells_a_page_from_a_blank_or_another_one() {
        let page = shot(|x, y| if (x / 16 + y / 16) % 2 == 0 { 240 } else { 40 });
        let near = shot(|x, y| if (x / 16 + y / 16) % 2 == 0 { 230 } else { 50 });
        let blank = shot(|_, _| 255);
        let other = shot(|x, _| if x < 32 { 240 } else { 40 });
        assert!(same_page(
            likeness(&page, &near, 48).0,
            likeness(&page, &near, 48).1
        ));
        let (r, d) = likeness(&page, &blank, 48);
        assert!(!same_page(r, d), "{r} {d}");
        let (r, d) = likeness(&page, &other, 48);
        assert!(!same_page(r, d), "{r} {d}");
    }
}
