//! The Debian base: bootstrapped by mmdebstrap from the recipe and board, kept as a tarball in
//! a cache keyed by everything that changes it.

pub mod mmdebstrap;
pub mod release;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::{Board, Recipe};
use crate::tool::ToolError;

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error(transparent)]
    Release(#[from] release::ReleaseError),
    #[error("mmdebstrap could not bootstrap {what}")]
    Bootstrap { what: String, source: ToolError },
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BaseError + '_ {
    move |source| BaseError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where bases and tool chroots are kept between builds.
#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    /// `$D3KOS_CACHE`, else `$XDG_CACHE_HOME/d3kos`, else `~/.cache/d3kos`.
    pub fn from_env() -> Self {
        let env = |k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = env("D3KOS_CACHE")
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("d3kos")))
            .or_else(|| env("HOME").map(|d| d.join(".cache/d3kos")))
            .unwrap_or_else(|| PathBuf::from("/var/cache/d3kos"));
        Cache { dir }
    }

    pub fn path(&self, kind: &str, name: &str) -> PathBuf {
        self.dir.join(kind).join(name)
    }
}

/// An exclusive hold on one cache entry, released when dropped. Two builds sharing a cache
/// (a warm-up in the background and a build) would otherwise both bootstrap the same base
/// and remove each other's partial result; the second waits and then finds it made.
#[derive(Debug)]
pub struct EntryLock {
    _file: std::fs::File,
}

impl EntryLock {
    /// Takes the lock file `ENTRY.lock` beside `entry`, waiting while another process has it.
    pub fn take(entry: &Path, what: &str) -> Result<Self, BaseError> {
        use rustix::fs::{FlockOperation, flock};
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = entry.with_file_name(format!(".{name}.lock"));
        let parent = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            log::info!("{what}: waiting for another build that is making it");
            flock(&file, FlockOperation::LockExclusive).map_err(|e| BaseError::Io {
                path: path.clone(),
                source: e.into(),
            })?;
        }
        Ok(EntryLock { _file: file })
    }
}

/// A bootstrap and the key it is cached under.
#[derive(Debug, Clone)]
pub struct Keyed {
    pub options: mmdebstrap::Options,
    /// Hex sha256 of the mmdebstrap version, its arguments, the mirror, the Release dates
    /// and the content of every file a hook copies in.
    pub key: String,
}

impl Keyed {
    /// Computes the key; asks the mirror for each suite's Release date.
    pub fn new(
        options: mmdebstrap::Options,
        copied_in: &[(String, Vec<u8>)],
    ) -> Result<Self, BaseError> {
        let mut h = Sha256::new();
        let mut put = |s: &[u8]| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s);
        };
        put(b"d3kos-base-v1");
        put(mmdebstrap::version()?.as_bytes());
        for a in options.args() {
            put(a.as_bytes());
        }
        put(options.mirror.as_bytes());
        put(options.source_date_epoch.to_string().as_bytes());
        for suite in std::iter::once(&options.suite).chain(&options.extra_suites) {
            put(suite.as_bytes());
            put(release::date(&options.mirror, suite)?.as_bytes());
        }
        for (name, bytes) in copied_in {
            put(name.as_bytes());
            put(bytes);
        }
        Ok(Keyed {
            options,
            key: hex::encode(h.finalize()),
        })
    }

    /// The cached result at `dest` (a `.tar` or a directory), bootstrapped first when it is
    /// missing or `refresh` is set. A bootstrap cut short never looks finished: it is written
    /// under a temporary name and renamed at the end.
    pub fn ensure(&self, dest: &Path, refresh: bool, what: &str) -> Result<PathBuf, BaseError> {
        let _held = EntryLock::take(dest, what)?;
        if dest.exists() && !refresh {
            log::info!("{what}: cached {}", dest.display());
            return Ok(dest.to_owned());
        }
        let parent = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let partial = mmdebstrap::staging(dest);
        remove(&partial)?;
        log::info!("{what}: bootstrapping with mmdebstrap (a few minutes)");
        self.options
            .run(&partial)
            .map_err(|source| BaseError::Bootstrap {
                what: what.to_owned(),
                source,
            })?;
        remove(dest)?;
        std::fs::rename(&partial, dest).map_err(io(dest))?;
        Ok(dest.to_owned())
    }
}

fn remove(path: &Path) -> Result<(), BaseError> {
    let r = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    r.map_err(io(path))
}

