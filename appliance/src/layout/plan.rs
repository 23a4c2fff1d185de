//! The partition plan: a board's layout with every id and type fixed at build time. The image
//! carries it at [`PLAN_PATH`], so first boot creates exactly the partitions the builder
//! declared, with the ids the builder chose.

use serde::{Deserialize, Serialize};

use super::{Layout, PartitionSpec, TableKind};

/// Where the image carries its plan, relative to the root file system.
pub const PLAN_PATH: &str = "usr/lib/d3kos/partitions.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub table: TableKind,
    /// GPT disk GUID, or MBR signature as 8 hex digits.
    pub disk_id: String,
    /// In table order, as the layout declares them.
    pub partitions: Vec<PlannedPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedPartition {
    pub spec: PartitionSpec,
    pub number: u32,
    /// GPT partition GUID, or `SIGNATURE-NN` on MBR.
    pub partuuid: String,
    /// GPT type GUID, or the MBR type byte as `0x83`.
    pub type_id: String,
    /// ext4 UUID or FAT volume id (`ABCD-1234`); none without a file system.
    pub fs_uuid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("not a partition plan")]
    Json(#[from] serde_json::Error),
    #[error(
        "partition `{name}` is number {found} in the plan, but a {table:?} layout numbers it {expected}"
    )]
    Numbering {
        name: String,
        table: TableKind,
        found: u32,
        expected: u32,
    },
}

impl Plan {
    pub fn layout(&self) -> Layout {
        Layout {
            table: self.table,
            partitions: self.partitions.iter().map(|p| p.spec.clone()).collect(),
        }
    }

    /// Pretty JSON with a trailing newline; the same plan always gives the same bytes.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a plan serializes");
        text.push('\n');
        text
    }

    /// Reads a plan, and checks its numbers are the ones its layout gives.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let plan: Plan = serde_json::from_str(text)?;
        for (p, expected) in plan.partitions.iter().zip(plan.layout().numbers()) {
            if p.number != expected {
                return Err(PlanError::Numbering {
                    name: p.spec.name.clone(),
                    table: plan.table,
                    found: p.number,
                    expected,
                });
            }
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Create, FsKind, Headroom, Role, SizeSpec, Slot};

    fn plan() -> Plan {
        let spec = |name: &str, create| PartitionSpec {
            name: name.into(),
            role: Role::System,
            fs: FsKind::Ext4,
            slot: Some(Slot::A),
            size: SizeSpec::Content(Headroom::Percent(15)),
            min_size: Some(1 << 20),
            label: name.into(),
            create,
            grow: false,
            grow_to: None,
        };
        Plan {
            table: TableKind::Mbr,
            disk_id: "0a1b2c3d".into(),
            partitions: vec![
                PlannedPartition {
                    spec: spec("system-a", Create::Build),
                    number: 1,
                    partuuid: "0a1b2c3d-01".into(),
                    type_id: "0x83".into(),
                    fs_uuid: Some("9b1d6e3c-8f1e-4c7a-9a57-0b8d2f4e6a10".into()),
                },
                PlannedPartition {
                    spec: spec("data", Create::FirstBoot),
                    number: 2,
                    partuuid: "0a1b2c3d-02".into(),
                    type_id: "0x83".into(),
                    fs_uuid: None,
                },
            ],
        }
    }

    #[test]
    fn json_round_trips_and_is_stable() {
        let p = plan();
        let text = p.to_json();
        assert!(text.ends_with("}\n"));
        assert!(text.contains("\"create\": \"first-boot\""), "{text}");
        assert_eq!(Plan::from_json(&text).unwrap(), p);
        assert_eq!(Plan::from_json(&text).unwrap().to_json(), text);
    }

    #[test]
    fn numbers_the_layout_does_not_give_are_refused() {
        let mut p = plan();
        p.partitions[1].number = 5;
        let e = Plan::from_json(&p.to_json()).unwrap_err();
        assert!(e.to_string().contains("`data` is number 5"), "{e}");
        assert!(Plan::from_json("{}").is_err());
    }
}
