//! Checking a finished image the way the firmware and the field's tools will see it.

use appliance::layout::autoboot::AUTOBOOT_LEN;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::probe::{self, Contents, Probed};
use crate::tool::{Invocation, ToolError};

/// One check and what it found.
#[derive(Debug, Clone)]
pub struct Check {
    pub ok: bool,
    pub what: String,
}

#[derive(Debug, Default)]
pub struct Findings {
    pub checks: Vec<Check>,
}

impl Findings {
    fn pass(&mut self, what: impl Into<String>) {
        self.checks.push(Check {
            ok: true,
            what: what.into(),
        });
    }
    fn fail(&mut self, what: impl Into<String>) {
        self.checks.push(Check {
            ok: false,
            what: what.into(),
        });
    }
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        self.checks.push(Check {
            ok,
            what: what.into(),
        });
    }
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

pub struct Options {
    pub require_checksums: bool,
    pub fsck: bool,
}

fn sidecar(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

pub fn verify(image: &Path, opts: &Options) -> anyhow::Result<Findings> {
    let mut f = Findings::default();
    checksums(image, opts, &mut f)?;
    let p = probe::probe(image)?;
    table(&p, &mut f);
    let manifest = manifest_for(image);
    boot(image, &p, manifest.as_ref(), &mut f)?;
    if opts.fsck {
        fsck(image, &p, &mut f)?;
    }
    Ok(f)
}

fn checksums(image: &Path, opts: &Options, f: &mut Findings) -> anyhow::Result<()> {
    let mut candidates = vec![image.to_owned()];
    for ext in ["xz", "gz"] {
        let mut s = image.as_os_str().to_owned();
        s.push(format!(".{ext}"));
        candidates.push(PathBuf::from(s));
    }
    for (i, file) in candidates.iter().enumerate() {
        let side = sidecar(file);
        if !file.exists() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&side) else {
            if i == 0 && opts.require_checksums {
                f.fail(format!(
                    "{} has no checksum file {}",
                    file.display(),
                    side.display()
                ));
            }
            continue;
        };
        let expected = text.split_whitespace().next().unwrap_or("");
        let found = crate::digest::sum_file(file)?.sha256;
        f.check(
            expected == found,
            format!(
                "{}: sha256 {}",
                file.display(),
                if expected == found {
                    "matches"
                } else {
                    "DOES NOT match its .sha256"
                }
            ),
        );
    }
    Ok(())
}

fn table(p: &Probed, f: &mut Findings) {
    let mut entries = p.table.entries.clone();
    entries.sort_by_key(|e| e.start);
    for e in &entries {
        f.check(
            e.size > 0 && e.start % 512 == 0,
            format!("partition {} starts on a sector and is not empty", e.number),
        );
        f.check(
            e.start + e.size <= p.size,
            format!("partition {} ends inside the image", e.number),
        );
    }
    for w in entries.windows(2) {
        f.check(
            w[0].start + w[0].size <= w[1].start,
            format!(
                "partitions {} and {} do not overlap",
                w[0].number, w[1].number
            ),
        );
    }
}

