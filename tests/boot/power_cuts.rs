//! Power cuts in the booted image, a long campaign (`ci/power-cuts`, or `D3KOS_POWER_CUTS=1
//! ci/test`): QEMU is killed at random moments while a bundle is written and while its try
//! boots and commits. After each cut the harness plays the firmware at power-on (autoboot.txt
//! and the one-time flag as the cut left them), and the device must come up in its
//! committed slot, holding a release that has run healthy; the next update then starts from
//! there.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::boot::{Guest, ssh};
use super::update::{
    Bundles, Card, Releases, ready, releases, restart, serve, status, verdict, version,
};

/// A small deterministic generator (xorshift64*): the same seed cuts at the same moments.
struct Moments(u64);

impl Moments {
    /// A fraction in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// After a cut: powers on until a boot settles without asking for a restart; that boot's
/// guest and the verdicts on the way.
fn come_back(card: &Card, tag: &str) -> (Guest, Vec<String>) {
    let mut verdicts = Vec::new();
    for boot in 0..3 {
        let (g, trying) = card.power_on(&format!("{tag}-{boot}"));
        let mut g = ready(g, &format!("{tag}: power-on {boot} (try: {trying})"));
        let v = verdict(&g, Duration::from_secs(400));
        verdicts.push(v["verdict"].as_str().unwrap_or_default().to_owned());
        if v["verdict"] != "rolled-back" {
            return (g, verdicts);
        }
        assert!(
            g.wait_exit(Duration::from_secs(300)),
            "{tag}: a rolled-back try did not restart:\n{}",
            g.console_tail()
        );
    }
    panic!("{tag}: three power-ons without a settled boot: {verdicts:?}");
}

/// `cuts` power cuts, alternately while a bundle is written and while its try boots and is
/// committed, from a running `guest` reachable over SSH as `user` with `key`.
pub fn campaign(
    card: &Card,
    guest: Guest,
    bundles: &Bundles,
    (key, user): (&Path, &str),
    cuts: usize,
    seed: u64,
) {
    let arch = card.arch;
    let board = format!("qemu-{arch}");
    let port = serve(bundles.dir.clone());
    let Releases { shipped, next, .. } = releases();
    let install = format!(
        "sudo -n d3kosd update install --force --no-reboot \
         http://10.0.2.2:{port}/d3kOS-{next}-{board}.d3kb"
    );
    let sh = |g: &Guest, cmd: &str| super::boot::ssh_run(g.ssh_port, key, user, cmd);
    let shell: &dyn Fn(&Guest, &str) -> String = &sh;

    // One uncut update first: how long an install and a try's boot to its verdict take, so
    // the cuts fall inside them.
    let t = Instant::now();
    sh(&guest, &install);
    let install_time = t.elapsed();
    restart(shell, guest);
    let (g, trying) = card.power_on("cuts-measure");
    assert!(trying);
    let g = ready(g, "the measured try");
    let v = verdict(&g, Duration::from_secs(400));
    assert_eq!(v["verdict"], "committed", "{v}");
    let try_time = g.started.elapsed();
    eprintln!(
        "{arch}: power cuts: an install takes {:.1} s, a try boots to its verdict in {:.1} s \
         (seed {seed})",
        install_time.as_secs_f64(),
        try_time.as_secs_f64()
    );

    let mut moments = Moments(seed.max(1));
    let mut g = g;
    let mut outcomes = Vec::new();
    for i in 0..cuts {
        let during_install = i % 2 == 0;
        let frac = moments.next();
        let (phase, at) = if during_install {
            // The install runs over SSH; the cut comes at a random moment of it.
            let at = install_time.mul_f64(frac);
            let cut_at = g.started.elapsed() + at;
            let (ssh_port, key, user, cmd) =
                (g.ssh_port, key.to_owned(), user.to_owned(), install.clone());
            let run = std::thread::spawn(move || ssh(ssh_port, &key, &user, &[], &cmd));
            assert!(g.cut_after(cut_at), "cut {i}: QEMU ended before its cut");
            let _ = run.join();
            ("install", at)
        } else {
            // A whole install, the restart into the try, and the cut at a random moment from
            // its power-on to past its verdict (the commit's autoboot.txt rename among them).
            sh(&g, &install);
            restart(shell, g);
            let (mut t, trying) = card.power_on(&format!("cut-{i}-try"));
            assert!(trying, "cut {i}: the install arranged no try");
            let at = try_time.mul_f64(0.2 + 0.9 * frac);
            assert!(t.cut_after(at), "cut {i}: the try ended before its cut");
            ("try", at)
        };
        let (back, verdicts) = come_back(card, &format!("cut-{i}"));
        g = back;
        let s: Value = status(shell, &g);
        let running = s["running"].as_str().unwrap_or_default().to_owned();
        assert_eq!(
            s["running"],
            s["committed"],
            "cut {i} ({phase} at {:.1} s): not running the committed slot: {s}",
            at.as_secs_f64()
        );
        assert_eq!(
            s[running.as_str()]["state"],
            "good",
            "cut {i}: the committed slot is not a release that ran healthy: {s}"
        );
        let v = version(&g);
        assert!(
            v == shipped || v == next,
            "cut {i}: running {v}, which no slot was given"
        );
        eprintln!(
            "{arch}: cut {i}: during the {phase}, {:.1} s in; came back in slot {running} with \
             {v} (verdicts {verdicts:?})",
            at.as_secs_f64()
        );
        outcomes.push((phase, running, verdicts));
    }
    let last = sh(&g, "sudo -n d3kosd update status");
    eprintln!(
        "{arch}: {cuts} power cuts ({} during installs, {} during tries), each followed by a \
         boot into a committed slot that holds a healthy release; last status: {last}",
        outcomes.iter().filter(|o| o.0 == "install").count(),
        outcomes.iter().filter(|o| o.0 == "try").count()
    );
    let clean = g.power_down(Duration::from_secs(120));
    eprintln!("{arch}: powered off cleanly after the campaign: {clean}");
}
