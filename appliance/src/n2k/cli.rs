//! `d3kosd n2k decode FILE`: a capture decoded and printed as canboat's
//! `analyzer -json -nv` does, one JSON object a line (`--si` for strict SI units).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use super::analyzer;
use super::capture::{Format, Reader, detect};
use super::database::{Database, Units};
use super::ingest::Pipeline;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Decode a capture (candump, either format, or canboat's plain CSV; `-` reads
    /// standard input) into one JSON object a line, as canboat's analyzer prints them.
    Decode {
        file: PathBuf,
        /// The capture's format; guessed from its first line when not given.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Strict SI units (kelvin, pascal, radians), as `analyzer -si` and Signal K use.
        #[arg(long)]
        si: bool,
    },
}

pub fn run(c: &Command) -> anyhow::Result<()> {
    use anyhow::Context;
    let Command::Decode { file, format, si } = c;
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("while reading standard input")?;
        s.into_bytes()
    } else {
        std::fs::read(file).with_context(|| format!("while reading {}", file.display()))?
    };
    let format = format.unwrap_or_else(|| detect(&String::from_utf8_lossy(&text)));
    let units = if *si { Units::Si } else { Units::Std };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (decoded, skipped) = decode(&text[..], format, units, &mut out)?;
    out.flush()?;
    eprintln!("{decoded} messages; {skipped}");
    Ok(())
}

/// Decodes `input` and writes canboat's lines to `out`; returns how many messages were
/// printed and a summary of what was skipped.
pub fn decode(
    input: impl BufRead,
    format: Format,
    units: Units,
    out: &mut impl Write,
) -> std::io::Result<(u64, String)> {
    writeln!(out, "{}", analyzer::header(&Database::get().version, units))?;
    let mut pipe = Pipeline::in_units("capture", units);
    let mut first_bad = None;
    let mut printed = 0u64;
    let mut failed = None;
    for record in Reader::new(input, format) {
        match record {
            Ok(r) => pipe.feed(r, &mut |m, d| {
                if failed.is_none() {
                    match writeln!(out, "{}", analyzer::line(m, d)) {
                        Ok(()) => printed += 1,
                        Err(e) => failed = Some(e),
                    }
                }
            }),
            Err(e) => {
                pipe.skipped();
                first_bad.get_or_insert(e);
            }
        }
        if let Some(e) = failed.take() {
            return Err(e);
        }
    }
    pipe.finish();
    let s = &pipe.status;
    let mut summary = format!(
        "{} lines skipped, {} messages undecodable, {} fast packets dropped ({} incomplete)",
        s.skipped,
        s.undecodable,
        s.fast_packet_drops.total(),
        s.fast_packet_drops.incomplete
    );
    if let Some(e) = first_bad {
        summary.push_str(&format!("; first skipped: {e}"));
    }
    Ok((printed, summary))
}
