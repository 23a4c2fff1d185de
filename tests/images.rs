//! Builds real images with the `d3kos-build` binary from generated root file systems and
//! checks them with the field's own tools: sfdisk, sgdisk, fsck.fat, mtools, e2fsck,
//! debugfs, bmaptool, gzip, xz and sha256sum.

#[path = "fixture/mod.rs"]
mod fixture;
mod table;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use builder::rootfs::{Kind, Tree};
use serde_json::Value;
use table::{Partition, sfdisk};

const BIN: &str = env!("CARGO_BIN_EXE_d3kos-build");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn recipe() -> PathBuf {
    repo().join("recipes/d3kos.toml")
}

/// The release the default recipe builds.
fn version() -> String {
    builder::config::Recipe::load(&recipe())
        .expect("the default recipe loads")
        .version
}

/// The default recipe's artifact stem for `board`: `d3kOS-VERSION-BOARD`.
fn stem(board: &str) -> String {
    format!("d3kOS-{}-{board}", version())
}

/// The fixture tarball, made once per test run.
fn fixture_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("d3kos-fixture-")
            .tempdir()
            .unwrap()
            .keep();
        // Readable by the unprivileged user of the non-root test.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path = dir.join("rootfs.tar");
        fixture::write_tar(&fixture::tree(200), &path);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        path
    })
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn build_cmd(board: &str, rootfs: &Path, out: &Path) -> Command {
    build_with(&recipe(), board, rootfs, out)
}

fn build_with(recipe: &Path, board: &str, rootfs: &Path, out: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("build")
        .arg("--recipe")
        .arg(recipe)
        .arg("--board")
        .arg(board)
        .arg("--rootfs")
        .arg(rootfs)
        .arg("--out")
        .arg(out)
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

fn sha256(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Copies one partition out of an image (our own code is not trusted to read it back).
fn extract(image: &Path, start: u64, size: u64, dest: &Path) {
    let mut src = std::fs::File::open(image).unwrap();
    src.seek(SeekFrom::Start(start)).unwrap();
    let mut out = std::fs::File::create(dest).unwrap();
    std::io::copy(&mut src.take(size), &mut out).unwrap();
}

/// One inode as debugfs reports it.
#[derive(Debug, Default)]
struct Stat {
    kind: String,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: i64,
    link: Option<Vec<u8>>,
    device: Option<(u32, u32)>,
    xattrs: Vec<(String, Vec<u8>)>,
}

fn debugfs(fs: &Path, requests: &str) -> String {
    let cmds = fs.with_extension("cmds");
    std::fs::write(&cmds, requests).unwrap();
    let out = run(Command::new("debugfs").arg("-f").arg(&cmds).arg(fs));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stat_all(fs: &Path, paths: &[String]) -> BTreeMap<String, Stat> {
    let mut req = String::new();
    for p in paths {
        req.push_str(&format!("stat \"/{p}\"\n"));
    }
    let text = debugfs(fs, &req);
    let mut out = BTreeMap::new();
    let mut cur: Option<(String, Stat)> = None;
    let mut idx = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("debugfs: stat ") {
            if let Some((p, s)) = cur.take() {
                out.insert(p, s);
            }
            let _ = rest;
            cur = Some((paths[idx].clone(), Stat::default()));
            idx += 1;
            continue;
        }
        let Some((_, s)) = cur.as_mut() else { continue };
        let t = line.trim();
        if let Some(r) = t.strip_prefix("Inode:") {
            let f: Vec<&str> = r.split_whitespace().collect();
            let mode_at = f.iter().position(|w| *w == "Mode:").unwrap();
            s.kind = f[2].to_owned();
            s.mode = u32::from_str_radix(f[mode_at + 1], 8).unwrap();
        } else if let Some(r) = t.strip_prefix("User:") {
            let f: Vec<&str> = r.split_whitespace().collect();
            s.uid = f[0].parse().unwrap();
            s.gid = f[2].parse().unwrap();
            s.size = f[f.len() - 1].parse().unwrap();
        } else if let Some(r) = t.strip_prefix("mtime: 0x") {
            s.mtime = i64::from_str_radix(&r[..8], 16).unwrap();
        } else if let Some(r) = t.strip_prefix("Fast link dest: \"") {
            s.link = Some(r.trim_end_matches('"').as_bytes().to_vec());
        } else if let Some(r) = t.strip_prefix("Device major/minor number: ") {
            let (ma, mi) = r
                .split_whitespace()
                .next()
                .unwrap()
                .split_once(':')
                .unwrap();
            s.device = Some((ma.parse().unwrap(), mi.parse().unwrap()));
        } else if let Some((name, rest)) = t.split_once(" (")
            && let Some((_, hex)) = rest.split_once(") = ")
            && name.contains('.')
            && !name.contains(' ')
        {
            let bytes = hex
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect();
            s.xattrs.push((name.to_owned(), bytes));
        }
    }
    if let Some((p, s)) = cur.take() {
        out.insert(p, s);
    }
    out
}

/// Every file's owner, mode, size, time, link target, device numbers and xattrs in the
/// system partition equal the input's.
fn system_matches_fixture(fs: &Path, tree: &Tree) {
    let entries: Vec<(String, &builder::rootfs::Entry)> = tree
        .entries()
        .filter(|(p, _)| !p.starts_with(b"boot/firmware/"))
        .map(|(p, e)| (String::from_utf8(p.to_vec()).unwrap(), e))
        .collect();
    let paths: Vec<String> = entries.iter().map(|(p, _)| p.clone()).collect();
    let stats = stat_all(fs, &paths);
    let mut checked = 0;
    for (path, e) in &entries {
        let s = stats
            .get(path)
            .unwrap_or_else(|| panic!("debugfs has no {path}"));
        let data_of = |e: &builder::rootfs::Entry| match &e.kind {
            Kind::HardLink(t) => tree.get(t).unwrap().clone(),
            _ => (*e).clone(),
        };
        let e = data_of(e);
        assert_eq!((s.uid, s.gid), (e.uid, e.gid), "{path}: owner");
        assert_eq!(s.mode, e.mode, "{path}: mode");
        assert_eq!(
            s.mtime,
            e.mtime.min(fixture::EPOCH),
            "{path}: mtime (clamped)"
        );
        match &e.kind {
            Kind::File { size, .. } => {
                assert_eq!(s.kind, "regular", "{path}");
                assert_eq!(s.size, *size, "{path}: size");
            }
            Kind::Dir => assert_eq!(s.kind, "directory", "{path}"),
            Kind::Symlink(target) => {
                assert_eq!(s.kind, "symlink", "{path}");
                let found = match &s.link {
                    Some(l) => l.clone(),
                    None => debugfs(fs, &format!("cat \"/{path}\"\n"))
                        .lines()
                        .skip(1)
                        .collect::<Vec<_>>()
                        .join("\n")
                        .into_bytes(),
                };
                assert_eq!(&found, target, "{path}: link target");
            }
            Kind::Char { major, minor } => {
                assert_eq!(s.kind, "character", "{path}");
                assert_eq!(s.device, Some((*major, *minor)), "{path}: device");
            }
            Kind::Block { major, minor } => {
                assert_eq!(s.kind, "block", "{path}");
                assert_eq!(s.device, Some((*major, *minor)), "{path}: device");
            }
            Kind::Fifo => assert_eq!(s.kind, "FIFO", "{path}"),
            Kind::HardLink(_) => unreachable!("resolved above"),
        }
        assert_eq!(s.xattrs, e.xattrs, "{path}: xattrs");
        checked += 1;
    }
    assert!(checked > 30, "only {checked} entries compared");

    // Hard links share one inode.
    let inode = |p: &str| {
        debugfs(fs, &format!("stat \"/{p}\"\n"))
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Inode:")
                    .map(|r| r.split_whitespace().next().unwrap().to_owned())
            })
    };
    assert_eq!(
        inode("usr/lib/libboat.so.1"),
        inode("usr/lib/libboat-alias.so.1")
    );
    // The big file's content survives byte for byte.
    let dumped = fs.with_extension("big");
    debugfs(
        fs,
        &format!("dump /var/lib/d3kos/chart-cache.bin {}\n", dumped.display()),
    );
    let want = tree
        .read(b"var/lib/d3kos/chart-cache.bin")
        .unwrap()
        .unwrap();
    assert!(
        std::fs::read(&dumped).unwrap() == want,
        "chart-cache.bin differs"
    );
}

