//! The disk layout contract shared by the image builder and the running device: partition
//! roles, slots, numbering and placement.
//!
//! The builder writes an image from a [`Layout`]; first boot and the A/B updater read the
//! same layout, with its ids, from the [`Plan`] the image carries, to find and create
//! partitions. Nothing here performs I/O.

pub mod autoboot;
mod plan;

use serde::{Deserialize, Serialize};

pub use plan::{PLAN_PATH, Plan, PlanError, PlannedPartition};

/// Sector size every layout is expressed in. SD cards and the disks QEMU emulates use 512.
pub const SECTOR: u64 = 512;

/// Partitions start on this boundary: SD card erase blocks are at most 4 MiB, and a partition
/// that straddles one costs a read-modify-write cycle on every write.
pub const ALIGN: u64 = 4 * 1024 * 1024;

/// Sectors the backup GPT occupies at the end of the disk: 128 entries of 128 bytes plus the
/// header (UEFI 2.10, 5.3).
pub const GPT_BACKUP_SECTORS: u64 = 33;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Gpt,
    Mbr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Arm64,
    Amd64,
}

impl Arch {
    pub fn debian_name(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::Amd64 => "amd64",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Config,
    Boot,
    System,
    Data,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    Vfat,
    Ext4,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn letter(self) -> char {
        match self {
            Slot::A => 'a',
            Slot::B => 'b',
        }
    }
}

/// When a partition comes into existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Create {
    /// Written by the builder and shipped inside the image.
    #[default]
    Build,
    /// Declared in the layout but created by the device on its first boot, so it costs
    /// nothing in the image.
    FirstBoot,
}

/// Free space a content-sized partition keeps on top of what its content needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Headroom {
    Bytes(u64),
    Percent(u32),
}

impl Headroom {
    /// Headroom in bytes for `content` bytes of content.
    pub fn bytes_for(self, content: u64) -> u64 {
        match self {
            Headroom::Bytes(b) => b,
            Headroom::Percent(p) => content.saturating_mul(u64::from(p)).div_ceil(100),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeSpec {
    /// Exactly this many bytes.
    Fixed(u64),
    /// What the content needs plus headroom (the builder's replacement for shrinking a
    /// finished image).
    Content(Headroom),
}

/// One partition as a board declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSpec {
    pub name: String,
    pub role: Role,
    pub fs: FsKind,
    pub slot: Option<Slot>,
    pub size: SizeSpec,
    /// Lower bound for a content-sized partition.
    pub min_size: Option<u64>,
    pub label: String,
    pub create: Create,
    /// The partition is grown to the end of the medium on first boot.
    pub grow: bool,
    /// A shipped partition whose table entry first boot extends in place to this many bytes,
    /// so an A/B slot shipped at its content's size ends as large as its twin. Its file
    /// system stays as built; a release installed there later brings its own.
    #[serde(default)]
    pub grow_to: Option<u64>,
}

/// The partitions of a board, in table order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub table: TableKind,
    pub partitions: Vec<PartitionSpec>,
}

/// MBR type byte of the extended partition that holds the logical ones (LBA addressing).
pub const MBR_EXTENDED_LBA: u8 = 0x0f;

impl Layout {
    /// The partition number each declared partition gets, in declaration order.
    ///
    /// GPT numbers from 1. An MBR holds four primary entries; with more than four partitions
    /// the first three are primary, the fourth entry is the extended partition, and the rest
    /// are logical partitions numbered from 5, as Linux and the Raspberry Pi firmware count them.
    pub fn numbers(&self) -> Vec<u32> {
        let n = self.partitions.len() as u32;
        match self.table {
            TableKind::Gpt => (1..=n).collect(),
            TableKind::Mbr if n <= 4 => (1..=n).collect(),
            TableKind::Mbr => (1..=3).chain(5..=n + 1).collect(),
        }
    }

    /// Whether the partition at `index` is a logical partition inside an MBR extended one.
    pub fn is_logical(&self, index: usize) -> bool {
        self.table == TableKind::Mbr && self.partitions.len() > 4 && index >= 3
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.partitions.iter().position(|p| p.name == name)
    }

