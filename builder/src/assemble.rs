//! Assembly: lays the partitions of a board into one raw disk image, sized to the content,
//! without root, loop devices or mounts.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use appliance::layout::{
    Create, FsKind, GPT_BACKUP_SECTORS, Placer, Role, SECTOR, SizeSpec, Slot, TableKind,
};
use serde::Serialize;

use crate::boot::{self, BootError, KernelFiles};
use crate::config::board::Board;
use crate::config::{ConfigError, Recipe};
use crate::digest::Sum;
use crate::disk::{self, TableError};
use crate::fs::{ext4, fat};
use crate::ids::Ids;
use crate::rootfs::Tree;

#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error("partition `{name}`")]
    Fat { name: String, source: fat::FatError },
    #[error("partition `{name}`")]
    Ext4 {
        name: String,
        source: ext4::Ext4Error,
    },
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A partition of the finished image, as the build manifest records it.
#[derive(Debug, Clone, Serialize)]
pub struct Placed {
    pub name: String,
    pub number: u32,
    pub role: Role,
    pub slot: Option<Slot>,
    pub fs: FsKind,
    pub label: String,
    pub create: Create,
    pub grow: bool,
    /// Byte offset and size; for first-boot partitions the size is the declared one and the
    /// start is decided on the device.
    pub start: Option<u64>,
    pub size: u64,
    pub partuuid: String,
    pub fs_uuid: Option<String>,
    /// Free bytes in the file system as built.
    pub free: Option<u64>,
}

#[derive(Debug)]
pub struct Assembled {
    pub image: PathBuf,
    pub size: u64,
    pub disk_id: String,
    pub partitions: Vec<Placed>,
    pub kernel: KernelFiles,
    /// Hash of the system partition's tar stream: the root file system as it went in.
    pub rootfs_stream: Option<Sum>,
}