/// Files under these overlay folders go in before the one initramfs build, so the
/// initramfs carries them (the data-partition mount that keeps the machine id).
const INITRAMFS_DIRS: &[&str] = &["etc/initramfs-tools", "usr/share/initramfs-tools"];

/// Files a hook copies into the bootstrap, by target path and mode: they key the cache too.
pub type CopiedIn = Vec<(String, Vec<u8>)>;

/// What the recipe and board ask mmdebstrap for.
pub fn options(
    recipe: &Recipe,
    board: &Board,
) -> Result<(mmdebstrap::Options, CopiedIn), BaseError> {
    let b = &recipe.base;
    let mut components = b.components.clone();
    components.extend(board.base_components.iter().cloned());
    dedup(&mut components);
    let mut packages = b.packages.clone();
    packages.extend(board.base_packages.iter().cloned());
    if board.display {
        packages.extend(recipe.helm.packages.iter().cloned());
    }
    packages.sort();
    packages.dedup();

    let mut copied_in = Vec::new();
    let mut essential_hooks = Vec::new();
    let mut customize_hooks = Vec::new();
    if packages.iter().any(|p| p.starts_with("linux-image-")) {
        // Every kernel and initramfs-tools install would each build the initramfs; under
        // qemu-user that is minutes. Build it once, at the end, with our scripts in it.
        essential_hooks.push(
            "chroot \"$1\" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs \
             && ln -s /bin/true \"$1/usr/sbin/update-initramfs\""
                .to_owned(),
        );
        for overlay in &recipe.overlays {
            for dir in INITRAMFS_DIRS {
                for (rel, file, mode) in files_under(&overlay.join(dir))? {
                    let bytes = std::fs::read(&file).map_err(io(&file))?;
                    let target = format!("/{dir}/{rel}");
                    customize_hooks.push(format!(
                        "install -D -m {mode:o} {} \"$1{target}\"",
                        mmdebstrap::quote(&file)
                    ));
                    copied_in.push((format!("{target} {mode:o}"), bytes));
                }
            }
        }
        customize_hooks.push(
            "rm \"$1/usr/sbin/update-initramfs\" \
             && chroot \"$1\" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs \
             && chroot \"$1\" update-initramfs -c -k all"
                .to_owned(),
        );
    }
    let options = mmdebstrap::Options {
        suite: b.suite.clone(),
        mirror: b.mirror.clone(),
        variant: b.variant.clone(),
        architectures: vec![board.arch.debian_name().to_owned()],
        components,
        extra_suites: Vec::new(),
        packages,
        essential_hooks,
        customize_hooks,
        source_date_epoch: recipe.source_date_epoch,
    };
    Ok((options, copied_in))
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
}

/// Regular files below `dir`, sorted, with their paths relative to it and their modes.
fn files_under(dir: &Path) -> Result<Vec<(String, PathBuf, u32)>, BaseError> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&d)(e)),
        };
        for e in entries {
            let e = e.map_err(io(&d))?;
            let path = e.path();
            let meta = std::fs::metadata(&path).map_err(io(&path))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let rel = path
                    .strip_prefix(dir)
                    .expect("walked below dir")
                    .to_string_lossy()
                    .into_owned();
                out.push((
                    rel,
                    path,
                    crate::rootfs::overlay_mode(meta.permissions().mode()),
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The cached base for a recipe and board: `CACHE/base/ARCH-SUITE-KEY.tar`.
pub fn ensure(
    recipe: &Recipe,
    board: &Board,
    cache: &Cache,
    refresh: bool,
) -> Result<PathBuf, BaseError> {
    let (options, copied_in) = options(recipe, board)?;
    let keyed = Keyed::new(options, &copied_in)?;
    let name = format!(
        "{}-{}-{}.tar",
        board.arch.debian_name(),
        recipe.base.suite,
        &keyed.key[..16]
    );
    let what = format!("{} {} base", recipe.base.suite, board.arch.debian_name());
    keyed.ensure(&cache.path("base", &name), refresh, &what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_of_an_entry_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("base/arm64-trixie-0123.tar");
        let first = EntryLock::take(&entry, "base").unwrap();
        assert!(
            dir.path()
                .join("base/.arm64-trixie-0123.tar.lock")
                .is_file()
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let entry = entry.clone();
            std::thread::spawn(move || {
                let held = EntryLock::take(&entry, "base").unwrap();
                tx.send(()).unwrap();
                drop(held);
            })
        };
        // While the first holds it, the second does not get it.
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err()
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the second holder gets the entry once the first lets go");
        waiter.join().unwrap();
    }
}
