//! Recipe files (`recipes/*.toml`): what product is built, from which base and overlay, into
//! which release artifacts.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Source};
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
    /// A root file system (directory or tarball) to build from, relative to the recipe.
    pub rootfs: Option<PathBuf>,
    pub overlays: Vec<PathBuf>,
    pub outputs: Outputs,
    pub sha256: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Imager {
    pub description: String,
    pub icon: String,
    /// Where the release's files will be published; `url` in os_list.json is this plus the
    /// compressed image's file name.
    pub url_base: String,
    pub init_format: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    pub xz: bool,
    pub gz: bool,
    pub bmap: bool,
    pub xz_preset: u32,
    pub gz_level: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    product: RawProduct,
    imager: RawImager,
    #[serde(default)]
    base: RawBase,
    #[serde(default)]
    overlay: RawOverlay,
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBase {
    rootfs: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOverlay {
    #[serde(default)]
    dirs: Vec<String>,
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
        for f in raw.outputs.formats.get_ref() {
            match f.as_str() {
                "img" => {}
                "xz" => outputs.xz = true,
                "gz" => outputs.gz = true,
                "bmap" => outputs.bmap = true,
                other => {
                    return Err(src.error(
                        raw.outputs.formats.span(),
                        "outputs.formats",
                        format!("`{other}` is not an output: choose from img, xz, gz, bmap"),
                    ));
                }
            }
        }
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
            rootfs: raw.base.rootfs.map(|r| dir.join(r)),
            overlays: raw.overlay.dirs.iter().map(|d| dir.join(d)).collect(),
            outputs,
            sha256: crate::digest::sha256_hex(src.text.as_bytes()),
            path: path.to_owned(),
        })
    }

    /// The stem of every artifact: `NAME-VERSION-BOARD`.
    pub fn artifact_stem(&self, board: &str) -> String {
        format!("{}-{}-{}", self.name, self.version, board)
    }
}
