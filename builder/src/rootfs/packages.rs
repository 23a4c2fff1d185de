//! The package list of a Debian root file system, read from its dpkg status file.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
}

/// Installed packages from `var/lib/dpkg/status` (deb-control(5) paragraphs), sorted by name.
pub fn installed(status: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for para in status.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
                .map(|v| v.trim().to_owned())
        };
        let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
        if let (true, Some(name), Some(version)) = (installed, field("Package"), field("Version")) {
            out.push(Package {
                name,
                version,
                architecture: field("Architecture").unwrap_or_default(),
            });
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_packages_are_listed() {
        let status = "Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.3\nArchitecture: arm64\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                      Package: base-files\nStatus: install ok installed\nArchitecture: arm64\nVersion: 13.8\n";
        let p = installed(status);
        assert_eq!(
            p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["base-files", "zlib1g"]
        );
        assert_eq!(p[1].version, "1:1.3");
    }
}
