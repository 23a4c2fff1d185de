//! An update bundle from a built image: its boot partition for each slot and its system
//! partition, packed and signed (the layout is `appliance::bundle`'s).
//!
//! The image ships boot files for slot a only. Slot b's boot partition holds the same files
//! but for cmdline.txt, whose root=PARTUUID= names system-b, and config.txt's header, which
//! names the slot: both are rewritten here from slot a's, and the volume is built as the
//! builder builds every FAT volume, so two runs give the same bytes.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use appliance::bundle::{self, Manifest};
use appliance::layout::{Role, Slot};
use serde::Deserialize;

use crate::fs::fat;
use crate::rootfs::{Entry, Tree};

/// The parts of build-manifest.json a bundle needs.
#[derive(Deserialize)]
struct Built {
    name: String,
    version: String,
    board: String,
    source_date_epoch: i64,
    image: BuiltImage,
    partition_table: BuiltTable,
}

#[derive(Deserialize)]
struct BuiltImage {
    sha256: String,
}

#[derive(Deserialize)]
struct BuiltTable {
    partitions: Vec<BuiltPartition>,
}

#[derive(Deserialize)]
struct BuiltPartition {
    name: String,
    number: u32,
    role: Role,
    slot: Option<Slot>,
    label: String,
    size: u64,
    partuuid: String,
    fs_uuid: Option<String>,
}

pub struct Options<'a> {
    pub image: &'a Path,
    /// The build-manifest.json written with the image.
    pub build_manifest: &'a Path,
    pub key: &'a minisign::SecretKey,
    pub out: &'a Path,
    pub level: i32,
    pub threads: u32,
}

/// Reads a minisign secret key; an encrypted one with the password in `password`.
///
/// A key made with `minisign -G -W` (no password) is read directly: minisign 0.11 writes
/// such keys with a zero checksum, which the minisign crate's reader refuses.
pub fn load_key(path: &Path, password: Option<String>) -> anyhow::Result<minisign::SecretKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the signing key {}", path.display()))?;
    let not_a_key = || anyhow!("{} is not a minisign secret key", path.display());
    let bytes = text
        .lines()
        .nth(1)
        .and_then(|l| bundle::decode_base64(l.trim()))
        .filter(|b| b.len() == 158 && &b[..2] == b"Ed")
        .ok_or_else(not_a_key)?;
    if bytes[2..4] == [0, 0] {
        return minisign::SecretKey::from_bytes(&bytes).map_err(|_| not_a_key());
    }
    let password = password.ok_or_else(|| {
        anyhow!(
            "the signing key {} is encrypted: put its password in D3KOS_KEY_PASSWORD              (`minisign -G -W` makes a key without one)",
            path.display()
        )
    })?;
    minisign::SecretKeyBox::from_string(&text)
        .and_then(|b| b.into_secret_key(Some(password)))
        .map_err(|e| anyhow!("the signing key {} cannot be used: {e}", path.display()))
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    Ok(crate::digest::sum_file(path)?.sha256)
}

fn volume_id(text: &str) -> anyhow::Result<u32> {
    u32::from_str_radix(&text.replace('-', ""), 16)
        .map_err(|_| anyhow!("`{text}` is not a FAT volume id"))
}

