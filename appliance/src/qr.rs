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

/// The reader the integration tests use, for the unit tests here and in other modules.
#[cfg(test)]
#[path = "../tests/common/qr.rs"]
pub(crate) mod reader;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_decodes_back_to_the_text() {
        let text = "WIFI:T:WPA;S:d3kOS-AB12;P:abcd-efgh-jkmn-pqrs;;";
        assert_eq!(reader::read(&svg(text)), text);
    }
}