/// The autoboot.txt a fresh image ships: slot a's boot partition by default, slot b's for a try.
fn autoboot_2_then_3() -> String {
    appliance::layout::autoboot::Autoboot {
        default: 2,
        tryboot: Some(3),
    }
    .render()
}

fn mtype(part: &Path, file: &str) -> String {
    String::from_utf8(mtype_bytes(part, file)).unwrap()
}

fn mtype_bytes(part: &Path, file: &str) -> Vec<u8> {
    run(Command::new("mtype")
        .arg("-i")
        .arg(part)
        .arg(format!("::{file}"))
        .env("MTOOLS_SKIP_CHECK", "1"))
    .stdout
}

/// `text` equals the snapshot tests/golden/NAME; `UPDATE_GOLDEN=1` rewrites the snapshot.
fn assert_golden(name: &str, text: &str) {
    let golden = repo().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, text).unwrap();
    }
    assert_eq!(
        text,
        std::fs::read_to_string(&golden).unwrap_or_default(),
        "{} (UPDATE_GOLDEN=1 rewrites it)",
        golden.display()
    );
}

/// Builds the fixture for `board` and checks everything with the field's tools.
fn board_image_passes_field_tools(board: &str) {
    let out = tempfile::tempdir().unwrap();
    let built = run(&mut build_cmd(board, fixture_tar(), out.path()));
    let stem = stem(board);
    let img = out.path().join(format!("{stem}.img"));
    let stdout = String::from_utf8_lossy(&built.stdout);
    assert!(
        stdout.contains(&sha256(&img)),
        "the build reports the image's sha256"
    );

    // Every artifact, and nothing half-written beside them.
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want = vec![
        format!("{stem}.img"),
        format!("{stem}.img.xz"),
        format!("{stem}.img.gz"),
        format!("{stem}.img.sha256"),
        format!("{stem}.img.xz.sha256"),
        format!("{stem}.img.gz.sha256"),
        format!("{stem}.bmap"),
        "os_list.json".into(),
        "build-manifest.json".into(),
        "README.txt".into(),
    ];
    want.sort();
    assert_eq!(names, want);
    // The smallest card, from the layout, as README.md says too (the fixture's small system
    // slot makes the need here a little less than a release's).
    let readme = std::fs::read_to_string(out.path().join("README.txt")).unwrap();
    assert!(
        readme.contains("Use a card of 16 GB or more: the partitions need "),
        "{readme}"
    );

    // Checksums, compression.
    for ext in ["img", "img.xz", "img.gz"] {
        run(Command::new("sha256sum")
            .arg("-c")
            .arg(format!("{stem}.{ext}.sha256"))
            .current_dir(out.path()));
    }
    run(Command::new("xz")
        .arg("-t")
        .arg(out.path().join(format!("{stem}.img.xz"))));
    run(Command::new("gzip")
        .arg("-t")
        .arg(out.path().join(format!("{stem}.img.gz"))));
    let gunzipped = run(Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc '{stem}.img.gz' | sha256sum"))
        .current_dir(out.path()));
    assert!(
        String::from_utf8_lossy(&gunzipped.stdout).starts_with(&sha256(&img)),
        "gzip -d restores the image"
    );

    // bmaptool writes the compressed image through the block map and verifies every range.
    let flashed = out.path().join("card.img");
    run(Command::new("bmaptool")
        .arg("copy")
        .arg("--bmap")
        .arg(out.path().join(format!("{stem}.bmap")))
        .arg(out.path().join(format!("{stem}.img.xz")))
        .arg(&flashed));
    assert_eq!(
        sha256(&flashed),
        sha256(&img),
        "the card bmaptool wrote equals the image"
    );
    std::fs::remove_file(&flashed).unwrap();

    // Raspberry Pi Imager's entry.
    let os_list: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("os_list.json")).unwrap())
            .unwrap();
    let entry = &os_list["os_list"][0];
    assert_eq!(entry["extract_sha256"], sha256(&img));
    assert_eq!(
        entry["extract_size"],
        std::fs::metadata(&img).unwrap().len()
    );
    let xz = out.path().join(format!("{stem}.img.xz"));
    assert_eq!(entry["image_download_sha256"], sha256(&xz));
    assert_eq!(
        entry["image_download_size"],
        std::fs::metadata(&xz).unwrap().len()
    );
    assert_eq!(entry["release_date"], "2026-11-29");
    assert_eq!(
        entry["url"],
        format!("https://d3kos.org/releases/{}/{stem}.img.xz", version())
    );
    // A 64-bit image is offered only for a Pi with a 64-bit OS chosen in Imager.
    let devices = if board == "rpi4" {
        serde_json::json!(["pi4-64bit"])
    } else {
        serde_json::json!([])
    };
    assert_eq!(entry["devices"], devices);
    for key in ["name", "description", "icon", "devices", "init_format"] {
        assert!(!entry[key].is_null(), "os_list.json lacks {key}");
    }

    // The table as sfdisk reads it agrees with the manifest.
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("build-manifest.json")).unwrap(),
    )
    .unwrap();
    let (label, parts) = sfdisk(&img);
    let shipped: Vec<&Value> = manifest["partition_table"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["create"] == "build")
        .collect();
    let primary_or_gpt: Vec<&Partition> = parts.iter().filter(|p| p.type_id != "f").collect();
    assert_eq!(primary_or_gpt.len(), shipped.len(), "shipped partitions");
    for (p, m) in primary_or_gpt.iter().zip(&shipped) {
        assert_eq!(u64::from(p.number), m["number"].as_u64().unwrap());
        assert_eq!(
            p.start,
            m["start"].as_u64().unwrap(),
            "partition {} start",
            p.number
        );
        assert_eq!(
            p.size,
            m["size"].as_u64().unwrap(),
            "partition {} size",
            p.number
        );
        assert_eq!(
            p.partuuid,
            m["partuuid"].as_str().unwrap(),
            "partition {} PARTUUID",
            p.number
        );
        assert_eq!(
            p.start % (4 << 20),
            0,
            "partition {} is 4 MiB aligned",
            p.number
        );
    }
    let img_len = std::fs::metadata(&img).unwrap().len();
    let last_end = parts.iter().map(|p| p.start + p.size).max().unwrap();
    if label == "gpt" {
        let v = run(Command::new("sgdisk").arg("-v").arg(&img));
        assert!(
            String::from_utf8_lossy(&v.stdout).contains("No problems found"),
            "{}",
            String::from_utf8_lossy(&v.stdout)
        );
        assert_eq!(
            img_len,
            last_end + 33 * 512,
            "the image ends at the last partition plus the backup GPT"
        );
    } else {
        assert_eq!(label, "dos");
        assert_eq!(img_len, last_end, "the image ends at the last partition");
        assert!(
            parts.iter().any(|p| p.type_id == "f"),
            "an extended partition holds the logical ones"
        );
    }

    // File systems, checked by their own tools.
    let by_name = |name: &str| shipped.iter().find(|m| m["name"] == name).unwrap();
    let part_file = |name: &str| {
        let m = by_name(name);
        let f = out.path().join(format!("{name}.part"));
        extract(
            &img,
            m["start"].as_u64().unwrap(),
            m["size"].as_u64().unwrap(),
            &f,
        );
        f
    };
    let config = part_file("config");
    let boot_a = part_file("boot-a");
    let boot_b = part_file("boot-b");
    let system_a = part_file("system-a");
    for fat in [&config, &boot_a, &boot_b] {
        run(Command::new("fsck.fat").arg("-n").arg(fat));
    }
    run(Command::new("e2fsck").arg("-fn").arg(&system_a));
    let blkid = run(Command::new("blkid").arg("-o").arg("export").arg(&system_a));
    let blkid = String::from_utf8_lossy(&blkid.stdout);
    assert!(
        blkid.contains("LABEL=system-a") && blkid.contains("TYPE=ext4"),
        "{blkid}"
    );

    // Boot files, read with mtools.
    let autoboot = mtype(&config, "autoboot.txt");
    assert_eq!(autoboot.len(), appliance::layout::autoboot::AUTOBOOT_LEN);
    assert_eq!(autoboot, autoboot_2_then_3());
    let cmdline = mtype(&boot_a, "cmdline.txt");
    let system_a_uuid = &by_name("system-a")["partuuid"];
    assert!(
        cmdline.starts_with(&format!(
            "root=PARTUUID={} ",
            system_a_uuid.as_str().unwrap()
        )),
        "{cmdline}"
    );
    assert_eq!(cmdline.lines().count(), 1);
    let listing = run(Command::new("mdir")
        .arg("-b")
        .arg("-i")
        .arg(&boot_a)
        .arg("::")
        .env("MTOOLS_SKIP_CHECK", "1"));
    let listing = String::from_utf8_lossy(&listing.stdout);
    let tree = fixture::tree(200);
    if board == "rpi4" {
        let config_txt = mtype(&boot_a, "config.txt");
        let kernel = format!("kernel=vmlinuz-{}", fixture::KERNEL_VERSION);
        assert!(
            config_txt.contains("arm_64bit=1\n") && config_txt.contains(&kernel),
            "{config_txt}"
        );
        assert!(config_txt.contains(&format!(
            "initramfs initrd.img-{} followkernel",
            fixture::KERNEL_VERSION
        )));
        assert_golden("config-rpi4.txt", &config_txt);
        // The PiCAN-M the recipe fits: its overlay beside the firmware's own.
        assert!(
            config_txt.lines().any(|l| l == "dtoverlay=pican-m"),
            "{config_txt}"
        );
        assert!(
            mtype_bytes(&boot_a, "overlays/pican-m.dtbo")
                == std::fs::read(repo().join("boards/rpi4/pican-m.dtbo")).unwrap(),
            "overlays/pican-m.dtbo is the board's"
        );
        for fw in [
            "start4.elf",
            "fixup4.dat",
            "bcm2711-rpi-4-b.dtb",
            "overlays/",
            &format!("vmlinuz-{}", fixture::KERNEL_VERSION),
        ] {
            assert!(
                listing.contains(&format!("::/{fw}")),
                "boot-a lacks {fw}: {listing}"
            );
        }
        let fw = run(Command::new("mtype")
            .arg("-i")
            .arg(&boot_a)
            .arg("::start4.elf")
            .env("MTOOLS_SKIP_CHECK", "1"));
        assert!(
            fw.stdout == tree.read(b"boot/firmware/start4.elf").unwrap().unwrap(),
            "start4.elf content"
        );
    } else {
        for f in ["vmlinuz", "initrd.img", "cmdline.txt"] {
            assert!(
                listing.contains(&format!("::/{f}")),
                "boot-a lacks {f}: {listing}"
            );
        }
        let k = run(Command::new("mtype")
            .arg("-i")
            .arg(&boot_a)
            .arg("::vmlinuz")
            .env("MTOOLS_SKIP_CHECK", "1"));
        let want = tree
            .read(format!("boot/vmlinuz-{}", fixture::KERNEL_VERSION).as_bytes())
            .unwrap()
            .unwrap();
        assert!(k.stdout == want, "the newest kernel is on boot-a");
    }
    assert!(
        mdir_is_empty(&boot_b),
        "boot-b ships empty while system-b is created on first boot"
    );

    // The overlay landed, root-owned.
    let overlay = debugfs(&system_a, "stat /etc/systemd/journald.conf.d/d3kos.conf\n");
    assert!(overlay.contains("User:     0   Group:     0"), "{overlay}");

    system_matches_fixture(&system_a, &tree);

    // The builder's own verify agrees.
    let verify = run(Command::new(BIN).arg("verify").arg(&img));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("checks passed"));
}

