//! The d3kOS release the device runs: the image's build manifest, and the version every
//! answer names.

use std::path::Path;
use std::sync::OnceLock;

/// The daemon's own version (its crate's).
pub const DAEMON: &str = env!("CARGO_PKG_VERSION");

static VERSION: OnceLock<String> = OnceLock::new();

/// The build manifest the image carries in `etc` (`/etc/d3kos`), when it reads as JSON.
pub fn manifest(etc: &Path) -> Option<serde_json::Value> {
    std::fs::read(etc.join("build-manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// Takes the release's version from the build manifest in `etc`, once, at start; later calls
/// change nothing.
pub fn load(etc: &Path) {
    if let Some(v) = manifest(etc).and_then(|m| m["version"].as_str().map(str::to_owned)) {
        let _ = VERSION.set(v);
    }
}

/// The release (`0.9.1.2`); the daemon's own version where the device has no build manifest
/// (a test, a developer's machine).
pub fn version() -> &'static str {
    VERSION.get().map_or(DAEMON, String::as_str)
}
