//! The one wrapper around `mmdebstrap`: typed options in, a root file system out.

use std::path::{Path, PathBuf};

use crate::tool::{Invocation, ToolError};

const HINT: &str =
    "install mmdebstrap 1.5 or newer (Debian 12: from bookworm-backports; ci/setup-host does it)";

/// One bootstrap, as mmdebstrap(1) takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub suite: String,
    pub mirror: String,
    pub variant: String,
    /// The first is the native architecture of the result; others are added to dpkg.
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// More suites from the same mirror (`trixie-backports`), listed in sources.
    pub extra_suites: Vec<String>,
    pub packages: Vec<String>,
    pub essential_hooks: Vec<String>,
    pub customize_hooks: Vec<String>,
    /// Timestamps in the result are clamped to this.
    pub source_date_epoch: i64,
}

impl Options {
    /// The command line, less the output path; the cache key is made from it.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            format!("--variant={}", self.variant),
            format!("--architectures={}", self.architectures.join(",")),
            format!("--components={}", self.components.join(",")),
        ];
        if !self.packages.is_empty() {
            a.push(format!("--include={}", self.packages.join(",")));
        }
        for h in &self.essential_hooks {
            a.push(format!("--essential-hook={h}"));
        }
        for h in &self.customize_hooks {
            a.push(format!("--customize-hook={h}"));
        }
        a.push(self.suite.clone());
        a
    }

    /// The sources: the suite, then each extra suite, all from the one mirror.
    fn sources(&self) -> String {
        let comps = self.components.join(" ");
        std::iter::once(&self.suite)
            .chain(&self.extra_suites)
            .map(|s| format!("deb {} {s} {comps}", self.mirror))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Writes the result to `output`: a `.tar` file or a directory.
    pub fn run(&self, output: &Path) -> Result<(), ToolError> {
        Invocation::new("mmdebstrap", HINT)
            .args(self.args())
            .arg(output)
            .arg(self.sources())
            .env("SOURCE_DATE_EPOCH", self.source_date_epoch.to_string())
            .env(
                "HOME",
                std::env::var_os("HOME").unwrap_or_else(|| "/root".into()),
            )
            .run_logged("mmdebstrap")
    }
}

/// `mmdebstrap --version`: part of every cache key.
pub fn version() -> Result<String, ToolError> {
    let out = Invocation::new("mmdebstrap", HINT)
        .arg("--version")
        .output()?;
    Ok(out.stdout_text().trim().to_owned())
}

/// A path as one word of a shell hook.
pub fn quote(path: &Path) -> String {
    let s = path.display().to_string();
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Temporary output next to `dest`, renamed over it once complete. mmdebstrap picks the
/// output format from the name, so the extension stays last.
pub fn staging(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.strip_suffix(".tar") {
        Some(stem) => dest.with_file_name(format!(".{stem}.partial.tar")),
        None => dest.with_file_name(format!(".{name}.partial")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_keeps_the_extension_that_picks_the_format() {
        assert_eq!(
            staging(Path::new("/c/base/arm64-trixie-0123.tar")),
            Path::new("/c/base/.arm64-trixie-0123.partial.tar")
        );
        assert_eq!(
            staging(Path::new("/c/toolchain/trixie-amd64-arm64-0123")),
            Path::new("/c/toolchain/.trixie-amd64-arm64-0123.partial")
        );
    }

    #[test]
    fn arguments_name_every_input_but_the_output() {
        let o = Options {
            suite: "trixie".into(),
            mirror: "http://deb.debian.org/debian".into(),
            variant: "minbase".into(),
            architectures: vec!["arm64".into()],
            components: vec!["main".into(), "non-free-firmware".into()],
            extra_suites: vec![],
            packages: vec!["linux-image-arm64".into(), "raspi-firmware".into()],
            essential_hooks: vec![],
            customize_hooks: vec!["true".into()],
            source_date_epoch: 0,
        };
        assert_eq!(
            o.args(),
            [
                "--variant=minbase",
                "--architectures=arm64",
                "--components=main,non-free-firmware",
                "--include=linux-image-arm64,raspi-firmware",
                "--customize-hook=true",
                "trixie"
            ]
        );
        assert_eq!(
            o.sources(),
            "deb http://deb.debian.org/debian trixie main non-free-firmware"
        );
    }
}