fn mdir_is_empty(part: &Path) -> bool {
    let out = Command::new("mdir")
        .arg("-b")
        .arg("-i")
        .arg(part)
        .arg("::")
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

#[test]
fn rpi4_image_passes_field_tools() {
    board_image_passes_field_tools("rpi4");
}

#[test]
fn qemu_arm64_image_passes_field_tools() {
    board_image_passes_field_tools("qemu-arm64");
}

#[test]
fn qemu_amd64_image_passes_field_tools() {
    board_image_passes_field_tools("qemu-amd64");
}

/// Writes `tree` as a real directory, creating entries in forward or reverse order. Device
/// nodes and foreign owners need root; without it they are left out of both copies.
fn write_dir(tree: &Tree, root: &Path, reverse: bool) {
    let is_root = rustix_uid() == 0;
    let mut entries: Vec<(&[u8], &builder::rootfs::Entry)> = tree.entries().collect();
    // Directories first (parents before children), then the rest in the chosen order.
    let (dirs, mut rest): (Vec<_>, Vec<_>) = entries
        .drain(..)
        .partition(|(_, e)| matches!(e.kind, Kind::Dir));
    if reverse {
        rest.reverse();
    }
    // A hard link needs its target to exist first.
    rest.sort_by_key(|(_, e)| matches!(e.kind, Kind::HardLink(_)));
    for (p, _) in &dirs {
        std::fs::create_dir_all(root.join(std::ffi::OsStr::from_bytes(p))).unwrap();
    }
    for (p, e) in &rest {
        let path = root.join(std::ffi::OsStr::from_bytes(p));
        match &e.kind {
            Kind::File { .. } => std::fs::write(&path, tree.read(p).unwrap().unwrap()).unwrap(),
            Kind::HardLink(t) => {
                std::fs::hard_link(root.join(std::ffi::OsStr::from_bytes(t)), &path).unwrap()
            }
            Kind::Symlink(t) => {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(t), &path).unwrap()
            }
            Kind::Char { major, minor } | Kind::Block { major, minor } if is_root => {
                let kind = if matches!(e.kind, Kind::Char { .. }) {
                    "c"
                } else {
                    "b"
                };
                run(Command::new("mknod")
                    .arg(&path)
                    .arg(kind)
                    .arg(major.to_string())
                    .arg(minor.to_string()));
            }
            Kind::Fifo => run(Command::new("mkfifo").arg(&path))
                .status
                .success()
                .then_some(())
                .unwrap(),
            _ => continue,
        }
    }
    // Owners, modes, xattrs and times last, deepest first, so creating children does not
    // touch a directory's time afterwards.
    let mut all: Vec<(&[u8], &builder::rootfs::Entry)> = tree.entries().collect();
    all.reverse();
    for (p, e) in all {
        let path = root.join(std::ffi::OsStr::from_bytes(p));
        if matches!(e.kind, Kind::Symlink(_)) || std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        if is_root {
            std::os::unix::fs::chown(&path, Some(e.uid), Some(e.gid)).unwrap();
        }
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(e.mode))
            .unwrap();
        for (k, v) in &e.xattrs {
            if is_root || k.starts_with("user.") {
                xattr::set(&path, k, v).unwrap();
            }
        }
        if !matches!(e.kind, Kind::Char { .. } | Kind::Block { .. } | Kind::Fifo) {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.mtime.max(0) as u64);
            std::fs::File::open(&path).unwrap().set_modified(t).unwrap();
        }
    }
}

