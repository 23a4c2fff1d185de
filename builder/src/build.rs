//! A whole build: inputs in, release artifacts out, all or nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use appliance::layout::{PLAN_PATH, Plan};

use crate::artifacts::{self, Staged, imager, manifest, pass, readme};
use crate::assemble::{self, assemble};
use crate::base::{self, Cache};
use crate::compile;
use crate::config::{Board, Recipe};
use crate::customise::{self, PartitionVars};
use crate::fs::ext4;
use crate::rootfs;
use crate::rootfs::{Entry, Tree};

pub struct Options {
    /// Update keys trusted besides the recipe's.
    pub trust: Vec<PathBuf>,
    /// The version instead of the recipe's.
    pub release: Option<String>,
    /// Where the release is published, instead of the recipe's `imager.url_base`.
    pub url_base: Option<String>,
    /// A signed update bundle will be made beside the image (README.txt lists it).
    pub bundle: bool,
    /// Overlay folders after the recipe's.
    pub overlays: Vec<PathBuf>,
    pub recipe: PathBuf,
    pub board: PathBuf,
    /// A prepared root file system, laid in as it is (with the overlay): no bootstrap, no
    /// customisation, no appliance.
    pub rootfs: Option<PathBuf>,
    /// A bootstrapped base tarball to use instead of the cached or a new one.
    pub base: Option<PathBuf>,
    /// Bootstrap the base again even when the cache has it.
    pub refresh_base: bool,
    /// The appliance binary to install instead of building it.
    pub appliance_bin: Option<PathBuf>,
    pub cache: Cache,
    /// Overrides the recipe's artifact formats.
    pub formats: Option<Vec<String>>,
    pub out: PathBuf,
    pub threads: usize,
}

/// The source tree a recipe belongs to: `recipes/`'s parent.
pub fn workspace_of(recipe: &Path) -> PathBuf {
    let dir = recipe.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    dir.join("..")
}

/// What a build of a board reads from the cache, made ahead of it.
#[derive(Debug)]
pub struct Prepared {
    pub base: PathBuf,
    pub appliance: PathBuf,
}

/// Makes, or finds cached, the Debian base and the appliance binary a build of `board` from
/// `recipe` needs, so a later build (or several, one after another) only assembles. Builds
/// that start meanwhile wait for each entry rather than making it twice.
pub fn prepare(
    recipe: &Path,
    board: &Path,
    cache: &Cache,
    refresh: bool,
) -> anyhow::Result<Prepared> {
    let recipe = Recipe::load(recipe)?;
    let board = Board::load(board)?;
    let base =
        base::ensure(&recipe, &board, cache, refresh).context("while preparing the Debian base")?;
    let appliance = compile::appliance(&compile::Request {
        arch: board.arch,
        given: None,
        workspace: &workspace_of(&recipe.path),
        cache,
        mirror: &recipe.base.mirror,
        refresh,
        source_date_epoch: recipe.source_date_epoch,
    })
    .context("while building the appliance binary")?;
    // The board's kernel modules need a chroot with the base kernel's headers: made now too.
    if !board.boot.kernel_modules.is_empty() {
        let scratch = tempfile::tempdir().context("while making a work folder")?;
        let tree = rootfs::load(&base, scratch.path())
            .with_context(|| format!("while reading the base {}", base.display()))?;
        kernel_modules(&tree, &recipe, &board, cache, refresh)?;
    }
    Ok(Prepared { base, appliance })
}

/// What a build produced.
#[derive(Debug)]
pub struct Report {
    pub files: Vec<PathBuf>,
    pub image_size: u64,
    pub image_sha256: String,
}

