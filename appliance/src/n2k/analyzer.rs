//! Decoded messages printed as canboat's `analyzer -json -nv` prints them (`-si` for
//! strict SI), one JSON object a line, so our decoding can be compared with canboat's
//! line for line.

use std::fmt::Write as _;

use super::database::{Scale, Units};
use super::decode::{Decoded, Item, Value};
use super::frame::Message;

/// The first line canboat prints.
pub fn header(db_version: &str, units: Units) -> String {
    let u = match units {
        Units::Std => "std",
        Units::Si => "si",
    };
    format!(r#"{{"version":"{db_version}","units":"{u}","showLookupValues":true}}"#)
}

/// One message as a line.
pub fn line(msg: &Message, d: &Decoded) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(
        out,
        r#"{{"timestamp":"{}","prio":{},"src":{},"dst":{},"pgn":{},"description":"{}""#,
        timestamp(msg.at_ms),
        msg.prio,
        msg.src,
        msg.dst,
        msg.pgn,
        d.def.description
    );
    let mut opened = false;
    let mut lists = false;
    let mut sep = "";
    let mut open = |out: &mut String, sep: &mut &str| {
        if !opened {
            out.push_str(r#","fields":{"#);
            opened = true;
        } else {
            out.push_str(sep);
        }
        *sep = ",";
    };
    for item in &d.items {
        match item {
            Item::List(1) => {
                open(&mut out, &mut sep);
                out.push_str(r#""list":[{"#);
                lists = true;
                sep = "";
            }
            Item::List(_) => {
                out.push_str(r#"}],"list2":[{"#);
                sep = "";
            }
            Item::Next => {
                out.push_str("},{");
                sep = "";
            }
            Item::Field {
                name, value, key, ..
            } => {
                open(&mut out, &mut sep);
                let _ = write!(out, r#""{name}":"#);
                value_text(&mut out, value, *key);
            }
        }
    }
    if lists {
        out.push_str("}]");
    }
    if opened {
        out.push('}');
    }
    out.push('}');
    out
}

/// `2022-09-23T11:05:05.383Z`.
pub fn timestamp(at_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(at_ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_else(|_| at_ms.to_string())
}

fn value_text(out: &mut String, v: &Value, key: bool) {
    // A keyed scalar becomes an object; objects gain the key flag inside.
    let (object, text) = match v {
        Value::Number {
            raw,
            scale,
            res,
            position,
        } => (false, number(*raw, scale, *res, *position)),
        Value::Float(f) => (false, g_format(f64::from(*f))),
        Value::Lookup { raw, name } => (true, named(*raw, *name)),
        Value::Bits(bits) => {
            let parts: Vec<String> = bits
                .iter()
                .map(|(b, n)| match n {
                    Some(n) => format!(r#"{{"value":{},"name":"{n}"}}"#, 1u64 << b),
                    None => format!(r#"{{"value":{},"name":null}}"#, 1u64 << b),
                })
                .collect();
            (false, format!("[{}]", parts.join(",")))
        }
        Value::Date(days) => {
            let name = jiff::Timestamp::from_second(days * 86_400)
                .map(|t| t.strftime("%Y.%m.%d").to_string())
                .unwrap_or_default();
            (true, format!(r#""value":{days},"name":"{name}""#))
        }
        Value::Time { raw, res } => (true, time(*raw, *res)),
        Value::Mmsi(m) => (false, format!(r#""{m:09}""#)),
        Value::Pgn { value, name } => (true, named(i64::from(*value), *name)),
        Value::Text(bytes) => (false, quoted(bytes)),
        Value::Hex(h) => (false, format!(r#""{h}""#)),
        Value::Decimal(d) => (false, d.clone()),
        Value::IsoName(raw) => (true, format!(r#""value":{raw}"#)),
    };
    match (object, key) {
        (true, false) => {
            let _ = write!(out, "{{{text}}}");
        }
        (true, true) => {
            let _ = write!(out, r#"{{{text},"key":true}}"#);
        }
        (false, true) => {
            let _ = write!(out, r#"{{"value":{text},"key":true}}"#);
        }
        (false, false) => out.push_str(&text),
    }
}

fn named(raw: i64, name: Option<&str>) -> String {
    match name {
        Some(n) => format!(r#""value":{raw},"name":"{n}""#),
        None => format!(r#""value":{raw}"#),
    }
}

/// A number at the field's resolution: an integer at resolution 1, else as many decimals
/// as the resolution has (bar always 3, degrees 1); positions with seven, padded to 10.
fn number(raw: i64, s: &Scale, res: f64, position: bool) -> String {
    if position {
        return format!("{:10.7}", raw as f64 * res);
    }
    let r = if s.res == 0.0 { 1.0 } else { s.res };
    if r == 1.0 && s.add == 0.0 {
        return raw.to_string();
    }
    let value = raw as f64 * r + s.add;
    let mut decimals = usize::from(s.decimals);
    if decimals == 0 {
        // Counted the way canboat counts them, float multiplications and all.
        let mut x = r;
        while x > 0.0 && x < 1.0 {
            decimals += 1;
            x *= 10.0;
        }
    }
    format!("{value:.decimals$}")
}

/// A time of day or duration: the raw count and `[-]HH:MM:SS[.fff]`, hours unbounded.
fn time(raw: i64, res: f64) -> String {
    let (sign, mut v) = if raw < 0 { ("-", -raw) } else { ("", raw) };
    let units_per_second = if res < 1.0 {
        (1.0 / res) as i64
    } else {
        v *= res as i64;
        1
    };
    let secs = v / units_per_second;
    let frac = v % units_per_second;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut digits = 0u32;
    let mut scale = 1i64;
    while scale < units_per_second && digits < 9 {
        scale *= 10;
        digits += 1;
    }
    let mut name = format!("{sign}{h:02}:{m:02}:{s:02}");
    if digits > 0 {
        let frac = frac * scale / units_per_second;
        let _ = write!(name, ".{frac:0width$}", width = digits as usize);
    }
    format!(r#""value":{sign}{v},"name":"{name}""#)
}

/// C's `%g`: six significant digits, trailing zeros dropped, exponent form outside
/// 1e-4..1e6.
fn g_format(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = format!("{x:.5e}");
    let (mantissa, e) = exp.split_once('e').expect("exponent form");
    let e: i32 = e.parse().expect("an exponent");
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..6).contains(&e) {
        let sign = if e < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), e.abs())
    } else {
        let decimals = (5 - e).max(0) as usize;
        trim(&format!("{x:.decimals$}"))
    }
}

/// A string as canboat escapes it (`/` too); bytes above 0x7F as Latin-1.
fn quoted(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            0x08 => s.push_str("\\b"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x0C => s.push_str("\\f"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'/' => s.push_str("\\/"),
            0xFF => break,
            b if b < 0x20 => {
                let _ = write!(s, "\\u{b:04x}");
            }
            b => s.push(char::from(b)),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_is_cs() {
        assert_eq!(g_format(1.5), "1.5");
        assert_eq!(g_format(1_000_000.0), "1e+06");
        assert_eq!(g_format(0.000015), "1.5e-05");
        assert_eq!(g_format(123_456.7), "123457");
        assert_eq!(g_format(0.0001), "0.0001");
    }

    #[test]
    fn times_print_as_canboat_does() {
        assert_eq!(
            time(177_700_000, 0.0001),
            r#""value":177700000,"name":"04:56:10.0000""#
        );
        assert_eq!(time(614_160, 1.0), r#""value":614160,"name":"170:36:00""#);
        assert_eq!(
            time(-300_000, 0.001),
            r#""value":-300000,"name":"-00:05:00.000""#
        );
    }

    #[test]
    fn numbers_print_at_their_resolution() {
        let s = |res, add, decimals| Scale {
            res,
            add,
            decimals,
            ..Scale::default()
        };
        assert_eq!(number(7000, &s(0.01, 0.0, 0), 0.01, false), "70.00");
        assert_eq!(number(1719, &s(0.001, 0.0, 3), 100.0, false), "1.719");
        assert_eq!(number(-1, &s(1.0, 0.0, 0), 1.0, false), "-1");
        assert_eq!(number(6_329_000, &s(1e-5, 0.0, 0), 1e-5, false), "63.29000");
        assert_eq!(
            number(52_757_050, &s(1e-7, 0.0, 0), 1e-7, true),
            " 5.2757050"
        );
        assert_eq!(number(34_315, &s(0.01, -273.15, 0), 0.01, false), "70.00");
    }
}
