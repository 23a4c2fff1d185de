//! `menu-on-screen`: for ci/bench-boot, the time from power-on until the guest's screen shows
//! the main menu, seen the way the boot test sees it (QMP screendump against a reference
//! rendering by the host's Chromium, the rows every state of the menu shares).
//!
//! Usage: menu-on-screen QMP_SOCKET REFERENCE.png SHOT.ppm POWER_ON_UNIX_SECONDS
//!
//! It may start before QEMU has made its socket or the reference is rendered, and waits for
//! both. It prints the seconds from power-on, or says why not and exits 1.

#[path = "screen.rs"]
mod screen;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// As long as the boot test waits for the menu.
const LIMIT: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [qmp, reference, ppm, power_on] = &args[..] else {
        eprintln!("usage: menu-on-screen QMP_SOCKET REFERENCE.png SHOT.ppm POWER_ON_UNIX_SECONDS");
        return ExitCode::from(2);
    };
    let Ok(power_on) = power_on.parse::<f64>() else {
        eprintln!("menu-on-screen: `{power_on}` is not a time in seconds since 1970");
        return ExitCode::from(2);
    };
    let (qmp, reference, ppm) = (
        PathBuf::from(qmp),
        PathBuf::from(reference),
        PathBuf::from(ppm),
    );
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
        - power_on;
    let started = Instant::now() - Duration::from_secs_f64(since.max(0.0));
    while !(qmp.exists() && reference.exists()) {
        if started.elapsed() > LIMIT {
            eprintln!(
                "menu-on-screen: no {} after {} s",
                if qmp.exists() {
                    reference.display()
                } else {
                    qmp.display()
                },
                LIMIT.as_secs()
            );
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let reference = screen::read_png(&reference);
    match screen::wait_for_top(
        &qmp,
        started,
        &reference,
        &ppm,
        Duration::from_secs(1),
        LIMIT.saturating_sub(started.elapsed()),
    ) {
        Ok(shown) => {
            println!("{:.1}", shown.as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("menu-on-screen: {e}");
            ExitCode::FAILURE
        }
    }
}
