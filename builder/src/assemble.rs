//! Assembly: lays the partitions of a board into one raw disk image, sized to the content,
//! without root, loop devices or mounts.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use appliance::disk::{self, PartType, TableError};
use appliance::layout::{
    Create, Extent, FsKind, GPT_BACKUP_SECTORS, Placer, Plan, PlannedPartition, Role, SECTOR,
    SizeSpec, Slot, TableKind,
};
use serde::Serialize;

use crate::boot::{self, BootError, KernelFiles};
use crate::config::board::Board;
use crate::config::{ConfigError, Recipe};
use crate::digest::Sum;
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
    #[error(
        "partition `{name}` needs {} MiB for its content but its slot is {} MiB on the device \
         (`grow_to`): raise `grow_to` and its twin's size in the board, or ship less",
        size.div_ceil(1 << 20),
        grow_to >> 20
    )]
    LargerThanSlot {
        name: String,
        size: u64,
        grow_to: u64,
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

/// The partition plan of `board` for `recipe`: every partition's number, PARTUUID, type and
/// file system id. They derive from the seed and the board (what the card keeps: the table,
/// the partitions, the file systems first boot makes) and the version (the file systems the
/// image ships), never from sizes, so the plan can go into the root file system before the
/// image is assembled, and [`assemble`] writes its table from this same plan.
pub fn plan(recipe: &Recipe, board: &Board) -> Plan {
    let layout = &board.layout;
    let card = Ids::card(&recipe.seed, &board.name);
    let release = Ids::new(&recipe.seed, &board.name, &recipe.version);
    let signature = card.mbr_signature();
    let partitions = layout
        .partitions
        .iter()
        .zip(layout.numbers())
        .map(|(spec, number)| PlannedPartition {
            spec: spec.clone(),
            number,
            partuuid: match layout.table {
                TableKind::Mbr => format!("{signature:08x}-{number:02x}"),
                TableKind::Gpt => card.partition_guid(&spec.name).to_string(),
            },
            type_id: PartType::of(layout.table, spec.role, spec.fs, board.arch).to_string(),
            fs_uuid: {
                let ids = match spec.create {
                    Create::Build => &release,
                    Create::FirstBoot => &card,
                };
                match spec.fs {
                    FsKind::Vfat => Some(fat::volume_id_text(ids.fat_volume_id(&spec.name))),
                    FsKind::Ext4 => Some(ids.fs_uuid(&spec.name).to_string()),
                    FsKind::None => None,
                }
            },
        })
        .collect();
    Plan {
        table: layout.table,
        disk_id: match layout.table {
            TableKind::Mbr => format!("{signature:08x}"),
            TableKind::Gpt => card.disk_guid().to_string(),
        },
        partitions,
    }
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
    let plan = plan(recipe, board);
    let numbers = layout.numbers();
    let partuuid = |i: usize| plan.partitions[i].partuuid.clone();

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
            fs_uuid: plan.partitions[i].fs_uuid.clone(),
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
                            )?
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
                let volume_id = fat_volume_id(&plan.partitions[i]);
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
                let fs_uuid = plan.partitions[i]
                    .fs_uuid
                    .as_deref()
                    .and_then(|u| u.parse().ok())
                    .expect("the plan gives every ext4 partition a UUID");
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
                entry.free = Some(built.free);
                built.size
            }
            FsKind::None => match spec.size {
                SizeSpec::Fixed(b) => b,
                SizeSpec::Content(_) => unreachable!("validated: no content without a file system"),
            },
        };
        if let Some(grow_to) = spec.grow_to
            && size > grow_to
        {
            return Err(AssembleError::LargerThanSlot {
                name: spec.name.clone(),
                size,
                grow_to,
            });
        }
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
    let parts = placed
        .iter()
        .zip(&plan.partitions)
        .filter_map(|(p, planned)| {
            Some(disk::Part {
                number: p.number,
                part_type: PartType::parse(layout.table, &planned.type_id)
                    .expect("the plan's types come from PartType"),
                partuuid: p.partuuid.clone(),
                name: p.label.clone(),
                extent: Extent {
                    start: p.start?,
                    size: p.size,
                },
            })
        })
        .collect::<Vec<_>>();
    disk::write(
        &mut file,
        &image,
        layout.table,
        &plan.disk_id,
        &parts,
        total,
    )?;
    let disk_id = plan.disk_id.clone();
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

/// The FAT volume id the plan gives a partition, as a number.
fn fat_volume_id(p: &PlannedPartition) -> u32 {
    p.fs_uuid
        .as_deref()
        .and_then(|text| u32::from_str_radix(&text.replace('-', ""), 16).ok())
        .expect("the plan gives every FAT partition a volume id")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(board: &str) -> (Recipe, Board) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        (
            Recipe::load(&root.join("recipes/d3kos.toml")).unwrap(),
            Board::load(&root.join(format!("boards/{board}.toml"))).unwrap(),
        )
    }

    #[test]
    fn the_plan_comes_from_the_ids_not_the_sizes() {
        let (recipe, mut board) = load("rpi4");
        let p = plan(&recipe, &board);
        assert_eq!(p.table, TableKind::Mbr);
        let numbers: Vec<u32> = p.partitions.iter().map(|x| x.number).collect();
        assert_eq!(numbers, vec![1, 2, 3, 5, 6, 7]);
        for x in &p.partitions {
            assert_eq!(x.partuuid, format!("{}-{:02x}", p.disk_id, x.number));
        }
        assert_eq!(p.partitions[0].type_id, "0x0c");
        assert_eq!(p.partitions[5].type_id, "0x83");
        assert!(p.partitions.iter().all(|x| x.fs_uuid.is_some()));

        board.layout.partitions[5].size = SizeSpec::Fixed(1 << 40);
        let mut resized = plan(&recipe, &board);
        resized.partitions[5].spec.size = p.partitions[5].spec.size;
        assert_eq!(resized, p, "sizes change no id");
        assert_eq!(Plan::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn a_later_release_finds_the_partitions_of_the_card_it_updates() {
        for board in ["rpi4", "qemu-amd64"] {
            let (mut recipe, board) = load(board);
            let first = plan(&recipe, &board);
            recipe.version = "9.9.9".into();
            let later = plan(&recipe, &board);
            assert_eq!(first.disk_id, later.disk_id);
            for (a, b) in first.partitions.iter().zip(&later.partitions) {
                assert_eq!(a.partuuid, b.partuuid, "{}", a.spec.name);
                // The file systems first boot made stay the device's; each release's own
                // file systems differ, so the two slots never share a UUID.
                match a.spec.create {
                    Create::FirstBoot => assert_eq!(a.fs_uuid, b.fs_uuid, "{}", a.spec.name),
                    Create::Build => assert_ne!(a.fs_uuid, b.fs_uuid, "{}", a.spec.name),
                }
            }
        }
    }

    #[test]
    fn gpt_plans_name_system_partitions_by_architecture() {
        let (recipe, board) = load("qemu-amd64");
        let p = plan(&recipe, &board);
        assert_eq!(p.disk_id.len(), 36);
        let system_a = &p.partitions[3];
        assert_eq!(system_a.spec.name, "system-a");
        assert_eq!(system_a.type_id, "4f68bce3-e8cd-4db1-96e7-fbcaf984b709");
        assert_ne!(p.partitions[4].partuuid, system_a.partuuid);
    }
}