fn rustix_uid() -> u32 {
    let out = run(Command::new("id").arg("-u"));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn rebuild_is_bit_identical() {
    let work = tempfile::tempdir().unwrap();
    let mut tree = fixture::tree(20);
    fixture::bulk(&mut tree, 8);
    let mut sums = Vec::new();
    for (i, (umask, tz, reverse)) in [("022", "UTC", false), ("077", "Pacific/Auckland", true)]
        .into_iter()
        .enumerate()
    {
        let rootfs = work.path().join(format!("rootfs-{i}"));
        write_dir(&tree, &rootfs, reverse);
        let out = work.path().join(format!("somewhere-{i}/out"));
        let cmd = build_cmd("rpi4", &rootfs, &out);
        let line = format!(
            "umask {umask} && exec {} {}",
            BIN,
            cmd.get_args()
                .map(|a| format!("'{}'", a.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        run(Command::new("sh")
            .arg("-c")
            .arg(line)
            .env("TZ", tz)
            .env_remove("SOURCE_DATE_EPOCH"));
        let stem = out.join(stem("rpi4"));
        let files = ["img", "img.xz", "img.gz", "bmap"]
            .map(|e| PathBuf::from(format!("{}.{e}", stem.display())));
        let mut s: Vec<String> = files.iter().map(|f| sha256(f)).collect();
        s.push(sha256(&out.join("os_list.json")));
        s.push(sha256(&out.join("build-manifest.json")));
        sums.push(s);
    }
    assert_eq!(
        sums[0], sums[1],
        "img, img.xz, img.gz, bmap, os_list.json, build-manifest.json"
    );
}

#[test]
fn assembly_runs_as_a_non_root_user() {
    let out = tempfile::tempdir().unwrap();
    let status = if rustix_uid() == 0 {
        // As root, drop to nobody for the whole build, with the binary and inputs copied to
        // where nobody can read them (the checkout may sit under a private home).
        let work = out.path();
        let recipe = edited(work, "recipes/d3kos.toml", "[overlay]", "[overlay]");
        run(Command::new("cp")
            .arg("-r")
            .arg(repo().join("rootfs-overlay"))
            .arg(work));
        let text = std::fs::read_to_string(&recipe).unwrap();
        let overlay = format!("\"{}\"", repo().join("rootfs-overlay").display());
        std::fs::write(&recipe, text.replace(&overlay, "\"../rootfs-overlay\"")).unwrap();
        let bin = work.join("d3kos-build");
        std::fs::copy(BIN, &bin).unwrap();
        run(Command::new("chown").arg("-R").arg("65534:65534").arg(work));
        run(Command::new("chmod").arg("-R").arg("a+rX").arg(work));
        let mut wrapped = Command::new("setpriv");
        wrapped
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin);
        wrapped
            .args(build_with(&recipe, "qemu-arm64", fixture_tar(), &work.join("out")).get_args());
        wrapped
            .env_remove("SOURCE_DATE_EPOCH")
            .env("HOME", work)
            .current_dir(work);
        run(&mut wrapped)
    } else {
        run(&mut build_cmd(
            "qemu-arm64",
            fixture_tar(),
            &out.path().join("out"),
        ))
    };
    assert!(status.status.success());
    let img = out.path().join(format!("out/{}.img", stem("qemu-arm64")));
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&img).unwrap());
    assert_ne!(owner, 0, "the image was written by the unprivileged user");
    // Root ownership, setuid and capabilities still land in the image.
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("out/build-manifest.json")).unwrap(),
    )
    .unwrap();
    let sys = manifest["partition_table"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "system-a")
        .unwrap()
        .clone();
    let part = out.path().join("system.part");
    extract(
        &img,
        sys["start"].as_u64().unwrap(),
        sys["size"].as_u64().unwrap(),
        &part,
    );
    let stats = stat_all(
        &part,
        &["usr/bin/ping".to_owned(), "home/skipper".to_owned()],
    );
    assert_eq!(
        (stats["usr/bin/ping"].uid, stats["usr/bin/ping"].mode),
        (0, 0o4755)
    );
    assert_eq!(
        stats["usr/bin/ping"].xattrs,
        vec![(
            "security.capability".to_owned(),
            fixture::CAP_NET_RAW.to_vec()
        )]
    );
    assert_eq!(stats["home/skipper"].uid, 1000);
}

