//! Size expressions in recipe and board files: `256M`, `1G`, `content+20%`, `content+64M`.

use appliance::layout::{Headroom, SizeSpec};

/// Parses a byte count with an optional binary suffix (K, M, G, T; `MiB` spellings too).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: u64 = number.parse().map_err(|_| {
        format!("`{text}` is not a size: write a number with an optional K, M, G or T suffix")
    })?;
    let shift = match unit.trim().trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        other => {
            return Err(format!(
                "`{other}` in `{text}` is not a size unit: use K, M, G or T"
            ));
        }
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

pub fn parse_size(text: &str) -> Result<SizeSpec, String> {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("content") else {
        let bytes = parse_bytes(t)?;
        if bytes == 0 {
            return Err("a partition cannot be 0 bytes".into());
        }
        return Ok(SizeSpec::Fixed(bytes));
    };
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(SizeSpec::Content(Headroom::Bytes(0)));
    }
    let Some(headroom) = rest.strip_prefix('+') else {
        return Err(format!(
            "`{text}`: write `content`, `content+20%` or `content+64M`"
        ));
    };
    let headroom = headroom.trim();
    if let Some(p) = headroom.strip_suffix('%') {
        let p: u32 = p
            .trim()
            .parse()
            .map_err(|_| format!("`{headroom}` is not a percentage"))?;
        if p > 1000 {
            return Err(format!("headroom of {p}% is not plausible (at most 1000%)"));
        }
        return Ok(SizeSpec::Content(Headroom::Percent(p)));
    }
    Ok(SizeSpec::Content(Headroom::Bytes(parse_bytes(headroom)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("256M"), Ok(SizeSpec::Fixed(256 << 20)));
        assert_eq!(parse_size("1GiB"), Ok(SizeSpec::Fixed(1 << 30)));
        assert_eq!(
            parse_size("content+20%"),
            Ok(SizeSpec::Content(Headroom::Percent(20)))
        );
        assert_eq!(
            parse_size("content + 64M"),
            Ok(SizeSpec::Content(Headroom::Bytes(64 << 20)))
        );
        assert_eq!(
            parse_size("content"),
            Ok(SizeSpec::Content(Headroom::Bytes(0)))
        );
    }

    #[test]
    fn nonsense_sizes_are_refused() {
        for bad in [
            "",
            "M",
            "12X",
            "content-5%",
            "content+x%",
            "0",
            "99999999999T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad} accepted");
        }
    }
}