/// Slot a's boot files, retargeted to `slot` whose system partition is `root`.
fn boot_tree_for(
    image: &Path,
    start: u64,
    size: u64,
    epoch: i64,
    from_root: &str,
    slot: Slot,
    root: &str,
) -> anyhow::Result<Tree> {
    let (_, _, files) = fat::list(image, start, size)?;
    let mut tree = Tree::new();
    for f in files {
        if f.is_dir {
            tree.insert(f.path.as_bytes(), Entry::dir(0o755));
            continue;
        }
        let mut bytes = fat::read_file(image, start, size, &f.path)?;
        match f.path.as_str() {
            "cmdline.txt" => {
                let text = String::from_utf8(bytes)?;
                let from = format!("root=PARTUUID={from_root}");
                if !text.split_whitespace().any(|w| w == from) {
                    bail!("slot a's cmdline.txt does not say {from}: {text}");
                }
                bytes = text
                    .split(' ')
                    .map(|w| {
                        if w.trim_end() == from {
                            w.replace(from_root, root)
                        } else {
                            w.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
                    .into_bytes();
            }
            "config.txt" => {
                let text = String::from_utf8(bytes)?;
                bytes = text
                    .replacen(
                        ", boot slot a.",
                        &format!(", boot slot {}.", slot.letter()),
                        1,
                    )
                    .into_bytes();
            }
            _ => {}
        }
        tree.insert(f.path.as_bytes(), Entry::file(bytes, 0o644, epoch));
    }
    Ok(tree)
}

/// Writes `NAME-VERSION-BOARD.d3kb` (and its .sha256) into `o.out`; the bundle's path.
pub fn pack(o: &Options) -> anyhow::Result<PathBuf> {
    let built: Built = serde_json::from_slice(
        &std::fs::read(o.build_manifest)
            .with_context(|| format!("reading {}", o.build_manifest.display()))?,
    )
    .with_context(|| format!("{} is not a build manifest", o.build_manifest.display()))?;
    let found = sha256_file(o.image).with_context(|| format!("reading {}", o.image.display()))?;
    if found != built.image.sha256 {
        bail!(
            "{} is not the image {} describes (sha256 {found}, the manifest says {}): give the \
             build-manifest.json written with it",
            o.image.display(),
            o.build_manifest.display(),
            built.image.sha256
        );
    }
    let table = appliance::disk::read(o.image)?;
    let part = |role: Role, slot: Slot| {
        built
            .partition_table
            .partitions
            .iter()
            .find(|p| p.role == role && p.slot == Some(slot))
            .ok_or_else(|| anyhow!("the image has no {role:?} partition for slot {slot:?}"))
    };
    let extent = |p: &BuiltPartition| {
        table
            .entry(p.number)
            .map(|e| (e.start, e.size))
            .ok_or_else(|| {
                anyhow!(
                    "the image's table has no partition {} ({})",
                    p.number,
                    p.name
                )
            })
    };
    let (boot_a, boot_b) = (part(Role::Boot, Slot::A)?, part(Role::Boot, Slot::B)?);
    let (system_a, system_b) = (part(Role::System, Slot::A)?, part(Role::System, Slot::B)?);
    let (a_start, a_size) = extent(boot_a)?;
    let (s_start, s_size) = extent(system_a)?;

    let tree_b = boot_tree_for(
        o.image,
        a_start,
        a_size,
        built.source_date_epoch,
        &system_a.partuuid,
        Slot::B,
        &system_b.partuuid,
    )?;
    let vol_b = fat::build(
        &tree_b,
        &fat::FatParams {
            label: &boot_b.label,
            volume_id: volume_id(boot_b.fs_uuid.as_deref().unwrap_or_default())?,
            source_date_epoch: built.source_date_epoch,
        },
        fat::Sizing::Fixed(boot_b.size),
    )?;

    let mut image = File::open(o.image)?;
    let mut boot_a_bytes = vec![0u8; a_size as usize];
    image.seek(SeekFrom::Start(a_start))?;
    image.read_exact(&mut boot_a_bytes)?;
    image.seek(SeekFrom::Start(s_start))?;
    let mut system = BufReader::with_capacity(1 << 20, image).take(s_size);

    std::fs::create_dir_all(o.out)?;
    let mut payload = tempfile::tempfile_in(o.out)?;
    let mut inputs = [
        bundle::write::Input {
            name: "boot-a".into(),
            role: Role::Boot,
            slot: Some(Slot::A),
            reader: &mut &boot_a_bytes[..],
        },
        bundle::write::Input {
            name: "boot-b".into(),
            role: Role::Boot,
            slot: Some(Slot::B),
            reader: &mut &vol_b.bytes[..],
        },
        bundle::write::Input {
            name: "system".into(),
            role: Role::System,
            slot: None,
            reader: &mut system,
        },
    ];
    let packed = {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut payload);
        let packed = bundle::pack(&mut inputs, bundle::BLOCK_SIZE, o.level, o.threads, &mut w)?;
        w.flush()?;
        packed
    };
    let manifest = Manifest {
        format: bundle::FORMAT,
        product: built.name.clone(),
        version: built.version.clone(),
        board: built.board.clone(),
        compatible: format!("{}/{}", built.name, built.board),
        created: built.source_date_epoch,
        block_size: bundle::BLOCK_SIZE,
        payload: packed.payload,
        images: packed.images,
    };
    manifest.check()?;
    let text = serde_json::to_vec(&manifest)?;
    let signature = minisign::sign(
        None,
        o.key,
        &text[..],
        Some(&format!("{} {} {}", built.name, built.version, built.board)),
        None,
    )
    .map_err(|e| anyhow!("signing the manifest: {e}"))?
    .into_string();

    let name = format!(
        "{}-{}-{}.{}",
        built.name,
        built.version,
        built.board,
        bundle::EXTENSION
    );
    let path = o.out.join(&name);
    let mut tmp = tempfile::NamedTempFile::new_in(o.out)?;
    payload.seek(SeekFrom::Start(0))?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        bundle::write_bundle(&mut w, &text, &signature, &mut BufReader::new(payload))?;
        w.flush()?;
    }
    // A temporary file is made 0600; the bundle is published beside the images, as they are.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path)?;
    let sum = sha256_file(&path)?;
    std::fs::write(
        o.out.join(format!("{name}.sha256")),
        format!("{sum}  {name}\n"),
    )?;
    Ok(path)
}