/// A build that must fail: its message contains `expect`, and the output folder holds
/// nothing afterwards.
fn refused(cmd: &mut Command, out: &Path, expect: &[&str]) {
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "the build succeeded but should not have"
    );
    for e in expect {
        assert!(stderr.contains(e), "expected `{e}` in: {stderr}");
    }
    let left: Vec<String> = std::fs::read_dir(out)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "left behind in the output folder: {left:?}"
    );
}

/// A copy of the repository's recipe and boards (with the files beside them, such as
/// boards/rpi4/'s overlay) with one text replaced.
fn edited(work: &Path, file: &str, from: &str, to: &str) -> PathBuf {
    for dir in ["recipes", "boards"] {
        std::fs::create_dir_all(work.join(dir)).unwrap();
        for e in std::fs::read_dir(repo().join(dir)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                run(Command::new("cp")
                    .arg("-r")
                    .arg(e.path())
                    .arg(work.join(dir)));
                continue;
            }
            let mut text = std::fs::read_to_string(e.path()).unwrap();
            text = text.replace(
                "\"../rootfs-overlay\"",
                &format!("\"{}\"", repo().join("rootfs-overlay").display()),
            );
            if format!("{dir}/{}", e.file_name().to_string_lossy()) == file {
                assert!(text.contains(from), "{file} has no `{from}`");
                text = text.replacen(from, to, 1);
            }
            std::fs::write(work.join(dir).join(e.file_name()), text).unwrap();
        }
    }
    work.join("recipes/d3kos.toml")
}

