//! Recipe files (`recipes/*.toml`): what product is built, from which base and overlay, into
//! which release artifacts.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Hat, Source};
use crate::time;

#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: String,
    pub version: String,
    pub description: String,
    /// Every id in the image (disk, partitions, file systems) derives from this.
    pub seed: String,
    /// All timestamps in the image; from `release_date` unless the environment's
    /// `SOURCE_DATE_EPOCH` says otherwise.
    pub source_date_epoch: i64,
    pub imager: Imager,
    /// The Debian system bootstrapped with mmdebstrap, unless `rootfs` names a prepared one.
    pub base: Base,
    /// A prepared root file system (directory or tarball) to build from instead of a
    /// bootstrap, relative to the recipe. It is laid in as it is, with only the overlay.
    pub rootfs: Option<PathBuf>,
    pub system: System,
    /// The helm screen's kiosk, for boards that drive a display.
    pub helm: Helm,
    /// The HATs fitted to the board (`[hardware]`), in [`Hat::ALL`]'s order. Raspberry Pi
    /// boards load each one's device-tree overlay; other boards have no header to fit them.
    pub hats: Vec<Hat>,
    pub overlays: Vec<PathBuf>,
    /// The minisign public keys the device trusts to sign its updates (`[update] keys`).
    pub update_keys: Vec<PathBuf>,
    pub outputs: Outputs,
    pub sha256: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Imager {
    pub description: String,
    pub icon: String,
    /// Where the release's files will be published; `url` in os_list.json is this plus the
    /// compressed image's file name. `{version}` in it stands for the release's version
    /// (see [`Recipe::download_url`]).
    pub url_base: String,
    pub init_format: String,
}

/// The Debian base: what `mmdebstrap` is asked for. Boards add their own packages and
/// components (a kernel, firmware).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    pub suite: String,
    pub mirror: String,
    pub variant: String,
    pub components: Vec<String>,
    pub packages: Vec<String>,
}

/// How the bootstrapped system is made into the product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    pub hostname: String,
    /// The system user the appliance runs as; created locked at build time.
    pub user: String,
    /// Units enabled as their `[Install]` section says.
    pub enable: Vec<String>,
}

/// What a board with a display adds: the packages of the helm screen's kiosk and its units.
/// Boards without one (`display = false`) leave both out.
#[derive(Debug, Clone, Default)]
pub struct Helm {
    pub packages: Vec<String>,
    pub enable: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    pub xz: bool,
    pub gz: bool,
    pub bmap: bool,
    pub xz_preset: u32,
    pub gz_level: u32,
}

