//! autoboot.txt: which boot partition the Raspberry Pi firmware starts, normally and for a
//! one-time try. The builder writes the first one; the updater rewrites it to commit a slot.
//! The QEMU boards' harness reads it as the firmware would.

/// autoboot.txt is read only from the first FAT partition and may not exceed 512 bytes
/// (Raspberry Pi documentation, "autoboot.txt").
pub const AUTOBOOT_MAX: usize = 512;

/// autoboot.txt's length, always: the text is padded with comment lines to it, so a commit
/// rewrites the file's one sector in place rather than giving it new clusters (see
/// `update::bootctl`).
pub const AUTOBOOT_LEN: usize = 256;

const _: () = assert!(AUTOBOOT_LEN < AUTOBOOT_MAX);

/// The longest line the padding writes: the firmware reads config.txt-style lines of at
/// most 80 characters (Raspberry Pi config.txt docs, older firmware; 98 in newer).
const PAD_LINE: usize = 64;

/// The file's name on the config partition.
pub const AUTOBOOT: &str = "autoboot.txt";

/// The partitions autoboot.txt names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autoboot {
    /// `boot_partition` under `[all]`: what boots normally.
    pub default: u32,
    /// `boot_partition` under `[tryboot]`: what boots once when the one-time flag is set.
    pub tryboot: Option<u32>,
}

impl Autoboot {
    /// The text, [`AUTOBOOT_LEN`] bytes long, with `tryboot_a_b=1` so the firmware takes the
    /// `[tryboot]` section's partition (not a second autoboot.txt) when the flag is set.
    pub fn render(&self) -> String {
        let mut s = format!(
            "# d3kOS boot slots. The updater rewrites this file in place:\n\
             # keep it {AUTOBOOT_LEN} bytes long.\n\
             [all]\ntryboot_a_b=1\nboot_partition={}\n",
            self.default
        );
        if let Some(b) = self.tryboot {
            s.push_str(&format!("[tryboot]\nboot_partition={b}\n"));
        }
        while s.len() < AUTOBOOT_LEN {
            let line = (AUTOBOOT_LEN - s.len()).min(PAD_LINE);
            s.push_str(&"#".repeat(line - 1));
            s.push('\n');
        }
        s
    }

    /// Reads the text as the firmware does: sections by `[name]`, the last `boot_partition`
    /// of a section wins, comments and other keys are passed over. `None` when `[all]` names
    /// no partition.
    pub fn parse(text: &str) -> Option<Autoboot> {
        let (mut section, mut default, mut tryboot) = ("all".to_owned(), None, None);
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_owned();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key.trim() != "boot_partition" {
                continue;
            }
            let Ok(n) = value.trim().parse::<u32>() else {
                continue;
            };
            match section.as_str() {
                "all" => default = Some(n),
                "tryboot" => tryboot = Some(n),
                _ => {}
            }
        }
        default.map(|default| Autoboot { default, tryboot })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_reads_back() {
        let a = Autoboot {
            default: 2,
            tryboot: Some(3),
        };
        let text = a.render();
        assert_eq!(
            text,
            format!(
                "# d3kOS boot slots. The updater rewrites this file in place:\n\
                 # keep it 256 bytes long.\n\
                 [all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n\
                 {}\n{}\n",
                "#".repeat(63),
                "#".repeat(40)
            )
        );
        assert_eq!(Autoboot::parse(&text), Some(a));
        for default in [1, 99, u32::MAX] {
            for tryboot in [None, Some(2), Some(u32::MAX)] {
                let t = Autoboot { default, tryboot }.render();
                assert_eq!(t.len(), AUTOBOOT_LEN, "{t}");
                assert!(t.lines().all(|l| l.len() < PAD_LINE), "{t}");
                assert_eq!(Autoboot::parse(&t), Some(Autoboot { default, tryboot }));
            }
        }
        assert_eq!(
            Autoboot::parse(
                "# x\n[all]\nboot_partition=3\nboot_partition=5\n[pi4]\nboot_partition=9\n"
            ),
            Some(Autoboot {
                default: 5,
                tryboot: None
            })
        );
        assert_eq!(Autoboot::parse("[tryboot]\nboot_partition=3\n"), None);
        assert_eq!(Autoboot::parse(""), None);
    }
}
