//! An image's partition table as the field's own tool reads it (`sfdisk --json`), for the
//! image and boot tests.
// Each test binary reads the fields it checks.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Partition {
    pub number: u32,
    /// Bytes from the start of the image.
    pub start: u64,
    pub size: u64,
    /// sfdisk's type: an MBR type byte in hex (`c`, `83`, `f`) or a GPT type GUID.
    pub type_id: String,
    pub partuuid: String,
}

/// The table's label (`dos` or `gpt`) and its partitions. sfdisk gives MBR partitions no
/// UUID; their PARTUUID is the disk id and the number, as Linux forms it.
pub fn sfdisk(image: &Path) -> (String, Vec<Partition>) {
    let out = Command::new("sfdisk")
        .arg("--json")
        .arg(image)
        .output()
        .expect("sfdisk runs");
    assert!(
        out.status.success(),
        "sfdisk --json {}: {}",
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v["partitiontable"];
    let label = t["label"].as_str().unwrap().to_owned();
    let sector = t["sectorsize"].as_u64().unwrap_or(512);
    let id = t["id"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x")
        .to_lowercase();
    let parts = t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let number: u32 = node
                .rsplit(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            Partition {
                number,
                start: p["start"].as_u64().unwrap() * sector,
                size: p["size"].as_u64().unwrap() * sector,
                type_id: p["type"].as_str().unwrap().to_lowercase(),
                partuuid: match p["uuid"].as_str() {
                    Some(u) => u.to_lowercase(),
                    None => format!("{id:0>8}-{number:02x}"),
                },
            }
        })
        .collect();
    (label, parts)
}
