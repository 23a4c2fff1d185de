//! A first boot that cannot succeed, booted: the image on a card too small for its layout.
//! The first boot refuses to grow it, and the page that says why and what to do answers
//! every web request and is on the helm screen.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::boot::{Accel, Guest, boot_files, http, make_disk};
use crate::helm;

/// Boots `image` (amd64, with a screen) on a card of exactly the image's size.
pub fn too_small_card(image: &Path, work: &Path, accel: Accel) {
    let disk = work.join("small-card.raw");
    make_disk(image, &disk, 0);
    let files = boot_files(&disk, work);
    let mut guest = Guest::start("amd64", &disk, &files, accel, work, "small-card", None);
    // The failure page answers on port 80 as the appliance would.
    guest
        .wait_ready(Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("the too-small card: nothing answered: {e}"));
    let (code, body) = http(guest.port, "GET", "/api/health", None, None).unwrap();
    assert_eq!(code, 503, "/api/health on a failed first boot: {body}");
    let health: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(health["error"]["code"], "first_boot_failed", "{health}");
    assert_eq!(health["step"], "grow", "{health}");
    let message = health["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("GB") && message.contains("use a card of"),
        "the message does not say which card to use: {message}"
    );
    let (code, page) = http(guest.port, "GET", "/", None, None).unwrap();
    assert_eq!(code, 503, "{page}");
    assert!(
        page.contains("could not finish its first start") && page.contains("GB or more"),
        "{page}"
    );
    eprintln!(
        "too-small card: the first boot refused ({message}); the page answered {:.1} s after \
         power-on",
        guest.started.elapsed().as_secs_f64()
    );
    // The helm screen shows the same page: the kiosk runs after the failure page's unit,
    // with no appliance to watch it.
    let (path, reference) = helm::reference_as(guest.port, work, "helm-small-card-reference");
    eprintln!("helm screen: reference rendering {}", path.display());
    let shown = helm::screen_shows(
        &guest,
        &reference,
        work,
        "helm-small-card",
        Duration::from_secs(420),
    );
    eprintln!(
        "too-small card: the page on the helm screen {:.1} s after power-on",
        shown.as_secs_f64()
    );
    guest.power_down(Duration::from_secs(120));
}