pub fn run(opts: &Options, mut progress: impl FnMut(u64, u64)) -> anyhow::Result<Report> {
    let mke2fs = ext4::check_mke2fs()?;
    let mut recipe = Recipe::load(&opts.recipe)?;
    if let Some(v) = &opts.release {
        appliance::bundle::Version::parse(v).map_err(|e| anyhow::anyhow!("--release: {e}"))?;
        recipe.version = v.clone();
    }
    if let Some(url) = &opts.url_base {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bail!("--url-base `{url}`: Raspberry Pi Imager needs an absolute http(s) URL");
        }
        recipe.imager.url_base = url.trim_end_matches('/').to_owned();
    }
    recipe.overlays.extend(opts.overlays.iter().cloned());
    if let Some(formats) = &opts.formats {
        recipe
            .outputs
            .set_formats(formats)
            .map_err(|m| anyhow::anyhow!("--formats: {m}"))?;
    }
    let board = Board::load(&opts.board)?;
    // A fitted HAT the board has no overlay for is found before a base is bootstrapped.
    let dtoverlays = crate::boot::dtoverlays(&recipe, &board)?;
    let prepared = opts.rootfs.clone().or_else(|| recipe.rootfs.clone());
    if prepared.is_some() && (opts.base.is_some() || opts.appliance_bin.is_some()) {
        bail!(
            "--rootfs is a finished root file system: --base and --appliance-bin do not apply to it"
        );
    }
    let rootfs_path = match (&prepared, &opts.base) {
        (Some(p), _) => p.clone(),
        (None, Some(base)) => base.clone(),
        (None, None) => base::ensure(&recipe, &board, &opts.cache, opts.refresh_base)
            .context("while preparing the Debian base")?,
    };
    let appliance_bin = match &prepared {
        Some(_) => None,
        None => Some(
            compile::appliance(&compile::Request {
                arch: board.arch,
                given: opts.appliance_bin.as_deref(),
                workspace: &workspace_of(&recipe.path),
                cache: &opts.cache,
                mirror: &recipe.base.mirror,
                refresh: opts.refresh_base,
                source_date_epoch: recipe.source_date_epoch,
            })
            .context("while getting the appliance binary")?,
        ),
    };
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("while creating {}", opts.out.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix(".d3kos-build-")
        .tempdir_in(&opts.out)
        .with_context(|| format!("while creating a work folder in {}", opts.out.display()))?;

    let mut tree = rootfs::load(&rootfs_path, scratch.path()).with_context(|| {
        format!(
            "while reading the root file system {}",
            rootfs_path.display()
        )
    })?;
    for overlay in &recipe.overlays {
        rootfs::overlay(&mut tree, overlay)
            .with_context(|| format!("while laying in the overlay {}", overlay.display()))?;
    }
    trust_keys(
        &mut tree,
        recipe.update_keys.iter().chain(&opts.trust),
        recipe.source_date_epoch,
    )?;
    if tree.is_empty() {
        bail!("the root file system {} is empty", rootfs_path.display());
    }
    // A finished root file system (--rootfs) is taken as it is, modules and all.
    if appliance_bin.is_some() {
        for (path, ko) in kernel_modules(&tree, &recipe, &board, &opts.cache, opts.refresh_base)? {
            tree.insert(
                path.as_bytes(),
                Entry::file(ko, 0o644, recipe.source_date_epoch),
            );
        }
    }
    let file_info = |path: &Path| -> anyhow::Result<manifest::FileInfo> {
        let sum = crate::digest::sum_file(path)
            .with_context(|| format!("while hashing {}", path.display()))?;
        Ok(manifest::FileInfo {
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: sum.sha256,
        })
    };
    let base_info = match prepared {
        Some(_) => None,
        None => Some(file_info(&rootfs_path)?),
    };
    let appliance_info = appliance_bin.as_deref().map(file_info).transpose()?;
    let plan = assemble::plan(&recipe, &board);
    let epoch = recipe.source_date_epoch;
    tree.insert(
        PLAN_PATH.as_bytes(),
        Entry::file(plan.to_json().into_bytes(), 0o644, epoch),
    );
    let cx = customise_context(&recipe, &board, &plan);
    match &appliance_bin {
        Some(bin) => {
            let bytes = std::fs::read(bin)
                .with_context(|| format!("while reading the appliance binary {}", bin.display()))?;
            tree.insert(b"usr/bin/d3kosd", Entry::file(bytes, 0o755, epoch));
            let summary = customise::customise(&mut tree, &cx)
                .context("while customising the root file system")?;
            log::info!(
                "customised: user {} ({}), {} units enabled, {} files cleaned away",
                summary.user.name,
                summary.user.uid,
                summary.enabled.len(),
                summary.cleaned.len()
            );
        }
        None => {
            let root = customise::Account {
                name: "root".into(),
                uid: 0,
                gid: 0,
            };
            customise::templates::render_all(&mut tree, &customise::Vars::new(&cx, &root), epoch)
                .context("while rendering the overlay's templates")?;
        }
    }
    let packages = match tree.read(b"var/lib/dpkg/status") {
        Some(status) => rootfs::packages::installed(&String::from_utf8_lossy(
            &status.context("while reading the dpkg status")?,
        )),
        None => Vec::new(),
    };

    let assembled =
        assemble(&recipe, &board, tree, scratch.path()).context("while assembling the image")?;

    let stem = recipe.artifact_stem(&board.name);
    let img_name = format!("{stem}.img");
    let staged_img = Staged::new(&opts.out, &img_name);
    std::fs::rename(&assembled.image, &staged_img.tmp)
        .context("while moving the image into the output folder")?;
    let mut staged = vec![staged_img];
    let result = (|| -> anyhow::Result<Report> {
        let o = &recipe.outputs;
        let mut open = |name: String| -> anyhow::Result<Option<std::fs::File>> {
            let s = Staged::new(&opts.out, &name);
            let f = std::fs::File::create(&s.tmp)
                .with_context(|| format!("while creating {}", s.tmp.display()))?;
            staged.push(s);
            Ok(Some(f))
        };
        let xz_file = if o.xz {
            open(format!("{img_name}.xz"))?
        } else {
            None
        };
        let gz_file = if o.gz {
            open(format!("{img_name}.gz"))?
        } else {
            None
        };
        let outcome = pass::run(
            &staged[0].tmp,
            pass::Request {
                xz: xz_file.map(|f| (f, o.xz_preset)),
                gz: gz_file.map(|f| (f, o.gz_level)),
                bmap: o.bmap,
                threads: opts.threads,
            },
            &mut progress,
        )
        .context("while compressing and checksumming the image")?;

        let mut write = |name: String, text: String| -> anyhow::Result<()> {
            let s = Staged::new(&opts.out, &name);
            std::fs::write(&s.tmp, text)
                .with_context(|| format!("while writing {}", s.tmp.display()))?;
            staged.push(s);
            Ok(())
        };
        write(
            format!("{img_name}.sha256"),
            artifacts::sha256_line(&outcome.image.sha256, &img_name),
        )?;
        let mut compressed = Vec::new();
        for (ext, sum) in [("xz", &outcome.xz), ("gz", &outcome.gz)] {
            if let Some(sum) = sum {
                let name = format!("{img_name}.{ext}");
                write(
                    format!("{name}.sha256"),
                    artifacts::sha256_line(&sum.sha256, &name),
                )?;
                compressed.push((ext, name, sum.clone()));
            }
        }
        if o.bmap {
            write(
                format!("{stem}.bmap"),
                artifacts::bmap::render(outcome.image.size, &outcome.bmap),
            )?;
        }
        let (download_name, download) = compressed
            .first()
            .map(|(_, n, s)| (n.clone(), s.clone()))
            .unwrap_or_else(|| (img_name.clone(), outcome.image.clone()));
        write(
            "os_list.json".into(),
            imager::render(&imager::ImagerEntry {
                recipe: &recipe,
                board: &board,
                download_name: &download_name,
                extract_size: outcome.image.size,
                extract_sha256: &outcome.image.sha256,
                download_size: download.size,
                download_sha256: &download.sha256,
            }),
        )?;
        let overlays: Vec<String> = recipe
            .overlays
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        write(
            "build-manifest.json".into(),
            manifest::render(&manifest::Manifest {
                name: &recipe.name,
                version: &recipe.version,
                build_date: crate::time::rfc3339(recipe.source_date_epoch),
                source_date_epoch: recipe.source_date_epoch,
                builder_version: env!("CARGO_PKG_VERSION"),
                board: &board.name,
                arch: board.arch.debian_name(),
                kernel: &assembled.kernel.version,
                recipe_sha256: &recipe.sha256,
                inputs: manifest::Inputs {
                    recipe: &recipe.sha256,
                    board: &board.sha256,
                    rootfs_stream: assembled.rootfs_stream.as_ref().map(|d| d.sha256.as_str()),
                    overlays,
                    mke2fs: &mke2fs,
                    base: base_info,
                    appliance: appliance_info,
                },
                image: manifest::ImageInfo {
                    file: &img_name,
                    size: outcome.image.size,
                    sha256: &outcome.image.sha256,
                },
                boot: manifest::BootInfo {
                    kind: board.boot.kind,
                    firmware_files: &board.boot.firmware_files,
                    dtoverlays: dtoverlays
                        .iter()
                        .map(|o| manifest::DtOverlayInfo {
                            name: &o.name,
                            hat: o.hat.name(),
                            sha256: crate::digest::sha256_hex(&o.bytes),
                        })
                        .collect(),
                },
                partition_table: manifest::TableInfo {
                    kind: board.layout.table,
                    disk_id: &assembled.disk_id,
                    partitions: &assembled.partitions,
                },
                packages: &packages,
            }),
        )?;
        let exts: Vec<&str> = compressed.iter().map(|(e, _, _)| *e).collect();
        write(
            "README.txt".into(),
            readme::render(
                &recipe,
                &board,
                &stem,
                &assembled.partitions,
                &exts,
                opts.bundle,
            ),
        )?;
        Ok(Report {
            files: staged.iter().map(|s| s.dest.clone()).collect(),
            image_size: outcome.image.size,
            image_sha256: outcome.image.sha256,
        })
    })();
    match result {
        Ok(report) => {
            artifacts::commit(&opts.out, &staged)
                .context("while moving the artifacts into place")?;
            Ok(report)
        }
        Err(e) => {
            artifacts::discard(&staged);
            Err(e)
        }
    }
}