fn line_of(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

/// The build refuses the edited file with an error naming the file, the line holding
/// `at_line` and the key.
fn refused_config(file: &str, from: &str, to: &str, at_line: &str, key: &str, message: &str) {
    let work = tempfile::tempdir().unwrap();
    let recipe = edited(work.path(), file, from, to);
    let out = work.path().join("out");
    let mut cmd = build_with(&recipe, "rpi4", fixture_tar(), &out);
    let path = work.path().join(file);
    let line = line_of(&path, at_line);
    refused(
        &mut cmd,
        &out,
        &[&format!("{}:{line}: {key}", path.display()), message],
    );
}

#[test]
fn unknown_recipe_key_is_named_with_file_and_line() {
    refused_config(
        "recipes/d3kos.toml",
        "seed = \"d3kos\"",
        "seed = \"d3kos\"\ncolour = \"blue\"",
        "colour =",
        "colour",
        "unknown field",
    );
}

#[test]
fn malformed_size_is_named_with_file_and_line() {
    refused_config(
        "boards/rpi4.toml",
        "size = \"36M\"",
        "size = \"36 furlongs\"",
        "furlongs",
        "partition[0].size",
        "not a size unit",
    );
}

#[test]
fn boot_slot_without_system_slot_is_refused() {
    refused_config(
        "boards/rpi4.toml",
        "name = \"system-b\"\nrole = \"system\"\nslot = \"b\"",
        "name = \"system-b\"\nrole = \"system\"\nslot = \"a\"",
        "slot = \"b\"",
        "partition[2].slot",
        "no system partition has slot b",
    );
}

#[test]
fn overlapping_partition_is_refused() {
    refused_config(
        "boards/rpi4.toml",
        "label = \"BOOT-B\"",
        "label = \"BOOT-B\"\nstart = \"100M\"",
        "start =",
        "partition[2].start",
        "inside the partition before it",
    );
}

#[test]
fn fat32_too_small_is_refused() {
    refused_config(
        "boards/rpi4.toml",
        "size = \"36M\"",
        "size = \"8M\"",
        "\"8M\"",
        "partition[0].size",
        "too small for FAT32",
    );
}

#[test]
fn content_larger_than_a_fixed_partition_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let recipe = edited(
        work.path(),
        "boards/qemu-amd64.toml",
        "size = \"256M\"",
        "size = \"36M\"",
    );
    // Both boot slots, which must be the same size.
    let board = work.path().join("boards/qemu-amd64.toml");
    let text = std::fs::read_to_string(&board).unwrap();
    std::fs::write(&board, text.replace("size = \"256M\"", "size = \"36M\"")).unwrap();
    let rootfs = work.path().join("rootfs.tar");
    let mut tree = fixture::tree(0);
    tree.insert(
        format!("boot/vmlinuz-{}", fixture::KERNEL_VERSION).as_bytes(),
        builder::rootfs::Entry::file(vec![1u8; 40 << 20], 0o644, 0),
    );
    fixture::write_tar(&tree, &rootfs);
    let out = work.path().join("out");
    let mut cmd = build_with(&recipe, "qemu-amd64", &rootfs, &out);
    refused(
        &mut cmd,
        &out,
        &["partition `boot-a`", "does not fit the fixed size"],
    );
}

#[test]
fn a_system_larger_than_its_slot_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let recipe = edited(
        work.path(),
        "boards/qemu-amd64.toml",
        "grow_to = \"4G\"",
        "grow_to = \"12M\"",
    );
    let board = work.path().join("boards/qemu-amd64.toml");
    let text = std::fs::read_to_string(&board).unwrap();
    std::fs::write(&board, text.replace("size = \"4G\"", "size = \"12M\"")).unwrap();
    let rootfs = work.path().join("rootfs.tar");
    let mut tree = fixture::tree(0);
    tree.insert(
        b"etc/large",
        builder::rootfs::Entry::file(vec![7u8; 16 << 20], 0o644, 0),
    );
    fixture::write_tar(&tree, &rootfs);
    let out = work.path().join("out");
    let mut cmd = build_with(&recipe, "qemu-amd64", &rootfs, &out);
    refused(
        &mut cmd,
        &out,
        &[
            "partition `system-a` needs",
            "its slot is 12 MiB",
            "raise `grow_to`",
        ],
    );
}

#[test]
fn tarball_escaping_the_root_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("evil.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    // Written raw: the tar crate refuses to create `..` paths itself.
    h.as_gnu_mut().unwrap().name[..17].copy_from_slice(b"../../etc/passwd\0");
    h.set_cksum();
    b.append(&h, &b"evil"[..]).unwrap();
    b.finish().unwrap();
    let out = work.path().join("out");
    refused(
        &mut build_cmd("rpi4", &tar, &out),
        &out,
        &["../../etc/passwd", "leaves the root"],
    );
}

#[test]
fn truncated_tarball_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("cut.tar.gz");
    let mut full = Vec::new();
    std::fs::File::open(fixture_tar())
        .unwrap()
        .take(8 << 20)
        .read_to_end(&mut full)
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&full).unwrap();
    let gz = gz.finish().unwrap();
    std::fs::write(&tar, &gz[..gz.len() / 2]).unwrap();
    let out = work.path().join("out");
    refused(
        &mut build_cmd("rpi4", &tar, &out),
        &out,
        &["cut.tar.gz", "cannot decompress"],
    );
}

