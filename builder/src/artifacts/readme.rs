//! README.txt for the person who flashes the image.

use crate::assemble::Placed;
use crate::config::{Board, Recipe};
use appliance::layout::{Create, Extent, card_gb};

pub fn render(
    recipe: &Recipe,
    board: &Board,
    stem: &str,
    partitions: &[Placed],
    compressed: &[&str],
    bundle: bool,
) -> String {
    let first_boot: Vec<&str> = partitions
        .iter()
        .filter(|p| p.create == Create::FirstBoot)
        .map(|p| p.name.as_str())
        .collect();
    let mut s = format!(
        "{name} {version} for {board}\n\
         {rule}\n\n\
         {description}\n\n\
         Files\n-----\n",
        name = recipe.name,
        version = recipe.version,
        board = board.description,
        rule = "=".repeat(recipe.name.len() + recipe.version.len() + board.description.len() + 6),
        description = recipe.description,
    );
    s.push_str(&file_table(stem, compressed, recipe.outputs.bmap, bundle));
    s.push_str(&format!(
        "\n1. Check the download\n----------------------\nIn this folder:\n\n    sha256sum -c {stem}.img.xz.sha256\n\n\
         It must print \"OK\". If it does not, download the file again: a damaged image can fail\n\
         in ways that look like a broken boat computer.\n\n\
         2. Flash it\n-----------\n{card}With Raspberry Pi Imager: \"Choose OS\" > \"Use custom\" and pick {stem}.img.xz,\n\
         choose the SD card, and write. Imager checks what it wrote.\n\n\
         Or, on Linux, with bmaptool (fast, writes only the blocks in use, and verifies them):\n\n    \
         bmaptool copy {stem}.img.xz /dev/sdX\n\n\
         Replace /dev/sdX with the SD card; everything on it is erased.\n\n\
         3. First boot\n-------------\n",
        card = card_text(board, partitions),
    ));
    if first_boot.is_empty() {
        s.push_str("The system starts from the partitions in the image.\n");
    } else {
        s.push_str(&format!(
            "On its first start the computer creates the partitions that are not in the image ({}),\n\
             grows the data partition to fill the card, and restarts its services. This takes a minute\n\
             or two; do not cut the power while it runs.\n",
            first_boot.join(", ")
        ));
    }
    s.push_str(
        "\nThere is no default password. The first person to open the web page on the helm screen\n\
         creates the owner account with a one-time setup code the computer shows on its own screen.\n",
    );
    s
}

/// The files beside README.txt, a line each, their descriptions in one column.
fn file_table(stem: &str, compressed: &[&str], bmap: bool, bundle: bool) -> String {
    let mut rows = vec![(format!("{stem}.img"), "the raw disk image")];
    for ext in compressed {
        rows.push((format!("{stem}.img.{ext}"), "the same image, compressed"));
    }
    rows.push(("*.sha256".into(), "checksums"));
    if bmap {
        rows.push((format!("{stem}.bmap"), "block map for bmaptool"));
    }
    if bundle {
        rows.push((
            format!("{stem}.d3kb"),
            "the signed update, for Settings > Software update",
        ));
    }
    rows.push(("os_list.json".into(), "entry for Raspberry Pi Imager"));
    rows.push(("build-manifest.json".into(), "what went into this image"));
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(name, what)| format!("  {name:<width$}  {what}\n"))
        .collect()
}

/// The smallest card, from the layout: what first boot needs before the data partition
/// grows into the rest of the card.
fn card_text(board: &Board, partitions: &[Placed]) -> String {
    let shipped: Vec<Option<Extent>> = partitions
        .iter()
        .map(|p| match (p.create, p.start) {
            (Create::Build, Some(start)) => Some(Extent {
                start,
                size: p.size,
            }),
            _ => None,
        })
        .collect();
    match board.layout.smallest_medium(&shipped) {
        Ok(need) => format!(
            "Use a card of {gb} GB or more: the partitions need {:.1} GB before the data partition\n\
             grows into the rest of the card. A smaller card is refused on its first start, with\n\
             the reason on the screen and on the web page, and nothing on it is changed.\n\n",
            need as f64 / 1e9,
            gb = card_gb(need),
        ),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::file_table;

    #[test]
    fn the_file_table_keeps_one_column_for_any_name() {
        for stem in ["d3kOS-0.9.1.2-rpi4", "d3kOS-10.0.0-rc1-qemu-arm64", "x"] {
            let table = file_table(stem, &["xz", "gz"], true, true);
            // Where each description starts: after the name (names have no spaces) and its padding.
            let columns: Vec<usize> = table
                .lines()
                .map(|l| l.len() - l[2..].split_once(' ').unwrap().1.trim_start().len())
                .collect();
            assert_eq!(table.lines().count(), 8, "{table}");
            assert!(columns.windows(2).all(|w| w[0] == w[1]), "{table}");
        }
        let table = file_table("d3kOS-0.9.1.2-rpi4", &["xz"], false, false);
        assert_eq!(
            table,
            "  d3kOS-0.9.1.2-rpi4.img     the raw disk image\n  \
             d3kOS-0.9.1.2-rpi4.img.xz  the same image, compressed\n  \
             *.sha256                   checksums\n  \
             os_list.json               entry for Raspberry Pi Imager\n  \
             build-manifest.json        what went into this image\n"
        );
    }
}