    /// The partition of `role` in `slot` (slot `None` for roles without slots).
    pub fn find(&self, role: Role, slot: Option<Slot>) -> Option<usize> {
        self.partitions
            .iter()
            .position(|p| p.role == role && p.slot == slot)
    }

    /// The partition number of the partition at `index`.
    pub fn number(&self, index: usize) -> u32 {
        self.numbers()[index]
    }
}

/// Where a partition sits on the disk, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    pub start: u64,
    pub size: u64,
}

impl Extent {
    pub fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// Rounds `value` up to a multiple of `to`.
pub fn align_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// Places partitions one after another. Logical MBR partitions each need room for their
/// extended boot record in front of them, so they start one alignment unit later.
#[derive(Debug, Clone)]
pub struct Placer {
    next: u64,
}

impl Default for Placer {
    fn default() -> Self {
        Placer { next: ALIGN }
    }
}

impl Placer {
    /// Where the partition at `index` of `layout` starts if placed now.
    pub fn start_for(&self, layout: &Layout, index: usize) -> u64 {
        if layout.is_logical(index) {
            self.next + ALIGN
        } else {
            self.next
        }
    }

    /// Places `size` bytes for the partition at `index` and returns its extent.
    pub fn place(&mut self, layout: &Layout, index: usize, size: u64) -> Extent {
        let start = self.start_for(layout, index);
        self.place_at(start, size)
    }

    /// Places `size` bytes at a start the board pins (at or after [`Placer::start_for`]).
    pub fn place_at(&mut self, start: u64, size: u64) -> Extent {
        let extent = Extent { start, size };
        self.next = align_up(extent.end(), ALIGN);
        extent
    }
}

/// The smallest card size sold (in GB, as on the label) that holds `need` bytes. A card
/// labelled N GB holds somewhat less than N × 10⁹ bytes (its controller keeps spare
/// blocks): 8 GB cards hold 7.4 to 8.0 × 10⁹, so 92 % of the label is what counts.
pub fn card_gb(need: u64) -> u64 {
    [4u64, 8, 16, 32, 64, 128, 256, 512]
        .into_iter()
        .find(|gb| gb * 920_000_000 >= need)
        .unwrap_or(1024)
}

/// Why a layout cannot be grown onto a medium.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrowError {
    #[error(
        "the card holds {:.1} GB ({have} bytes) but d3kOS needs {:.1} GB ({need} bytes): use a \
         card of {} GB or more",
        *have as f64 / 1e9,
        *need as f64 / 1e9,
        card_gb(*need)
    )]
    TooSmall { need: u64, have: u64 },
    #[error("partition `{0}` ships in the image but its place is not known")]
    Unplaced(String),
}

impl Layout {
    /// Where every partition sits on a medium of `disk_bytes` once first boot has run.
    ///
    /// Partitions shipped in the image stay exactly where the image put them (`shipped[i]`),
    /// whatever partitions follow: first boot never moves what it did not create, and only
    /// extends the end of one with `grow_to` (into space nothing else was given). Partitions
    /// declared "first-boot" follow the last shipped one in declaration order, aligned, at
    /// their declared size; the partition marked `grow` then extends to the end of the medium,
    /// less the backup GPT where there is one. The answer depends only on the layout, the
    /// shipped extents and the medium's size, so a first boot cut short computes the same
    /// plan when it resumes.
    pub fn grown(
        &self,
        shipped: &[Option<Extent>],
        disk_bytes: u64,
    ) -> Result<Vec<Extent>, GrowError> {
        let usable_end = match self.table {
            TableKind::Gpt => {
                disk_bytes.saturating_sub(GPT_BACKUP_SECTORS * SECTOR) / SECTOR * SECTOR
            }
            TableKind::Mbr => disk_bytes / SECTOR * SECTOR,
        };
        let mut out = self.placed(shipped)?;
        let need = out.iter().map(Extent::end).max().unwrap_or(0);
        if need > usable_end {
            return Err(GrowError::TooSmall {
                need: self.smallest_medium(shipped)?,
                have: disk_bytes,
            });
        }
        if let Some(i) = self.partitions.iter().position(|p| p.grow) {
            let e = &mut out[i];
            // Whole alignment units: the last partial erase block is left alone.
            let end = usable_end / ALIGN * ALIGN;
            if end > e.end() {
                e.size = end - e.start;
            }
        }
        Ok(out)
    }