#[test]
fn missing_root_file_system_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    refused(
        &mut build_cmd("rpi4", &work.path().join("nowhere.tar"), &out),
        &out,
        &["nowhere.tar", "No such file"],
    );
}

#[test]
fn old_mke2fs_is_refused_with_a_way_out() {
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("mke2fs");
    std::fs::write(&fake, "#!/bin/sh\necho 'mke2fs 1.47.0 (5-Feb-2023)' >&2\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = work.path().join("out");
    let mut cmd = build_cmd("rpi4", fixture_tar(), &out);
    cmd.env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    refused(
        &mut cmd,
        &out,
        &["mke2fs 1.47.0 is too old", "bookworm-backports"],
    );
}

#[test]
fn help_matches_the_golden_text() {
    for cmd in ["build", "bundle", "inspect", "prepare", "verify"] {
        let out = run(Command::new(BIN)
            .arg(cmd)
            .arg("--help")
            .env("COLUMNS", "100"));
        assert_golden(
            &format!("help-{cmd}.txt"),
            &String::from_utf8(out.stdout).unwrap(),
        );
    }
}

#[test]
fn rpi4_without_the_pican_m_loads_no_overlay() {
    let work = tempfile::tempdir().unwrap();
    let recipe = edited(
        work.path(),
        "recipes/d3kos.toml",
        "pican_m = true",
        "pican_m = false",
    );
    let out = work.path().join("out");
    run(&mut build_with(&recipe, "rpi4", fixture_tar(), &out));
    let img = out.join(format!("{}.img", stem("rpi4")));
    let (_, parts) = sfdisk(&img);
    let boot_a = out.join("boot-a.part");
    extract(&img, parts[1].start, parts[1].size, &boot_a);
    let config_txt = mtype(&boot_a, "config.txt");
    assert!(!config_txt.contains("dtoverlay"), "{config_txt}");
    let listing = run(Command::new("mdir")
        .args(["-b", "-i"])
        .arg(&boot_a)
        .arg("::/overlays")
        .env("MTOOLS_SKIP_CHECK", "1"));
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("vc4-kms-v3d.dtbo"), "{listing}");
    assert!(!listing.contains("pican-m"), "{listing}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("build-manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["boot"]["dtoverlays"], serde_json::json!([]));
}

#[test]
fn pican_m_value_that_is_not_a_boolean_is_named_with_file_and_line() {
    refused_config(
        "recipes/d3kos.toml",
        "pican_m = true",
        "pican_m = \"yes\"",
        "pican_m =",
        "hardware.pican_m",
        "is neither true nor false",
    );
}

/// The shipped overlay is what its source compiles to: both decompiled by the same dtc say
/// the same, whichever dtc compiled the shipped one.
#[test]
fn pican_m_overlay_is_its_source_compiled() {
    let work = tempfile::tempdir().unwrap();
    let compiled = work.path().join("pican-m.dtbo");
    run(Command::new("dtc")
        .args(["-@", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&compiled)
        .arg(repo().join("boards/rpi4/pican-m.dts")));
    let decompile = |dtbo: &Path| {
        let out = run(Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts", "-q"])
            .arg(dtbo));
        String::from_utf8(out.stdout).unwrap()
    };
    let shipped = decompile(&repo().join("boards/rpi4/pican-m.dtbo"));
    assert_eq!(
        shipped,
        decompile(&compiled),
        "boards/rpi4/pican-m.dtbo is stale: compile it again as boards/rpi4/pican-m.dts says"
    );
    for label in ["__fixups__", "spi = ", "gpio = ", "microchip,mcp2515"] {
        assert!(
            shipped.contains(label),
            "the overlay lacks {label}: {shipped}"
        );
    }
}

#[test]
fn rpi4_gpt_variant_is_one_setting_away() {
    let work = tempfile::tempdir().unwrap();
    let recipe = edited(
        work.path(),
        "boards/rpi4.toml",
        "table = \"mbr\"",
        "table = \"gpt\"",
    );
    let out = work.path().join("out");
    run(&mut build_with(&recipe, "rpi4", fixture_tar(), &out));
    let img = out.join(format!("{}.img", stem("rpi4")));
    let (label, parts) = sfdisk(&img);
    assert_eq!(label, "gpt");
    assert_eq!(
        parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        vec![1, 2, 3, 4],
        "no extended partition on GPT"
    );
    let v = run(Command::new("sgdisk").arg("-v").arg(&img));
    assert!(String::from_utf8_lossy(&v.stdout).contains("No problems found"));
    let config = out.join("config.part");
    extract(&img, parts[0].start, parts[0].size, &config);
    assert_eq!(mtype(&config, "autoboot.txt"), autoboot_2_then_3());
    let boot_a = out.join("boot-a.part");
    extract(&img, parts[1].start, parts[1].size, &boot_a);
    assert!(
        mtype(&boot_a, "cmdline.txt").starts_with(&format!("root=PARTUUID={} ", parts[3].partuuid))
    );
    let verify = run(Command::new(BIN).arg("verify").arg(&img));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("checks passed"));
}

/// A minisign key pair made by minisign itself, without a password: (secret, public).
fn minisign_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let (sk, pk) = (dir.join("update.key"), dir.join("update.pub"));
    run(Command::new("minisign")
        .arg("-G")
        .arg("-W")
        .arg("-f")
        .arg("-s")
        .arg(&sk)
        .arg("-p")
        .arg(&pk));
    (sk, pk)
}

/// The manifest and signature of a bundle, as minisign's files.
fn bundle_parts(bundle: &Path, dir: &Path) -> (PathBuf, PathBuf, usize) {
    let bytes = std::fs::read(bundle).unwrap();
    assert_eq!(&bytes[..8], b"D3KB\x00\x01\r\n");
    let m = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let s = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let (manifest, sig) = (dir.join("manifest.json"), dir.join("manifest.json.minisig"));
    std::fs::write(&manifest, &bytes[16..16 + m]).unwrap();
    std::fs::write(&sig, &bytes[16 + m..16 + m + s]).unwrap();
    (manifest, sig, 16 + m + s)
}

