//! The date of a suite's `Release` file on a mirror: it changes whenever the suite does, so it
//! keys the base cache.

use crate::tool::{Invocation, ToolError};

const HINT: &str = "install curl (ci/setup-host does it)";

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(
        "cannot read {url}: the mirror must be reachable to know whether the cached base is current \
         (to build offline, pass --base FILE.tar)"
    )]
    Fetch { url: String, source: ToolError },
    #[error("{url} has no `Date:` field")]
    NoDate { url: String },
}

/// The `Date:` of `MIRROR/dists/SUITE/InRelease` (Debian repository format, "Release files").
pub fn date(mirror: &str, suite: &str) -> Result<String, ReleaseError> {
    let url = format!("{}/dists/{suite}/InRelease", mirror.trim_end_matches('/'));
    let out = Invocation::new("curl", HINT)
        .args([
            "--fail",
            "--silent",
            "--show-error",
            "--location",
            "--max-time",
            "60",
        ])
        .arg(&url)
        .output()
        .map_err(|source| ReleaseError::Fetch {
            url: url.clone(),
            source,
        })?;
    field(&out.stdout_text(), "Date").ok_or(ReleaseError::NoDate { url })
}

fn field(release: &str, name: &str) -> Option<String> {
    release
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_read_from_the_signed_release_header() {
        let text = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\n\
                    Suite: stable\nCodename: trixie\nDate: Sat, 21 Nov 2026 09:15:44 UTC\n\
                    Valid-Until: Sat, 28 Nov 2026 09:15:44 UTC\n";
        assert_eq!(
            field(text, "Date").as_deref(),
            Some("Sat, 21 Nov 2026 09:15:44 UTC")
        );
        assert_eq!(field(text, "Codename").as_deref(), Some("trixie"));
        assert_eq!(field(text, "Missing"), None);
    }
}
