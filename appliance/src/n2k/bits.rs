//! Reading a field's bits out of a message: little endian, from any bit, as NMEA 2000
//! lays fields out.

/// Reads `bits` (≤ 64) at bit `pos`, little endian. Returns the value — sign-extended,
/// or moved by `raw_offset` — and the largest value the width holds; `None` when the
/// data ends first.
pub fn extract(
    data: &[u8],
    pos: usize,
    bits: usize,
    signed: bool,
    raw_offset: i64,
) -> Option<(i64, i64)> {
    if bits == 0 || bits > 64 || pos + bits > data.len() * 8 {
        return None;
    }
    let first = pos / 8;
    let last = (pos + bits - 1) / 8;
    let mut acc: u128 = 0;
    for (i, b) in data[first..=last].iter().enumerate() {
        acc |= u128::from(*b) << (8 * i);
    }
    let mask: u128 = (1u128 << bits) - 1;
    let raw = ((acc >> (pos % 8)) & mask) as u64;
    let mut max = mask as u64;
    let value = if signed {
        max >>= 1;
        if raw_offset != 0 {
            (raw as i64).wrapping_add(raw_offset)
        } else if bits < 64 && raw & (1 << (bits - 1)) != 0 {
            raw as i64 - (1i64 << bits)
        } else {
            raw as i64
        }
    } else {
        (raw as i64).wrapping_add(raw_offset)
    };
    Some((value, (max as i64).wrapping_add(raw_offset)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_reads_little_endian_across_bytes_and_sign_extends() {
        let d = [0b1010_1100, 0b0000_0011, 0xFF];
        assert_eq!(extract(&d, 0, 8, false, 0), Some((0xAC, 255)));
        assert_eq!(extract(&d, 2, 8, false, 0), Some((0b1110_1011, 255)));
        assert_eq!(extract(&d, 16, 8, true, 0), Some((-1, 127)));
        assert_eq!(extract(&d, 17, 8, false, 0), None, "past the end");
        assert_eq!(extract(&[0xFF; 8], 0, 64, false, 0).map(|v| v.0), Some(-1));
    }
}