#[test]
fn an_image_becomes_a_signed_bundle_that_minisign_and_the_device_accept() {
    let work = tempfile::tempdir().unwrap();
    let (sk, pk) = minisign_keys(work.path());
    let out = work.path().join("out");
    run(build_cmd("rpi4", fixture_tar(), &out)
        .arg("--formats")
        .arg("img")
        .arg("--key")
        .arg(&sk));
    let image = out.join(format!("{}.img", stem("rpi4")));
    let bundle = out.join(format!("{}.d3kb", stem("rpi4")));
    // Readable by all, like the images it is published beside (regression: it was 0600).
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&bundle).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let sum = std::fs::read_to_string(out.join(format!("{}.d3kb.sha256", stem("rpi4")))).unwrap();
    assert_eq!(sum, format!("{}  {}.d3kb\n", sha256(&bundle), stem("rpi4")));

    // minisign itself accepts the manifest's signature with the public key.
    let (manifest, sig, header) = bundle_parts(&bundle, work.path());
    let said = run(Command::new("minisign")
        .arg("-V")
        .arg("-p")
        .arg(&pk)
        .arg("-m")
        .arg(&manifest)
        .arg("-x")
        .arg(&sig));
    let said = String::from_utf8_lossy(&said.stdout);
    assert!(
        said.contains("Signature and comment signature verified")
            && said.contains(&format!("d3kOS {} rpi4", version())),
        "{said}"
    );
    let m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(m["compatible"], "d3kOS/rpi4");
    assert_eq!(m["block_size"], 1 << 20);
    assert_eq!(
        m["payload"]["size"].as_u64().unwrap() as usize + header,
        std::fs::metadata(&bundle).unwrap().len() as usize
    );

    // The device's reader gives back the image's boot-a and system-a partitions exactly, and
    // a boot-b that fsck.fat passes and whose cmdline.txt names system-b.
    let mut keys = appliance::bundle::Keys::default();
    keys.add_text(&std::fs::read_to_string(&pk).unwrap(), &pk)
        .unwrap();
    let opened =
        appliance::bundle::Opened::open(std::fs::File::open(&bundle).unwrap(), &keys).unwrap();
    let mut unpacked: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    opened
        .unpack(
            |_| true,
            |b| -> Result<(), appliance::bundle::BundleError> {
                unpacked
                    .entry(b.image.name.clone())
                    .or_default()
                    .extend_from_slice(b.bytes);
                Ok(())
            },
        )
        .unwrap();
    let (_, parts) = sfdisk(&image);
    let built: Value =
        serde_json::from_slice(&std::fs::read(out.join("build-manifest.json")).unwrap()).unwrap();
    let planned = |name: &str| {
        built["partition_table"]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let part = |name: &str| {
        let n = planned(name)["number"].as_u64().unwrap() as u32;
        parts.iter().find(|p| p.number == n).unwrap().clone()
    };
    for (image_name, partition) in [("boot-a", "boot-a"), ("system", "system-a")] {
        let p = part(partition);
        let dest = work.path().join(partition);
        extract(&image, p.start, p.size, &dest);
        assert!(
            std::fs::read(&dest).unwrap() == unpacked[image_name],
            "{image_name} is not the image's {partition}"
        );
    }
    let boot_b = work.path().join("boot-b.vfat");
    std::fs::write(&boot_b, &unpacked["boot-b"]).unwrap();
    run(Command::new("fsck.fat").arg("-n").arg(&boot_b));
    let cmdline = mtype(&boot_b, "cmdline.txt");
    let system_b = planned("system-b")["partuuid"].as_str().unwrap().to_owned();
    assert!(
        cmdline.starts_with(&format!("root=PARTUUID={system_b} ")),
        "{cmdline}"
    );
    assert_eq!(
        cmdline.replace(&system_b, planned("system-a")["partuuid"].as_str().unwrap()),
        mtype(&work.path().join("boot-a"), "cmdline.txt")
    );
    assert!(mtype(&boot_b, "config.txt").contains(", boot slot b. Written by d3kos-build"));
    assert_eq!(
        mtype_bytes(&boot_b, &format!("vmlinuz-{}", fixture::KERNEL_VERSION)),
        mtype_bytes(
            &work.path().join("boot-a"),
            &format!("vmlinuz-{}", fixture::KERNEL_VERSION)
        )
    );

    // Packed again from the image: the same manifest and payload (only minisign's hedged
    // signature differs).
    let again = work.path().join("again");
    run(Command::new(BIN)
        .arg("bundle")
        .arg(&image)
        .arg("--key")
        .arg(&sk)
        .arg("--out")
        .arg(&again));
    let (manifest2, _, header2) =
        bundle_parts(&again.join(format!("{}.d3kb", stem("rpi4"))), work.path());
    assert_eq!(
        std::fs::read(&manifest2).unwrap(),
        std::fs::read(&manifest).unwrap()
    );
    let (a, b) = (
        std::fs::read(&bundle).unwrap(),
        std::fs::read(again.join(format!("{}.d3kb", stem("rpi4")))).unwrap(),
    );
    assert!(a[header..] == b[header2..], "the payloads differ");

    // A wrong key file is refused before anything is built.
    std::fs::write(
        work.path().join("bad.key"),
        "untrusted comment: x\nnonsense\n",
    )
    .unwrap();
    let failed = Command::new(BIN)
        .arg("bundle")
        .arg(&image)
        .arg("--key")
        .arg(work.path().join("bad.key"))
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let said = String::from_utf8_lossy(&failed.stderr);
    assert!(said.contains("is not a minisign secret key"), "{said}");
}