/// The recipe's units, and the helm screen's where the board drives a display.
fn units_to_enable(recipe: &Recipe, board: &Board) -> Vec<String> {
    let helm = recipe.helm.enable.iter().filter(|_| board.display);
    recipe.system.enable.iter().chain(helm).cloned().collect()
}

/// Where the image keeps the board's modules, below its kernel's modules folder;
/// d3kos-modules.service loads them at boot.
const MODULES_DIR: &str = "updates/d3kos";

/// Builds the board's kernel modules against the kernel in `tree`: where each goes, and
/// its bytes.
fn kernel_modules(
    tree: &Tree,
    recipe: &Recipe,
    board: &Board,
    cache: &Cache,
    refresh: bool,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if board.boot.kernel_modules.is_empty() {
        return Ok(out);
    }
    let status = tree
        .read(b"var/lib/dpkg/status")
        .context("the board has kernel modules, but the root file system has no dpkg status")?
        .context("while reading the dpkg status")?;
    let packages: Vec<(String, String)> =
        rootfs::packages::installed(&String::from_utf8_lossy(&status))
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect();
    let kernel = compile::module::Kernel::find(&packages, |release| {
        tree.get(format!("usr/lib/modules/{release}").as_bytes())
            .is_some()
    })
    .map_err(|m| anyhow::anyhow!("{m}"))?;
    for source in &board.boot.kernel_modules {
        let name = compile::module::module_name(source)?;
        let ko = compile::module::build(
            &compile::module::ModuleRequest {
                arch: board.arch,
                kernel: &kernel,
                suite: &recipe.base.suite,
                mirror: &recipe.base.mirror,
                cache,
                refresh,
                source_date_epoch: recipe.source_date_epoch,
            },
            source,
        )
        .with_context(|| format!("while building {}", source.display()))?;
        log::info!(
            "kernel module {name}: {} bytes, for {}",
            ko.len(),
            kernel.release
        );
        out.push((
            format!("usr/lib/modules/{}/{MODULES_DIR}/{name}.ko", kernel.release),
            ko,
        ));
    }
    Ok(out)
}

