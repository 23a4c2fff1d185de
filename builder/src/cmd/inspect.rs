//! `d3kos-build inspect`: what an image holds, read without mounting it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use builder::probe::{self, Contents};

/// Show an image's partition table, partitions, file systems, labels and ids, and the
/// contents of its boot files (autoboot.txt, config.txt, cmdline.txt).
#[derive(clap::Args)]
pub struct Args {
    /// The raw image (.img).
    image: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Write one file from a FAT partition to standard output, as NUMBER:PATH
    /// (e.g. `2:cmdline.txt`).
    #[arg(long, value_name = "NUMBER:PATH")]
    cat: Option<String>,
}

const BOOT_FILES: [&str; 3] = ["autoboot.txt", "config.txt", "cmdline.txt"];

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let p = probe::probe(&a.image)?;
    if let Some(spec) = a.cat {
        let (n, path) = spec
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("--cat wants NUMBER:PATH, e.g. 2:cmdline.txt"))?;
        let n: u32 = n
            .parse()
            .map_err(|_| anyhow::anyhow!("`{n}` is not a partition number"))?;
        let bytes = probe::read_fat_file(&a.image, &p.table, n, path)?;
        std::io::stdout().write_all(&bytes)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} bytes, {:?} table, disk id {}",
        a.image.display(),
        p.size,
        p.table.kind,
        p.table.disk_id
    );
    for part in &p.partitions {
        let e = &part.entry;
        println!(
            "\npartition {}  start {}  size {}  type {}  PARTUUID {}{}",
            e.number,
            e.start,
            e.size,
            e.type_id,
            e.partuuid,
            e.name
                .as_ref()
                .map(|n| format!("  name {n}"))
                .unwrap_or_default()
        );
        match &part.contents {
            Contents::Vfat {
                label,
                volume_id,
                files,
            } => {
                println!(
                    "  vfat  label {label}  volume id {volume_id}  {} entries",
                    files.len()
                );
                for f in files {
                    println!("    {}{}  {}", f.path, if f.dir { "/" } else { "" }, f.size);
                }
                for name in BOOT_FILES {
                    if files.iter().any(|f| f.path == name) {
                        let text = probe::read_fat_file(&a.image, &p.table, e.number, name)?;
                        println!("  --- {name}");
                        for line in String::from_utf8_lossy(&text).lines() {
                            println!("  | {line}");
                        }
                    }
                }
            }
            Contents::Ext4 {
                label,
                uuid,
                size,
                free,
                inodes,
            } => {
                println!(
                    "  ext4  label {label}  uuid {uuid}  size {size}  free {free}  inodes {inodes}"
                );
            }
            Contents::Unknown => println!("  no file system recognised"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