/// Builds the image for `board` from `rootfs` into `scratch/NAME.img`.
pub fn assemble(
    recipe: &Recipe,
    board: &Board,
    mut rootfs: Tree,
    scratch: &Path,
) -> Result<Assembled, AssembleError> {
    let layout = &board.layout;
    let ids = Ids::new(&recipe.seed, &board.name, &recipe.version);
    let numbers = layout.numbers();
    let signature = ids.mbr_signature();
    let partuuid = |i: usize| match layout.table {
        TableKind::Mbr => format!("{signature:08x}-{:02x}", numbers[i]),
        TableKind::Gpt => ids.partition_guid(&layout.partitions[i].name).to_string(),
    };

    let kernel = boot::find_kernel(&rootfs)?;
    let firmware = rootfs.split_off(b"boot/firmware");
    let shipped = |role: Role, slot: Slot| {
        layout
            .find(role, Some(slot))
            .is_some_and(|i| layout.partitions[i].create == Create::Build)
    };

    let image = scratch.join("disk.img");
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| AssembleError::Io { path, source }
    };
    let mut file = File::create(&image).map_err(io(&image))?;
    let mut placer = Placer::default();
    let mut placed = Vec::new();
    let mut end = 0;
    let mut rootfs_stream = None;

    for (i, spec) in layout.partitions.iter().enumerate() {
        let start = board.starts[i].unwrap_or_else(|| placer.start_for(layout, i));
        if start < placer.start_for(layout, i) {
            return Err(board
                .partition_error(
                    i,
                    "start",
                    format!("starts at {start} bytes, inside the partition before it"),
                )
                .into());
        }
        let mut entry = Placed {
            name: spec.name.clone(),
            number: numbers[i],
            role: spec.role,
            slot: spec.slot,
            fs: spec.fs,
            label: spec.label.clone(),
            create: spec.create,
            grow: spec.grow,
            start: None,
            size: match spec.size {
                SizeSpec::Fixed(b) => b,
                SizeSpec::Content(_) => spec.min_size.unwrap_or(0),
            },
            partuuid: partuuid(i),
            fs_uuid: None,
            free: None,
        };
        if spec.create == Create::FirstBoot {
            placed.push(entry);
            continue;
        }

        let size = match spec.fs {
            FsKind::Vfat => {
                let content = match spec.role {
                    Role::Config => {
                        let a = layout.find(Role::Boot, Some(Slot::A)).map(|j| numbers[j]);
                        let b = layout.find(Role::Boot, Some(Slot::B)).map(|j| numbers[j]);
                        let mut t = Tree::new();
                        if let Some(a) = a {
                            let text = boot::autoboot_txt(a, b)?;
                            t.insert(
                                b"autoboot.txt",
                                crate::rootfs::Entry::file(
                                    text.into_bytes(),
                                    0o644,
                                    recipe.source_date_epoch,
                                ),
                            );
                        }
                        t
                    }
                    Role::Boot => {
                        let slot = spec.slot.expect("boot partitions have slots");
                        let system = layout
                            .find(Role::System, Some(slot))
                            .expect("validated: slots pair up");
                        if shipped(Role::System, slot) {
                            boot::boot_tree(
                                recipe,
                                board,
                                slot,
                                &firmware,
                                &kernel,
                                &partuuid(system),
                            )
                        } else {
                            Tree::new()
                        }
                    }
                    _ => Tree::new(),
                };
                let sizing = match spec.size {
                    SizeSpec::Fixed(b) => fat::Sizing::Fixed(b),
                    SizeSpec::Content(h) => fat::Sizing::Content {
                        headroom: h,
                        min: spec.min_size.unwrap_or(0),
                    },
                };
                let volume_id = ids.fat_volume_id(&spec.name);
                let vol = fat::build(
                    &content,
                    &fat::FatParams {
                        label: &spec.label,
                        volume_id,
                        source_date_epoch: recipe.source_date_epoch,
                    },
                    sizing,
                )
                .map_err(|source| AssembleError::Fat {
                    name: spec.name.clone(),
                    source,
                })?;
                file.set_len(start + vol.bytes.len() as u64)
                    .map_err(io(&image))?;
                for r in &vol.used {
                    file.seek(SeekFrom::Start(start + r.start))
                        .map_err(io(&image))?;
                    file.write_all(&vol.bytes[r.start as usize..r.end as usize])
                        .map_err(io(&image))?;
                }
                entry.fs_uuid = Some(fat::volume_id_text(volume_id));
                entry.free = Some(vol.free);
                vol.bytes.len() as u64
            }
            FsKind::Ext4 => {
                let empty = Tree::new();
                let content = if spec.role == Role::System {
                    &rootfs
                } else {
                    &empty
                };
                let sizing = match spec.size {
                    SizeSpec::Fixed(b) => ext4::Sizing::Fixed(b),
                    SizeSpec::Content(h) => ext4::Sizing::Content {
                        headroom: h,
                        min: spec.min_size.unwrap_or(0),
                    },
                };
                let fs_uuid = ids.fs_uuid(&spec.name);
                let params = ext4::Ext4Params {
                    label: &spec.label,
                    uuid: fs_uuid,
                    hash_seed: ids.ext4_hash_seed(&spec.name),
                    source_date_epoch: recipe.source_date_epoch,
                };
                drop(file);
                let built = ext4::build(&image, start, content, &params, sizing, scratch).map_err(
                    |source| AssembleError::Ext4 {
                        name: spec.name.clone(),
                        source,
                    },
                )?;
                file = File::options()
                    .read(true)
                    .write(true)
                    .open(&image)
                    .map_err(io(&image))?;
                if spec.role == Role::System && rootfs_stream.is_none() {
                    rootfs_stream = Some(built.stream.clone());
                }
                entry.fs_uuid = Some(fs_uuid.to_string());
                entry.free = Some(built.free);
                built.size
            }
            FsKind::None => match spec.size {
                SizeSpec::Fixed(b) => b,
                SizeSpec::Content(_) => unreachable!("validated: no content without a file system"),
            },
        };
        let extent = placer.place_at(start, size);
        entry.start = Some(extent.start);
        entry.size = extent.size;
        end = extent.end();
        placed.push(entry);
    }

    let total = match layout.table {
        TableKind::Gpt => end + GPT_BACKUP_SECTORS * SECTOR,
        TableKind::Mbr => end,
    };
    file.set_len(total).map_err(io(&image))?;
    let shipped_parts = placed.iter().filter(|p| p.start.is_some());
    let disk_id = match layout.table {
        TableKind::Mbr => {
            let parts: Vec<disk::mbr::Part> = shipped_parts
                .map(|p| disk::mbr::Part {
                    number: p.number,
                    type_byte: if p.fs == FsKind::Vfat {
                        disk::mbr::FAT32_LBA
                    } else {
                        disk::mbr::LINUX
                    },
                    extent: appliance::layout::Extent {
                        start: p.start.expect("shipped"),
                        size: p.size,
                    },
                    bootable: false,
                })
                .collect();
            disk::mbr::write(&mut file, signature, &parts).map_err(io(&image))?;
            format!("{signature:08x}")
        }
        TableKind::Gpt => {
            drop(file);
            let parts: Vec<disk::gpt::Part> = shipped_parts
                .map(|p| disk::gpt::Part {
                    number: p.number,
                    type_guid: gpt_type(p.role, p.fs, board.arch),
                    guid: p.partuuid.parse().expect("GPT partuuids are GUIDs"),
                    name: p.label.clone(),
                    extent: appliance::layout::Extent {
                        start: p.start.expect("shipped"),
                        size: p.size,
                    },
                })
                .collect();
            disk::gpt::write(&image, ids.disk_guid(), &parts)?;
            file = File::open(&image).map_err(io(&image))?;
            ids.disk_guid().to_string()
        }
    };
    file.sync_all().map_err(io(&image))?;
    Ok(Assembled {
        image,
        size: total,
        disk_id,
        partitions: placed,
        kernel,
        rootfs_stream,
    })
}

/// GPT partition types: FAT as Microsoft basic data (what the Pi firmware and UEFI read),
/// system partitions as the Discoverable Partitions Specification's root type for the
/// architecture, everything else as Linux file system data.
fn gpt_type(role: Role, fs: FsKind, arch: appliance::layout::Arch) -> gpt::partition_types::Type {
    use gpt::partition_types as t;
    match (role, fs, arch) {
        (_, FsKind::Vfat, _) => t::BASIC,
        (Role::System, _, appliance::layout::Arch::Arm64) => t::LINUX_ROOT_ARM_64,
        (Role::System, _, appliance::layout::Arch::Amd64) => t::LINUX_ROOT_X64,
        _ => t::LINUX_FS,
    }
}
