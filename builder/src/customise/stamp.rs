//! `/etc/d3kos/version.txt` and `/etc/d3kos/build-manifest.json`: what the device says about
//! itself (the appliance's `/api/version` serves them).

use serde::Serialize;

use super::{Context, CustomiseError, read_text};
use crate::rootfs::packages::{Package, installed};
use crate::rootfs::{Entry, Tree};

#[derive(Serialize)]
struct InImage<'a> {
    name: &'a str,
    version: &'a str,
    board: &'a str,
    /// The updater's boot loader back end.
    boot_control: &'a str,
    arch: &'a str,
    build_date: String,
    kernel: Option<String>,
    debian_version: Option<String>,
    suite: &'a str,
    services: &'a [String],
    packages: Vec<Package>,
}

pub fn write(tree: &mut Tree, cx: &Context, enabled: &[String]) -> Result<(), CustomiseError> {
    let packages = read_text(tree, "var/lib/dpkg/status")?
        .map(|s| installed(&s))
        .unwrap_or_default();
    let debian_version = read_text(tree, "etc/debian_version")?.map(|s| s.trim().to_owned());
    let kernel = crate::boot::find_kernel(tree).ok().map(|k| k.version);
    let build_date = crate::time::rfc3339(cx.source_date_epoch);
    let manifest = InImage {
        name: &cx.name,
        version: &cx.version,
        board: &cx.board,
        boot_control: &cx.boot_control,
        arch: &cx.arch,
        build_date: build_date.clone(),
        kernel,
        debian_version,
        suite: &cx.suite,
        services: enabled,
        packages,
    };
    let mut json = serde_json::to_string_pretty(&manifest).expect("plain data serialises");
    json.push('\n');
    let version_txt = format!(
        "{} {}\nboard: {}\nbuilt: {}\n",
        cx.name, cx.version, cx.board, build_date
    );
    let t = cx.source_date_epoch;
    tree.insert(
        b"etc/d3kos/version.txt",
        Entry::file(version_txt.into_bytes(), 0o644, t),
    );
    tree.insert(
        b"etc/d3kos/build-manifest.json",
        Entry::file(json.into_bytes(), 0o644, t),
    );
    Ok(())
}
