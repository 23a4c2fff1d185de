//! Making a bootstrapped Debian system into the product, declared by the recipe: templates,
//! the appliance user, host name, enabled units, version stamps and build-time clean-up.
//! Everything happens on the in-memory tree: no chroot, no root, same result every time.

mod accounts;
mod clean;
mod stamp;
pub mod templates;
mod units;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rootfs::{Entry, Tree};

pub use accounts::Account;
pub use templates::Vars;

#[derive(Debug, thiserror::Error)]
pub enum CustomiseError {
    #[error("{path}: {message}")]
    Template { path: String, message: String },
    #[error("cannot enable {unit}: {reason}")]
    Unit { unit: String, reason: String },
    #[error("{path}: {reason}")]
    Accounts { path: String, reason: String },
    #[error("while reading {path} from the root file system")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// A partition as templates and the stamps see it.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionVars {
    pub number: u32,
    pub partuuid: String,
    pub label: String,
    pub fs_uuid: Option<String>,
}

/// What the customisation needs to know about the build.
#[derive(Debug, Clone)]
pub struct Context {
    pub name: String,
    pub version: String,
    pub board: String,
    /// How the device's updater reaches the boot loader: `rpi-tryboot` or `harness`.
    pub boot_control: String,
    pub arch: String,
    pub suite: String,
    pub hostname: String,
    pub user: String,
    pub enable: Vec<String>,
    pub partitions: BTreeMap<String, PartitionVars>,
    pub source_date_epoch: i64,
}

/// What was done, for the build log and the manifest.
#[derive(Debug, Clone)]
pub struct Summary {
    pub user: Account,
    pub enabled: Vec<String>,
    pub cleaned: Vec<String>,
}

/// Applies everything to a tree that already has the overlay laid in.
pub fn customise(tree: &mut Tree, cx: &Context) -> Result<Summary, CustomiseError> {
    let cleaned = clean::clean(tree);
    let user =
        accounts::ensure_system_user(tree, &cx.user, "d3kOS appliance", cx.source_date_epoch)?;
    accounts::lock_all(tree, cx.source_date_epoch)?;
    let vars = Vars::new(cx, &user);
    templates::render_all(tree, &vars, cx.source_date_epoch)?;
    let mtime = cx.source_date_epoch;
    tree.insert(
        b"etc/hostname",
        Entry::file(format!("{}\n", cx.hostname).into_bytes(), 0o644, mtime),
    );
    tree.insert(
        b"etc/hosts",
        Entry::file(hosts(&cx.hostname).into_bytes(), 0o644, mtime),
    );
    mount_points(tree)?;
    let enabled = units::enable(tree, &cx.enable)?;
    stamp::write(tree, cx, &enabled)?;
    Ok(Summary {
        user,
        enabled,
        cleaned,
    })
}

/// Every mount point /etc/fstab names exists in the image.
fn mount_points(tree: &mut Tree) -> Result<(), CustomiseError> {
    let Some(fstab) = read_text(tree, "etc/fstab")? else {
        return Ok(());
    };
    for line in fstab
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(dir) = line
            .split_whitespace()
            .nth(1)
            .and_then(|d| d.strip_prefix('/'))
            && !dir.is_empty()
            && tree.get(dir.as_bytes()).is_none()
        {
            tree.insert(dir.as_bytes(), Entry::dir(0o755));
        }
    }
    Ok(())
}

fn hosts(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
    )
}

pub(crate) fn read_text(tree: &Tree, path: &str) -> Result<Option<String>, CustomiseError> {
    match tree.read(path.as_bytes()) {
        None => Ok(None),
        Some(r) => r
            .map(|b| Some(String::from_utf8_lossy(&b).into_owned()))
            .map_err(|source| CustomiseError::Read {
                path: path.to_owned(),
                source,
            }),
    }
}