/// The build manifest beside the image, when it is there: it says which partition is which slot.
fn manifest_for(image: &Path) -> Option<serde_json::Value> {
    let path = image.parent()?.join("build-manifest.json");
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn boot(
    image: &Path,
    p: &Probed,
    manifest: Option<&serde_json::Value>,
    f: &mut Findings,
) -> anyhow::Result<()> {
    let fat: BTreeMap<u32, Vec<String>> = p
        .partitions
        .iter()
        .filter_map(|part| match &part.contents {
            Contents::Vfat { files, .. } => Some((
                part.entry.number,
                files.iter().map(|x| x.path.clone()).collect(),
            )),
            _ => None,
        })
        .collect();
    let slot_of = |number: u32| -> Option<String> {
        manifest?["partition_table"]["partitions"]
            .as_array()?
            .iter()
            .find(|x| x["number"] == number)
            .and_then(|x| x["slot"].as_str().map(str::to_owned))
    };

    // The firmware reads autoboot.txt only from the first partition, which must be FAT.
    let Some(first) = p.table.entry(1) else {
        f.fail("the image has no partition 1");
        return Ok(());
    };
    if let Some(files) = fat.get(&first.number) {
        f.pass("partition 1 is FAT");
        if files.iter().any(|x| x == "autoboot.txt") {
            let text = probe::read_fat_file(image, &p.table, 1, "autoboot.txt")?;
            // The fixed length a commit rewrites in place (under the firmware's 512).
            f.check(
                text.len() == AUTOBOOT_LEN,
                format!(
                    "autoboot.txt is {} bytes ({AUTOBOOT_LEN}, under 512, so an update rewrites it in place)",
                    text.len()
                ),
            );
            for line in String::from_utf8_lossy(&text).lines() {
                if let Some(n) = line.trim().strip_prefix("boot_partition=") {
                    let ok = n.trim().parse::<u32>().is_ok_and(|n| fat.contains_key(&n));
                    f.check(
                        ok,
                        format!(
                            "autoboot.txt boot_partition={} names a FAT partition",
                            n.trim()
                        ),
                    );
                }
            }
        }
    } else {
        f.fail("partition 1 is not FAT: the Raspberry Pi firmware reads autoboot.txt from it");
    }

    let firmware: Vec<String> = manifest
        .and_then(|m| m["boot"]["firmware_files"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let arm64 = manifest.is_some_and(|m| m["arch"] == "arm64");
    for (&number, files) in &fat {
        if files.iter().any(|x| x == "cmdline.txt") {
            let text = String::from_utf8_lossy(&probe::read_fat_file(
                image,
                &p.table,
                number,
                "cmdline.txt",
            )?)
            .into_owned();
            f.check(
                text.lines().count() == 1,
                format!("partition {number}: cmdline.txt is one line"),
            );
            let root = text
                .split_whitespace()
                .find_map(|w| w.strip_prefix("root=PARTUUID="));
            match root.and_then(|r| p.partitions.iter().find(|x| x.entry.partuuid.eq_ignore_ascii_case(r))) {
                Some(target) => {
                    f.check(
                        matches!(target.contents, Contents::Ext4 { .. }),
                        format!("partition {number}: root=PARTUUID={} is ext4 partition {}", target.entry.partuuid, target.entry.number),
                    );
                    if let (Some(a), Some(b)) = (slot_of(number), slot_of(target.entry.number)) {
                        f.check(a == b, format!("partition {number} (slot {a}) boots the system of slot {b}"));
                    }
                }
                None => f.fail(format!("partition {number}: cmdline.txt root= names no partition of this image ({root:?})")),
            }
        }
        if files.iter().any(|x| x == "config.txt") {
            let text = String::from_utf8_lossy(&probe::read_fat_file(
                image,
                &p.table,
                number,
                "config.txt",
            )?)
            .into_owned();
            for line in text.lines().map(str::trim) {
                let named = line.strip_prefix("kernel=").or_else(|| {
                    line.strip_prefix("initramfs ")
                        .and_then(|r| r.split_whitespace().next())
                });
                if let Some(file) = named {
                    f.check(
                        files.iter().any(|x| x == file),
                        format!("partition {number}: config.txt names `{file}`, which is there"),
                    );
                }
                // `dtoverlay=NAME,PARAM=VALUE` loads overlays/NAME.dtbo; the firmware skips a
                // missing one with no more than a line in its log.
                let overlay = line
                    .strip_prefix("dtoverlay=")
                    .and_then(|r| r.split([',', ':']).next())
                    .map(str::trim)
                    .filter(|n| !n.is_empty());
                if let Some(name) = overlay {
                    let file = format!("overlays/{name}.dtbo");
                    let there = files.contains(&file);
                    f.check(
                        there,
                        format!("partition {number}: config.txt loads dtoverlay={name}, and {file} is there"),
                    );
                    if there {
                        let bytes = probe::read_fat_file(image, &p.table, number, &file)?;
                        f.check(
                            bytes.starts_with(&crate::config::hat::FDT_MAGIC),
                            format!("partition {number}: {file} is a compiled device tree"),
                        );
                    }
                }
                if let Some(kernel) = line.strip_prefix("kernel=").filter(|_| arm64) {
                    let k = probe::read_fat_file(image, &p.table, number, kernel)?;
                    // arm64 Image header: "ARM\x64" at offset 0x38 (Linux Documentation/arch/arm64/booting.rst);
                    // a gzip-compressed Image is accepted too.
                    let ok = k.get(0x38..0x3c) == Some(b"ARMd") || k.starts_with(&[0x1f, 0x8b]);
                    f.check(
                        ok,
                        format!("partition {number}: {kernel} is an arm64 kernel Image"),
                    );
                }
            }
            for fw in &firmware {
                f.check(
                    files.iter().any(|x| x == fw),
                    format!("partition {number}: firmware file {fw} is there"),
                );
            }
        }
    }
    Ok(())
}

/// Copies one partition out of the image (holes stay holes) so a checker can read it.
fn extract(image: &Path, start: u64, size: u64, dest: &Path) -> std::io::Result<()> {
    let mut src = std::fs::File::open(image)?;
    let mut out = std::fs::File::create(dest)?;
    out.set_len(size)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < size {
        let n = (size - pos).min(buf.len() as u64) as usize;
        src.seek(SeekFrom::Start(start + pos))?;
        src.read_exact(&mut buf[..n])?;
        if buf[..n].iter().any(|&b| b != 0) {
            out.seek(SeekFrom::Start(pos))?;
            out.write_all(&buf[..n])?;
        }
        pos += n as u64;
    }
    Ok(())
}

fn fsck(image: &Path, p: &Probed, f: &mut Findings) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for part in &p.partitions {
        let e = &part.entry;
        let (tool, args, hint): (&'static str, &[&str], &'static str) = match part.contents {
            Contents::Vfat { .. } => ("fsck.fat", &["-n"], "install dosfstools"),
            Contents::Ext4 { .. } => ("e2fsck", &["-fn"], "install e2fsprogs"),
            Contents::Unknown => continue,
        };
        let copy = dir.path().join(format!("p{}", e.number));
        extract(image, e.start, e.size, &copy)?;
        match Invocation::new(tool, hint).args(args).arg(&copy).output() {
            Ok(_) => f.pass(format!(
                "partition {}: `{tool} {}` finds no errors",
                e.number,
                args.join(" ")
            )),
            Err(ToolError::Missing { .. }) => log::warn!(
                "{tool} is not installed; partition {} not checked by it",
                e.number
            ),
            Err(err) => f.fail(format!("partition {}: {err}", e.number)),
        }
        let _ = std::fs::remove_file(&copy);
    }
    Ok(())
}
