//! A whole build: inputs in, release artifacts out, all or nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::artifacts::{self, Staged, imager, manifest, pass, readme};
use crate::assemble::assemble;
use crate::config::{Board, Recipe};
use crate::fs::ext4;
use crate::rootfs;

pub struct Options {
    pub recipe: PathBuf,
    pub board: PathBuf,
    pub rootfs: Option<PathBuf>,
    pub out: PathBuf,
    pub threads: usize,
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
    let recipe = Recipe::load(&opts.recipe)?;
    let board = Board::load(&opts.board)?;
    let rootfs_path = opts
        .rootfs
        .clone()
        .or_else(|| recipe.rootfs.clone())
        .with_context(|| {
            format!(
                "{} names no root file system ([base] rootfs): pass --rootfs DIR or --rootfs FILE.tar",
                recipe.path.display()
            )
        })?;
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
    if tree.is_empty() {
        bail!("the root file system {} is empty", rootfs_path.display());
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
                },
                image: manifest::ImageInfo {
                    file: &img_name,
                    size: outcome.image.size,
                    sha256: &outcome.image.sha256,
                },
                boot: manifest::BootInfo {
                    kind: board.boot.kind,
                    firmware_files: &board.boot.firmware_files,
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
            readme::render(&recipe, &board, &stem, &assembled.partitions, &exts),
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

/// A board given by name (`rpi4`) is looked up in the `boards/` folder beside the recipe's
/// folder; anything else is a path.
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