impl Outputs {
    /// Chooses the artifacts from names: `img` (always written), `xz`, `gz`, `bmap`.
    pub fn set_formats(&mut self, formats: &[String]) -> Result<(), String> {
        self.xz = false;
        self.gz = false;
        self.bmap = false;
        for f in formats {
            match f.as_str() {
                "img" => {}
                "xz" => self.xz = true,
                "gz" => self.gz = true,
                "bmap" => self.bmap = true,
                other => {
                    return Err(format!(
                        "`{other}` is not an output: choose from img, xz, gz, bmap"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    product: RawProduct,
    imager: RawImager,
    #[serde(default)]
    base: RawBase,
    #[serde(default)]
    system: RawSystem,
    #[serde(default)]
    helm: RawHelm,
    #[serde(default)]
    hardware: RawHardware,
    #[serde(default)]
    overlay: RawOverlay,
    #[serde(default)]
    update: RawUpdate,
    #[serde(default)]
    outputs: RawOutputs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    name: Spanned<String>,
    version: Spanned<String>,
    description: String,
    release_date: Spanned<String>,
    seed: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImager {
    description: String,
    icon: String,
    url_base: Spanned<String>,
    #[serde(default = "default_init_format")]
    init_format: String,
}

fn default_init_format() -> String {
    "systemd".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    rootfs: Option<String>,
    #[serde(default = "default_suite")]
    suite: Spanned<String>,
    #[serde(default = "default_mirror")]
    mirror: Spanned<String>,
    #[serde(default = "default_variant")]
    variant: Spanned<String>,
    #[serde(default = "default_components")]
    components: Spanned<Vec<String>>,
    #[serde(default = "no_words")]
    packages: Spanned<Vec<String>>,
}

/// An empty list where a key is left out.
pub(crate) fn no_words() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}

impl Default for RawBase {
    fn default() -> Self {
        RawBase {
            rootfs: None,
            suite: default_suite(),
            mirror: default_mirror(),
            variant: default_variant(),
            components: default_components(),
            packages: no_words(),
        }
    }
}

fn default_suite() -> Spanned<String> {
    Spanned::new(0..0, "trixie".into())
}
fn default_mirror() -> Spanned<String> {
    Spanned::new(0..0, "http://deb.debian.org/debian".into())
}
fn default_variant() -> Spanned<String> {
    Spanned::new(0..0, "minbase".into())
}
fn default_components() -> Spanned<Vec<String>> {
    Spanned::new(0..0, vec!["main".into()])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHelm {
    #[serde(default = "no_words")]
    packages: Spanned<Vec<String>>,
    #[serde(default = "no_words")]
    enable: Spanned<Vec<String>>,
}

impl Default for RawHelm {
    fn default() -> Self {
        RawHelm {
            packages: no_words(),
            enable: no_words(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    #[serde(default = "default_hostname")]
    hostname: Spanned<String>,
    #[serde(default = "default_user")]
    user: Spanned<String>,
    #[serde(default = "no_words")]
    enable: Spanned<Vec<String>>,
}

impl Default for RawSystem {
    fn default() -> Self {
        RawSystem {
            hostname: default_hostname(),
            user: default_user(),
            enable: no_words(),
        }
    }
}

fn default_hostname() -> Spanned<String> {
    Spanned::new(0..0, "d3kos".into())
}
fn default_user() -> Spanned<String> {
    Spanned::new(0..0, "d3kos".into())
}

/// mmdebstrap's variants (mmdebstrap(1) `--variant`).
const VARIANTS: &[&str] = &[
    "extract",
    "custom",
    "essential",
    "apt",
    "required",
    "minbase",
    "buildd",
    "important",
    "debootstrap",
    "standard",
];

/// A Debian package name (Debian Policy 5.6.1), optionally `:arch`-qualified.
pub(crate) fn is_package_name(name: &str) -> bool {
    let (pkg, arch) = name.split_once(':').unwrap_or((name, "x"));
    pkg.len() >= 2
        && pkg.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && pkg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        && !arch.is_empty()
        && arch
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Suite and component names: `trixie`, `trixie-backports`, `non-free-firmware`.
pub(crate) fn is_archive_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A host name label (RFC 1123 section 2.1).
fn is_hostname(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A systemd unit file name (systemd.unit(5)).
fn is_unit_name(name: &str) -> bool {
    let suffixes = [
        ".service", ".socket", ".timer", ".target", ".path", ".mount",
    ];
    suffixes
        .iter()
        .any(|s| name.ends_with(s) && name.len() > s.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.@\\".contains(c))
}

/// One key per [`Hat`], each `true` (fitted) or `false`; a key left out means fitted, since
/// the product is sold with them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHardware {
    pican_m: Option<Spanned<toml::Value>>,
}

impl RawHardware {
    fn get(&self, hat: Hat) -> Option<&Spanned<toml::Value>> {
        match hat {
            Hat::PicanM => self.pican_m.as_ref(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOverlay {
    #[serde(default)]
    dirs: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUpdate {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutputs {
    #[serde(default = "default_formats")]
    formats: Spanned<Vec<String>>,
    #[serde(default = "default_xz_preset")]
    xz_preset: Spanned<u32>,
    #[serde(default = "default_gz_level")]
    gz_level: Spanned<u32>,
}

impl Default for RawOutputs {
    fn default() -> Self {
        RawOutputs {
            formats: default_formats(),
            xz_preset: default_xz_preset(),
            gz_level: default_gz_level(),
        }
    }
}

fn default_formats() -> Spanned<Vec<String>> {
    Spanned::new(
        0..0,
        vec!["img".into(), "xz".into(), "gz".into(), "bmap".into()],
    )
}
fn default_xz_preset() -> Spanned<u32> {
    Spanned::new(0..0, 6)
}
fn default_gz_level() -> Spanned<u32> {
    Spanned::new(0..0, 8)
}

impl Recipe {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let src = Source::read(path)?;
        let raw: RawRecipe = src.parse()?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let p = &raw.product;

        let name = p.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(src.error(
                p.name.span(),
                "product.name",
                "use ASCII letters, digits, '-', '_' and '.' (it names files)",
            ));
        }
        let version = p.version.get_ref();
        if version.is_empty()
            || !version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.+~".contains(c))
        {
            return Err(src.error(
                p.version.span(),
                "product.version",
                "a version like 1.2.0 or 1.2.0-rc1",
            ));
        }
        if p.seed.get_ref().is_empty() {
            return Err(src.error(
                p.seed.span(),
                "product.seed",
                "the seed cannot be empty: every id in the image derives from it",
            ));
        }
        let release = time::parse_date(p.release_date.get_ref())
            .map_err(|m| src.error(p.release_date.span(), "product.release_date", m))?;
        let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|e| *e >= 0)
                .ok_or_else(|| {
                    src.error(
                        0..0,
                        "SOURCE_DATE_EPOCH",
                        format!("the environment's SOURCE_DATE_EPOCH `{v}` is not a Unix time"),
                    )
                })?,
            Err(_) => release,
        };

        let url_base = raw.imager.url_base.get_ref();
        if !(url_base.starts_with("https://") || url_base.starts_with("http://")) {
            return Err(src.error(
                raw.imager.url_base.span(),
                "imager.url_base",
                "Raspberry Pi Imager needs an absolute http(s) URL",
            ));
        }

        let mut outputs = Outputs {
            xz: false,
            gz: false,
            bmap: false,
            xz_preset: *raw.outputs.xz_preset.get_ref(),
            gz_level: *raw.outputs.gz_level.get_ref(),
        };
        outputs
            .set_formats(raw.outputs.formats.get_ref())
            .map_err(|m| src.error(raw.outputs.formats.span(), "outputs.formats", m))?;
        if outputs.xz_preset > 9 {
            return Err(src.error(
                raw.outputs.xz_preset.span(),
                "outputs.xz_preset",
                "xz presets are 0 to 9",
            ));
        }
        if !(1..=12).contains(&outputs.gz_level) {
            return Err(src.error(
                raw.outputs.gz_level.span(),
                "outputs.gz_level",
                "gzip levels are 1 to 12 (libdeflate)",
            ));
        }

        let base = &raw.base;
        if !is_archive_word(base.suite.get_ref()) {
            return Err(src.error(
                base.suite.span(),
                "base.suite",
                "a Debian suite or codename like `trixie`",
            ));
        }
        let mirror = base.mirror.get_ref();
        if !(mirror.starts_with("http://") || mirror.starts_with("https://"))
            || mirror.contains(char::is_whitespace)
        {
            return Err(src.error(
                base.mirror.span(),
                "base.mirror",
                "an http(s) URL of a Debian mirror, like http://deb.debian.org/debian",
            ));
        }
        if !VARIANTS.contains(&base.variant.get_ref().as_str()) {
            return Err(src.error(
                base.variant.span(),
                "base.variant",
                format!(
                    "`{}` is not an mmdebstrap variant: choose from {}",
                    base.variant.get_ref(),
                    VARIANTS.join(", ")
                ),
            ));
        }
        if let Some(c) = base
            .components
            .get_ref()
            .iter()
            .find(|c| !is_archive_word(c))
        {
            return Err(src.error(
                base.components.span(),
                "base.components",
                format!("`{c}` is not an archive component"),
            ));
        }
        if let Some(p) = base.packages.get_ref().iter().find(|p| !is_package_name(p)) {
            return Err(src.error(
                base.packages.span(),
                "base.packages",
                format!("`{p}` is not a Debian package name"),
            ));
        }
        let sys = &raw.system;
        if !is_hostname(sys.hostname.get_ref()) {
            return Err(src.error(
                sys.hostname.span(),
                "system.hostname",
                "a host name: 1 to 63 lower-case letters, digits and '-'",
            ));
        }
        let user = sys.user.get_ref();
        if user.is_empty()
            || user.len() > 32
            || !user.starts_with(|c: char| c.is_ascii_lowercase())
            || !user
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(src.error(
                sys.user.span(),
                "system.user",
                "a user name: lower-case letters, digits, '-' and '_', starting with a letter",
            ));
        }
        if let Some(u) = sys.enable.get_ref().iter().find(|u| !is_unit_name(u)) {
            return Err(src.error(
                sys.enable.span(),
                "system.enable",
                format!("`{u}` is not a unit name like `d3kosd.service`"),
            ));
        }

        let helm = &raw.helm;
        if let Some(p) = helm.packages.get_ref().iter().find(|p| !is_package_name(p)) {
            return Err(src.error(
                helm.packages.span(),
                "helm.packages",
                format!("`{p}` is not a Debian package name"),
            ));
        }
        if let Some(u) = helm.enable.get_ref().iter().find(|u| !is_unit_name(u)) {
            return Err(src.error(
                helm.enable.span(),
                "helm.enable",
                format!("`{u}` is not a unit name like `d3kos-kiosk.service`"),
            ));
        }

        let mut hats = Vec::new();
        for hat in Hat::ALL {
            let fitted = match raw.hardware.get(hat) {
                None => true,
                Some(v) => v.get_ref().as_bool().ok_or_else(|| {
                    src.error(
                        v.span(),
                        format!("hardware.{}", hat.key()),
                        format!(
                            "`{}` is neither true nor false: write `{} = true` if the {} HAT is fitted, \
                             `{} = false` if it is not",
                            v.get_ref(),
                            hat.key(),
                            hat.title(),
                            hat.key()
                        ),
                    )
                })?,
            };
            if fitted {
                hats.push(hat);
            }
        }

        Ok(Recipe {
            name: name.clone(),
            version: version.clone(),
            description: p.description.clone(),
            seed: p.seed.get_ref().clone(),
            source_date_epoch,
            imager: Imager {
                description: raw.imager.description,
                icon: raw.imager.icon,
                url_base: url_base.trim_end_matches('/').to_owned(),
                init_format: raw.imager.init_format,
            },
            base: Base {
                suite: raw.base.suite.get_ref().clone(),
                mirror: mirror.trim_end_matches('/').to_owned(),
                variant: raw.base.variant.get_ref().clone(),
                components: raw.base.components.get_ref().clone(),
                packages: raw.base.packages.get_ref().clone(),
            },
            rootfs: raw.base.rootfs.as_ref().map(|r| dir.join(r)),
            system: System {
                hostname: raw.system.hostname.get_ref().clone(),
                user: user.clone(),
                enable: raw.system.enable.get_ref().clone(),
            },
            helm: Helm {
                packages: raw.helm.packages.get_ref().clone(),
                enable: raw.helm.enable.get_ref().clone(),
            },
            hats,
            overlays: raw.overlay.dirs.iter().map(|d| dir.join(d)).collect(),
            update_keys: raw.update.keys.iter().map(|k| dir.join(k)).collect(),
            outputs,
            sha256: crate::digest::sha256_hex(src.text.as_bytes()),
            path: path.to_owned(),
        })
    }

    /// The stem of every artifact: `NAME-VERSION-BOARD`.
    pub fn artifact_stem(&self, board: &str) -> String {
        format!("{}-{}-{}", self.name, self.version, board)
    }

    /// Where Raspberry Pi Imager downloads `file` of this release from: `url_base` with
    /// `{version}` replaced, so that `--release` moves the URL with the version.
    pub fn download_url(&self, file: &str) -> String {
        format!(
            "{}/{file}",
            self.imager.url_base.replace("{version}", &self.version)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"[product]
name = "d3kOS"
version = "0.1.0"
description = "test"
release_date = "2026-11-29"
seed = "test"

[imager]
description = "test"
icon = "https://example.org/icon.png"
url_base = "https://example.org/releases"
"#;

    /// Loads the minimal recipe with `extra` appended; the path is returned for messages.
    fn load(extra: &str) -> (Result<Recipe, ConfigError>, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipe.toml");
        std::fs::write(&path, format!("{MINIMAL}{extra}")).unwrap();
        (Recipe::load(&path), path)
    }

    #[test]
    fn the_download_url_follows_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recipe.toml");
        let text = MINIMAL.replace("/releases\"", "/releases/{version}/\"");
        std::fs::write(&path, text).unwrap();
        let mut recipe = Recipe::load(&path).unwrap();
        assert_eq!(
            recipe.download_url("a.img.xz"),
            "https://example.org/releases/0.1.0/a.img.xz"
        );
        recipe.version = "0.9.1.3".into();
        assert_eq!(
            recipe.download_url("a.img.xz"),
            "https://example.org/releases/0.9.1.3/a.img.xz"
        );
    }

    #[test]
    fn the_pican_m_is_fitted_unless_the_recipe_says_it_is_not() {
        for extra in ["", "\n[hardware]\n", "\n[hardware]\npican_m = true\n"] {
            assert_eq!(load(extra).0.unwrap().hats, [Hat::PicanM], "{extra:?}");
        }
        let (recipe, _) = load("\n[hardware]\npican_m = false\n");
        assert_eq!(recipe.unwrap().hats, []);
    }

    #[test]
    fn a_pican_m_that_is_not_true_or_false_is_named_with_file_and_line() {
        let (recipe, path) = load("\n[hardware]\npican_m = \"yes\"\n");
        let line = MINIMAL.lines().count() + 3;
        assert_eq!(
            recipe.unwrap_err().to_string(),
            format!(
                "{}:{line}: hardware.pican_m: `\"yes\"` is neither true nor false: write \
                 `pican_m = true` if the PiCAN-M HAT is fitted, `pican_m = false` if it is not",
                path.display()
            )
        );
    }

    #[test]
    fn an_unknown_hardware_key_names_the_known_ones() {
        let (recipe, _) = load("\n[hardware]\npicanm = true\n");
        let message = recipe.unwrap_err().to_string();
        assert!(
            message.contains("picanm")
                && message.contains("unknown field")
                && message.contains("pican_m"),
            "{message}"
        );
    }

    #[test]
    fn the_helm_section_is_read_and_checked() {
        let (recipe, _) = load(
            "\n[helm]\npackages = [\"cage\", \"chromium\"]\nenable = [\"d3kos-kiosk.service\"]\n",
        );
        let helm = recipe.unwrap().helm;
        assert_eq!(helm.packages, ["cage", "chromium"]);
        assert_eq!(helm.enable, ["d3kos-kiosk.service"]);
        assert!(load("").0.unwrap().helm.packages.is_empty());
        let (recipe, path) = load("\n[helm]\npackages = [\"Cage Browser\"]\n");
        let line = MINIMAL.lines().count() + 3;
        assert_eq!(
            recipe.unwrap_err().to_string(),
            format!(
                "{}:{line}: helm.packages: `Cage Browser` is not a Debian package name",
                path.display()
            )
        );
        let (recipe, _) = load("\n[helm]\nenable = [\"kiosk\"]\n");
        assert!(recipe.unwrap_err().to_string().contains("helm.enable"));
    }
}
