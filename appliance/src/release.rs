//! The d3kOS release the device runs: the image's build manifest, and the version every
//! answer names.

use std::path::Path;
use std::sync::OnceLock;

/// The daemon's own version (its crate's).
pub const DAEMON: &str = env!("CARGO_PKG_VERSION");

static VERSION: OnceLock<String> = OnceLock::new();

/// The build manifest's name in the image's `etc` folder (`/etc/d3kos`).
pub const MANIFEST: &str = "build-manifest.json";

/// Takes the release's version from the build manifest in `etc`, once, at start; later calls
/// change nothing.
pub fn load(etc: &Path) {
    let version = std::fs::read(etc.join(MANIFEST))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|m| m["version"].as_str().map(str::to_owned));
    if let Some(v) = version {
        let _ = VERSION.set(v);
    }
}

/// The release (`0.9.1.2`); the daemon's own version where the device has no build manifest
/// (a test, a developer's machine).
pub fn version() -> &'static str {
    VERSION.get().map_or(DAEMON, String::as_str)
}
