//! Reads back the QR code the appliance draws as SVG (one `M x y h s v s h -s z` path step
//! per dark module), with a QR decoder: what a phone's camera would read.

/// The text of the one QR code in `svg`.
pub fn read(svg: &str) -> String {
    let size: usize = svg
        .split("width=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .expect("the drawing's width");
    let d = svg
        .split(" d=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the modules' path");
    // Every module is drawn as `h{side}`: the side is the module's size.
    let module: usize = d
        .split('h')
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .expect("a module's side");
    let dark: std::collections::HashSet<(usize, usize)> = d
        .split('M')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let mut nums = part
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<usize>().expect("a coordinate"));
            let x = nums.next().expect("x");
            let y = nums.next().expect("y");
            (x / module, y / module)
        })
        .collect();
    let mut img = rqrr::PreparedImage::prepare_from_bitmap(size, size, |x, y| {
        dark.contains(&(x / module, y / module))
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one code found in the drawing");
    grids[0].decode().expect("the code decodes").1
}
