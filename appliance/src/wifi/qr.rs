//! QR codes drawn as SVG, for phones' cameras: crisp at any size on the helm screen, in a
//! browser and printed.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// `text` as an SVG QR code with its quiet zone. Error correction M (15 %) survives a
/// smudged screen or a creased printout; the texts are short, so the code stays small.
pub fn svg(text: &str) -> String {
    let code = code(text);
    code.render::<svg::Color>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build()
}

fn code(text: &str) -> QrCode {
    // Byte mode takes up to 2,331 bytes at level M; every text here is far below.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .expect("a text this short fits a QR code")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dark modules the SVG draws, read back from its path (`M x y h s v s h -s z` per
    /// dark module).
    fn modules_of(svg: &str) -> (usize, Vec<(usize, usize)>) {
        let size: usize = svg
            .split("width=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        let d = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mut cells = Vec::new();
        for part in d.split('M').filter(|p| !p.is_empty()) {
            let nums: Vec<usize> = part
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            cells.push((nums[0], nums[1]));
        }
        (size, cells)
    }

    #[test]
    fn the_svg_decodes_back_to_the_text() {
        let text = "WIFI:T:WPA;S:d3kOS-AB12;P:abcd-efgh-jkmn-pqrs;;";
        let svg = svg(text);
        let (size, cells) = modules_of(&svg);
        let module = {
            let code = code(text);
            size / (code.width() + 8)
        };
        assert!(module >= 1, "{svg}");
        let px = size;
        let dark: std::collections::HashSet<(usize, usize)> = cells
            .iter()
            .map(|&(x, y)| (x / module, y / module))
            .collect();
        let mut img = rqrr::PreparedImage::prepare_from_bitmap(px, px, |x, y| {
            dark.contains(&(x / module, y / module))
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one code found in the drawing");
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, text);
    }
}
