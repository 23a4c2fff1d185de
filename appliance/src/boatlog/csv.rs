//! The boat log as CSV (RFC 4180) that Excel and LibreOffice open as they are: UTF-8 with
//! a byte-order mark, CRLF line ends, quoted where a field needs it, and text cells that a
//! spreadsheet would run as a formula neutralised. Written a page of rows at a time, so
//! any size of log takes the same memory.

use std::io::Write;

use jiff::tz::TimeZone;

use super::{Boatlog, BoatlogError, Cursor, Entry};

/// Excel reads a file without it as the local code page, and mangles accents and emoji.
pub const BOM: &[u8] = "\u{feff}".as_bytes();

pub const HEADER: [&str; 10] = [
    "id",
    "local_time",
    "utc_offset",
    "utc_time",
    "kind",
    "author",
    "text",
    "latitude",
    "longitude",
    "engine_hours",
];

/// Rows read from the database at a time.
const PAGE: u32 = 1000;

/// Appends one field. A field holding a comma, a quote, CR or LF is quoted with its quotes
/// doubled (RFC 4180 §2.6–2.7). `text` cells that start with `=`, `+`, `-`, `@`, tab or CR
/// get a leading `'`, so a spreadsheet shows them instead of running them (OWASP, "CSV
/// Injection"); numbers written by the device are never touched.
pub fn field(out: &mut Vec<u8>, value: &str, text: bool) {
    let neutralise = text
        && value
            .chars()
            .next()
            .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    let quote = neutralise || value.contains([',', '"', '\r', '\n']);
    if quote {
        out.push(b'"');
    }
    if neutralise {
        out.push(b'\'');
    }
    for b in value.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    if quote {
        out.push(b'"');
    }
}

fn record(out: &mut Vec<u8>, fields: &[(&str, bool)]) {
    for (i, (value, text)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        field(out, value, *text);
    }
    out.extend_from_slice(b"\r\n");
}

fn number(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Appends the row of one entry.
pub fn row(out: &mut Vec<u8>, e: &Entry, tz: &TimeZone) {
    let local = crate::timezone::local(e.at, tz);
    let utc = crate::timezone::utc(e.at);
    record(
        out,
        &[
            (&e.id.to_string(), false),
            (&local.time, false),
            (&local.offset, false),
            (&utc, false),
            (e.kind.as_str(), true),
            (&e.author, true),
            (&e.text, true),
            (&number(e.latitude), false),
            (&number(e.longitude), false),
            (&number(e.engine_hours), false),
        ],
    );
}

/// Writes the entries from `from` (inclusive) to `to` (exclusive), oldest first, with the
/// BOM and the header, flushing `out` after each page. Returns the number of entries.
pub fn export(
    log: &Boatlog,
    from: i64,
    to: i64,
    tz: &TimeZone,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let conn = log.open()?;
    let mut buf = Vec::with_capacity(256 * 1024);
    buf.extend_from_slice(BOM);
    record(&mut buf, &HEADER.map(|h| (h, false)));
    let mut after: Option<Cursor> = None;
    let mut rows = 0u64;
    loop {
        let page = log.forward(&conn, from, to, after, PAGE)?;
        for e in &page {
            row(&mut buf, e, tz);
        }
        rows += page.len() as u64;
        out.write_all(&buf).map_err(ExportError::Write)?;
        buf.clear();
        match page.last() {
            Some(e) if page.len() == PAGE as usize => after = Some(Cursor { at: e.at, id: e.id }),
            _ => break,
        }
    }
    out.flush().map_err(ExportError::Write)?;
    Ok(rows)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Log(#[from] BoatlogError),
    #[error("cannot write the CSV: {0}")]
    Write(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::super::tests::entry;
    use super::*;

    fn one(value: &str, text: bool) -> String {
        let mut out = Vec::new();
        field(&mut out, value, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_are_quoted_only_when_they_need_it_and_quotes_are_doubled() {
        assert_eq!(one("plain words", true), "plain words");
        assert_eq!(one("a,b", true), "\"a,b\"");
        assert_eq!(one("say \"hi\"", true), "\"say \"\"hi\"\"\"");
        assert_eq!(one("two\r\nlines", true), "\"two\r\nlines\"");
        assert_eq!(one("lf\nonly", true), "\"lf\nonly\"");
    }

    #[test]
    fn formula_starts_are_neutralised_in_text_and_numbers_are_left_alone() {
        assert_eq!(one("=HYPERLINK(\"x\")", true), "\"'=HYPERLINK(\"\"x\"\")\"");
        for s in ["+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(one(s, true).starts_with("\"'"), "{s:?}");
        }
        assert_eq!(one("-41.5", false), "-41.5");
    }

    #[test]
    fn an_export_has_bom_header_crlf_and_every_entry_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = Boatlog::in_state(dir.path());
        for i in (0..2500).rev() {
            log.add(&entry(1_768_478_400_000 + i, &format!("n{i}")))
                .unwrap();
        }
        let mut out = Vec::new();
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let rows = export(&log, i64::MIN, i64::MAX, &tz, &mut out).unwrap();
        assert_eq!(rows, 2500);
        assert!(out.starts_with(BOM));
        let text = std::str::from_utf8(&out[BOM.len()..]).unwrap();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 2501);
        assert_eq!(lines[0], HEADER.join(","));
        assert!(
            lines[1]
                .contains(",2026-01-15 13:00:00,+01:00,2026-01-15T12:00:00.000Z,text,skipper,n0,"),
            "{}",
            lines[1]
        );
        assert!(lines[2500].contains(",n2499,"));
        assert!(!text.replace("\r\n", "").contains('\n'));
    }
}