fn customise_context(recipe: &Recipe, board: &Board, plan: &Plan) -> customise::Context {
    customise::Context {
        name: recipe.name.clone(),
        version: recipe.version.clone(),
        board: board.name.clone(),
        boot_control: match board.boot.kind {
            crate::config::board::BootKind::RaspberryPi => "rpi-tryboot",
            crate::config::board::BootKind::DirectKernel => "harness",
        }
        .to_owned(),
        arch: board.arch.debian_name().to_owned(),
        suite: recipe.base.suite.clone(),
        hostname: recipe.system.hostname.clone(),
        user: recipe.system.user.clone(),
        enable: units_to_enable(recipe, board),
        partitions: plan
            .partitions
            .iter()
            .map(|p| {
                (
                    p.spec.name.clone(),
                    PartitionVars {
                        number: p.number,
                        partuuid: p.partuuid.clone(),
                        label: p.spec.label.clone(),
                        fs_uuid: p.fs_uuid.clone(),
                    },
                )
            })
            .collect(),
        source_date_epoch: recipe.source_date_epoch,
    }
}

/// A board given by name (`rpi4`) is looked up in the `boards/` folder beside the recipe's
/// folder; anything else is a path.
/// Lays the trusted update keys into the image, each checked to be a minisign public key and
/// named by its key id.
fn trust_keys<'a>(
    tree: &mut Tree,
    keys: impl Iterator<Item = &'a PathBuf>,
    epoch: i64,
) -> anyhow::Result<()> {
    for path in keys {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("while reading the update key {}", path.display()))?;
        let id = appliance::bundle::Keys::default().add_text(&text, path)?;
        tree.insert(
            format!(
                "{}/{id}.pub",
                appliance::bundle::KEYS_DIR.trim_start_matches('/')
            )
            .as_bytes(),
            Entry::file(text.into_bytes(), 0o644, epoch),
        );
    }
    Ok(())
}

pub fn resolve_board(board: &str, recipe: &Path) -> PathBuf {
    let as_path = PathBuf::from(board);
    if board.contains('/') || board.ends_with(".toml") {
        return as_path;
    }
    let root = recipe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    root.join("boards").join(format!("{board}.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kiosk_is_enabled_where_the_board_has_a_display_and_only_there() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let recipe = Recipe::load(&root.join("recipes/d3kos.toml")).unwrap();
        for name in ["rpi4", "qemu-amd64", "qemu-arm64"] {
            let mut board = Board::load(&root.join(format!("boards/{name}.toml"))).unwrap();
            let units = units_to_enable(&recipe, &board);
            assert!(
                units.contains(&"d3kos-kiosk.service".to_owned()),
                "{units:?}"
            );
            // A board without a display carries none of it.
            board.display = false;
            let units = units_to_enable(&recipe, &board);
            assert!(units.contains(&"d3kosd.service".to_owned()), "{units:?}");
            assert!(
                !units.contains(&"d3kos-kiosk.service".to_owned()),
                "{units:?}"
            );
        }
    }
}