    /// The smallest medium this layout fits, with first-boot partitions at their least size
    /// (and room for the backup GPT).
    pub fn smallest_medium(&self, shipped: &[Option<Extent>]) -> Result<u64, GrowError> {
        let end = self
            .placed(shipped)?
            .iter()
            .map(Extent::end)
            .max()
            .unwrap_or(0);
        Ok(match self.table {
            TableKind::Gpt => end + GPT_BACKUP_SECTORS * SECTOR,
            TableKind::Mbr => end,
        })
    }

    /// Shipped partitions where they are, first-boot ones after them at their least size.
    fn placed(&self, shipped: &[Option<Extent>]) -> Result<Vec<Extent>, GrowError> {
        let mut placer = Placer::default();
        let mut out = Vec::with_capacity(self.partitions.len());
        for (i, p) in self.partitions.iter().enumerate() {
            let extent = match (p.create, shipped.get(i).copied().flatten()) {
                // Once grown, the table shows the grown size; either way the same plan follows.
                (Create::Build, Some(e)) => {
                    placer.place_at(e.start, e.size.max(p.grow_to.unwrap_or(0)))
                }
                (Create::Build, None) => return Err(GrowError::Unplaced(p.name.clone())),
                (Create::FirstBoot, _) => {
                    let size = match p.size {
                        SizeSpec::Fixed(b) => b,
                        SizeSpec::Content(_) => p.min_size.unwrap_or(ALIGN),
                    };
                    placer.place(self, i, size)
                }
            };
            out.push(extent);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_counted_by_their_label() {
        assert_eq!(card_gb(6 << 30), 8);
        assert_eq!(card_gb(7_400_000_000), 16);
        assert_eq!(card_gb(3_000_000_000), 4);
    }

    fn spec(name: &str, role: Role, slot: Option<Slot>) -> PartitionSpec {
        PartitionSpec {
            name: name.into(),
            role,
            fs: FsKind::Vfat,
            slot,
            size: SizeSpec::Fixed(ALIGN),
            min_size: None,
            label: name.into(),
            create: Create::Build,
            grow: false,
            grow_to: None,
        }
    }

    fn ab(table: TableKind) -> Layout {
        Layout {
            table,
            partitions: vec![
                spec("config", Role::Config, None),
                spec("boot-a", Role::Boot, Some(Slot::A)),
                spec("boot-b", Role::Boot, Some(Slot::B)),
                spec("system-a", Role::System, Some(Slot::A)),
                spec("system-b", Role::System, Some(Slot::B)),
                spec("data", Role::Data, None),
            ],
        }
    }

    #[test]
    fn mbr_with_more_than_four_partitions_numbers_logicals_from_five() {
        assert_eq!(ab(TableKind::Mbr).numbers(), vec![1, 2, 3, 5, 6, 7]);
        assert!(ab(TableKind::Mbr).is_logical(3));
        assert!(!ab(TableKind::Mbr).is_logical(2));
    }

    #[test]
    fn gpt_numbers_in_order() {
        assert_eq!(ab(TableKind::Gpt).numbers(), vec![1, 2, 3, 4, 5, 6]);
        assert!(!ab(TableKind::Gpt).is_logical(3));
    }

    #[test]
    fn logical_partitions_leave_room_for_their_boot_record() {
        let layout = ab(TableKind::Mbr);
        let mut placer = Placer::default();
        let extents: Vec<Extent> = (0..layout.partitions.len())
            .map(|i| placer.place(&layout, i, ALIGN + 1))
            .collect();
        assert_eq!(extents[0].start, ALIGN);
        assert_eq!(extents[1].start, 3 * ALIGN);
        assert_eq!(extents[3].start, 8 * ALIGN, "one unit for the EBR");
        assert!(extents.iter().all(|e| e.start % ALIGN == 0));
    }

    fn shipped_and_first_boot(table: TableKind) -> (Layout, Vec<Option<Extent>>) {
        let mut layout = ab(table);
        for (i, p) in layout.partitions.iter_mut().enumerate() {
            if i >= 4 {
                p.create = Create::FirstBoot;
            }
        }
        layout.partitions[4].size = SizeSpec::Fixed(64 * ALIGN);
        layout.partitions[5].size = SizeSpec::Fixed(8 * ALIGN);
        layout.partitions[5].grow = true;
        let mut placer = Placer::default();
        let shipped = (0..layout.partitions.len())
            .map(|i| (i < 4).then(|| placer.place(&layout, i, 3 * ALIGN)))
            .collect();
        (layout, shipped)
    }

    #[test]
    fn first_boot_keeps_shipped_partitions_and_grows_data_to_the_end() {
        let (layout, shipped) = shipped_and_first_boot(TableKind::Gpt);
        let disk = 32 * 1024 * 1024 * 1024;
        let plan = layout.grown(&shipped, disk).unwrap();
        for i in 0..4 {
            assert_eq!(Some(plan[i]), shipped[i], "partition {i} does not move");
        }
        assert_eq!(
            plan[4].start,
            shipped[3].unwrap().end().div_ceil(ALIGN) * ALIGN
        );
        assert_eq!(plan[4].size, 64 * ALIGN);
        let data = plan[5];
        assert!(
            data.end() <= disk - GPT_BACKUP_SECTORS * SECTOR,
            "the backup GPT keeps its place"
        );
        assert!(
            disk - GPT_BACKUP_SECTORS * SECTOR - data.end() < ALIGN,
            "data reaches the end"
        );
        assert_eq!(
            layout.grown(&shipped, disk).unwrap(),
            plan,
            "a resumed first boot plans the same"
        );
    }

    #[test]
    fn a_slot_grown_in_place_ends_as_large_as_its_twin_and_the_plan_does_not_move() {
        let (mut layout, shipped) = shipped_and_first_boot(TableKind::Mbr);
        layout.partitions[3].grow_to = Some(64 * ALIGN);
        let disk = 8 * 1024 * 1024 * 1024;
        let plan = layout.grown(&shipped, disk).unwrap();
        let a = shipped[3].unwrap();
        assert_eq!(plan[3].start, a.start, "it keeps its start");
        assert_eq!(plan[3].size, plan[4].size, "system-a as large as system-b");
        assert_eq!(plan[4].start, plan[3].end() + ALIGN, "system-b after it");
        // A boot after the table change reads the grown size: the same plan.
        let mut grown = shipped.clone();
        grown[3] = Some(plan[3]);
        assert_eq!(layout.grown(&grown, disk).unwrap(), plan);
        assert!(
            layout.smallest_medium(&shipped).unwrap() > plan[4].end(),
            "the smallest card counts the grown slot"
        );
    }

    #[test]
    fn mbr_first_boot_leaves_room_for_each_boot_record() {
        let (layout, shipped) = shipped_and_first_boot(TableKind::Mbr);
        let plan = layout.grown(&shipped, 8 * 1024 * 1024 * 1024).unwrap();
        assert_eq!(
            plan[4].start,
            shipped[3].unwrap().end().div_ceil(ALIGN) * ALIGN + ALIGN
        );
        assert_eq!(plan[5].start, plan[4].end().div_ceil(ALIGN) * ALIGN + ALIGN);
    }

    #[test]
    fn a_card_too_small_is_refused_before_anything_changes() {
        let (layout, shipped) = shipped_and_first_boot(TableKind::Gpt);
        let e = layout.grown(&shipped, 64 * ALIGN).unwrap_err();
        assert!(matches!(e, GrowError::TooSmall { .. }));
        assert!(e.to_string().contains("use a card of"), "{e}");
        match e {
            GrowError::TooSmall { need, .. } => {
                assert_eq!(need, layout.smallest_medium(&shipped).unwrap());
                assert!(
                    layout.grown(&shipped, need).is_ok(),
                    "the smallest medium fits"
                );
                assert!(layout.grown(&shipped, need - SECTOR).is_err());
            }
            _ => unreachable!(),
        }
        let mut missing = shipped.clone();
        missing[2] = None;
        assert_eq!(
            layout.grown(&missing, 1 << 40),
            Err(GrowError::Unplaced("boot-b".into()))
        );
    }

    #[test]
    fn percent_headroom_rounds_up() {
        assert_eq!(Headroom::Percent(10).bytes_for(1001), 101);
        assert_eq!(Headroom::Bytes(7).bytes_for(1_000_000), 7);
    }
}
