//! canboat's PGN database (appliance/data/canboat/canboat.json, Apache-2.0): every PGN's
//! fields, bit layout, resolution, unit, lookups and sentinels, loaded once.
//!
//! The decoder is driven by this table, not by code per PGN, so a newer canboat release
//! is a new JSON file, not new code.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// The database as canboat publishes it, gzipped by build.rs and embedded in the daemon.
const CANBOAT_JSON_GZ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/canboat.json.gz"));
/// Its size inflated, so it is inflated into one allocation, given back whole after.
const CANBOAT_JSON_LEN: &str = include_str!(concat!(env!("OUT_DIR"), "/canboat.json.len"));

/// How a field's bits are to be read (canboat's `FieldTypes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Number,
    Float,
    Decimal,
    Lookup,
    IndirectLookup,
    Bitlookup,
    DynamicFieldKey,
    DynamicFieldLength,
    DynamicFieldValue,
    FieldIndex,
    Time,
    Duration,
    Date,
    Pgn,
    IsoName,
    StringFix,
    StringLz,
    StringLau,
    Binary,
    Reserved,
    Spare,
    Mmsi,
    Variable,
    KeyValue,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Field {
    pub order: u32,
    pub id: String,
    pub name: String,
    #[serde(rename = "FieldType")]
    pub kind: Kind,
    pub bit_length: Option<u32>,
    /// Where the field starts, when no variable-length field comes before it.
    pub bit_offset: Option<u32>,
    #[serde(default)]
    pub bit_length_variable: bool,
    /// For a variable field: the order of the field that holds its length in bits.
    pub bit_length_field: Option<u32>,
    pub resolution: Option<f64>,
    #[serde(default)]
    pub signed: bool,
    pub offset: Option<i64>,
    pub unit: Option<String>,
    pub physical_quantity: Option<String>,
    pub range_max: Option<f64>,
    // canboat's `UnknownValue`, `OutOfRangeValue` and `ReservedValue` are not read: its
    // analyzer decides "not available" from the width and range (`Scale::reserved`), and
    // the keys are missing on fields it still strips (MMSI, PGN, 64-bit ones).
    #[serde(rename = "LookupEnumeration")]
    pub lookup: Option<String>,
    #[serde(rename = "LookupBitEnumeration")]
    pub bit_lookup: Option<String>,
    #[serde(rename = "LookupIndirectEnumeration")]
    pub indirect_lookup: Option<String>,
    #[serde(rename = "LookupIndirectEnumerationFieldOrder")]
    pub indirect_field: Option<u32>,
    #[serde(rename = "LookupFieldTypeEnumeration")]
    pub fieldtype_lookup: Option<String>,
    /// The value this field must hold for its PGN definition to apply (proprietary PGNs).
    #[serde(rename = "Match")]
    pub must_be: Option<i64>,
    #[serde(default)]
    pub part_of_primary_key: bool,
    pub condition: Option<String>,
    /// What a matched proprietary field (`Match`) is called when printed.
    pub description: Option<String>,
    #[serde(default)]
    pub dynamic_field_length_overhead: i64,
    /// The field's scaling worked out for each unit system, once, at load.
    #[serde(skip)]
    pub scale: [Scale; 2],
}

/// The units values are printed in: canboat's "std" (bar, °C, degrees) or strict SI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Units {
    Std = 0,
    Si = 1,
}

/// How a number field is scaled, printed and told "not available", in one unit system
/// (canboat's analyzer rules: resolution and range converted with the unit, and the
/// top values of a field reserved by its width unless its range covers them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scale {
    /// Resolution in the printed unit (0: none).
    pub res: f64,
    /// Added after scaling: -273.15 for kelvin shown as °C.
    pub add: f64,
    /// Fixed decimals (bar 3, degrees 1), or 0 to count them from `res`.
    pub decimals: u8,
    /// Top values of the raw range that are sentinels.
    pub reserved: u64,
    /// The range's maximum in the printed unit, when the database gives one.
    pub range_max: Option<f64>,
    /// `Offset` in raw counts.
    pub raw_offset: i64,
    /// The field's width in bits (0: variable).
    pub bits: u32,
}

const RAD_TO_DEG: f64 = 360.0 / 2.0 / std::f64::consts::PI;

fn by_size(bits: u32) -> u64 {
    match bits {
        0 | 1 => 0,
        2 | 3 => 1,
        4..=7 => 2,
        _ => 3,
    }
}

impl Field {
    fn prepare(&mut self) {
        for units in [Units::Std, Units::Si] {
            let mut res = self.resolution.unwrap_or(0.0);
            let mut range_max = self.range_max;
            let mut decimals = 0;
            let mut add = 0.0;
            if let Some(unit) = self.unit.as_deref()
                && res != 0.0
            {
                match (units, unit) {
                    (Units::Si, "rad") => {
                        let cap = if self.signed {
                            std::f64::consts::PI
                        } else {
                            2.0 * std::f64::consts::PI
                        };
                        range_max = range_max.map(|m| m.min(cap));
                    }
                    (Units::Si, _) => {}
                    (Units::Std, "C") => {
                        res /= 3600.0;
                        range_max = range_max.map(|m| m / 3600.0);
                    }
                    (Units::Std, "Pa") => {
                        res /= 100_000.0;
                        range_max = range_max.map(|m| m / 100_000.0);
                        decimals = 3;
                    }
                    (Units::Std, "K") if !self.signed => {
                        add = -273.15;
                        // canboat moves the range by 275.15, not 273.15.
                        range_max = range_max.map(|m| m - 275.15);
                    }
                    (Units::Std, "rad") => {
                        res *= RAD_TO_DEG;
                        range_max = range_max.map(|m| (m * RAD_TO_DEG).max(360.0));
                        decimals = 1;
                    }
                    (Units::Std, "rad/s") => {
                        res *= RAD_TO_DEG;
                        range_max = range_max.map(|m| m * RAD_TO_DEG);
                    }
                    _ => {}
                }
            }
            let bits = self.bit_length.unwrap_or(0);
            let reserved = match range_max {
                Some(m) if bits > 0 && bits < 64 && res > 0.0 => {
                    let raw_max = (1u64 << bits) - 1;
                    let k = (m / res + 0.5).floor();
                    if k >= raw_max as f64 {
                        0
                    } else {
                        (raw_max - k.max(0.0) as u64).min(by_size(bits))
                    }
                }
                _ => by_size(bits),
            };
            let raw_offset = match (self.offset, self.resolution) {
                (Some(o), Some(r)) if o != 0 && r != 0.0 => (o as f64 / r).round() as i64,
                _ => 0,
            };
            self.scale[units as usize] = Scale {
                res,
                add,
                decimals,
                reserved,
                range_max,
                raw_offset,
                bits,
            };
        }
    }

    /// A latitude or longitude: printed with seven decimals, never converted.
    pub fn is_position(&self) -> bool {
        matches!(
            self.physical_quantity.as_deref(),
            Some("GEOGRAPHICAL_LATITUDE" | "GEOGRAPHICAL_LONGITUDE")
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Pgn {
    #[serde(rename = "PGN")]
    pub pgn: u32,
    #[serde(default)]
    pub id: String,
    pub description: String,
    #[serde(rename = "Type")]
    pub transport: String,
    pub length: Option<u32>,
    #[serde(default)]
    pub fallback: bool,
    pub fields: Vec<Field>,
    #[serde(rename = "RepeatingFieldSet1Size")]
    pub repeat1_size: Option<u32>,
    #[serde(rename = "RepeatingFieldSet1StartField")]
    pub repeat1_start: Option<u32>,
    #[serde(rename = "RepeatingFieldSet1CountField")]
    pub repeat1_count: Option<u32>,
    #[serde(rename = "RepeatingFieldSet2Size")]
    pub repeat2_size: Option<u32>,
    #[serde(rename = "RepeatingFieldSet2StartField")]
    pub repeat2_start: Option<u32>,
    #[serde(rename = "RepeatingFieldSet2CountField")]
    pub repeat2_count: Option<u32>,
}

impl Pgn {
    pub fn is_fast(&self) -> bool {
        self.transport == "Fast"
    }

    fn has_match(&self) -> bool {
        self.fields.iter().any(|f| f.must_be.is_some())
    }
}

/// Two Actisense gateway PGNs canboat's analyzer knows but its JSON export lacks
/// (`Actisense: Operating mode` and `System status`), which Actisense NGT-1 captures
/// carry. Our own table, in canboat's JSON shape.
const GATEWAY_JSON: &str = include_str!("../../data/canboat/gateway.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnumValue {
    name: String,
    value: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Enumeration {
    name: String,
    #[serde(default)]
    enum_values: Vec<EnumValue>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BitValue {
    name: String,
    bit: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BitEnumeration {
    name: String,
    enum_bit_values: Vec<BitValue>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndirectValue {
    name: String,
    value1: i64,
    value2: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndirectEnumeration {
    name: String,
    enum_values: Vec<IndirectValue>,
}

/// One value of a field-type lookup: the name of the key and how its value is encoded.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TypedKey {
    #[serde(rename = "name")]
    pub name: String,
    #[serde(rename = "value")]
    pub value: i64,
    pub field_type: Option<Kind>,
    /// canboat writes this one as a string ("16").
    #[serde(default, deserialize_with = "number_in_string")]
    pub bits: Option<u32>,
    pub resolution: Option<f64>,
    pub unit: Option<String>,
    #[serde(default)]
    pub signed: bool,
    #[serde(rename = "LookupEnumeration")]
    pub lookup: Option<String>,
    #[serde(rename = "LookupBitEnumeration")]
    pub bit_lookup: Option<String>,
}

fn number_in_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| s.parse().map_err(serde::de::Error::custom))
        .transpose()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TypedEnumeration {
    name: String,
    enum_field_type_values: Vec<TypedKey>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Raw {
    version: String,
    #[serde(rename = "PGNs")]
    pgns: Vec<Pgn>,
    lookup_enumerations: Vec<Enumeration>,
    lookup_bit_enumerations: Vec<BitEnumeration>,
    lookup_indirect_enumerations: Vec<IndirectEnumeration>,
    lookup_field_type_enumerations: Vec<TypedEnumeration>,
}

/// The loaded database, indexed for decoding.
#[derive(Debug)]
pub struct Database {
    pub version: String,
    pgns: Vec<Pgn>,
    /// Every definition of a PGN, in the database's order (proprietary PGNs have several,
    /// told apart by their `Match` fields; a `Fallback` one applies when none match).
    by_pgn: HashMap<u32, Vec<usize>>,
    lookups: HashMap<String, HashMap<i64, String>>,
    bits: HashMap<String, HashMap<u32, String>>,
    indirect: HashMap<String, HashMap<(i64, i64), String>>,
    typed: HashMap<String, HashMap<i64, TypedKey>>,
}

impl Database {
    /// The database embedded in the daemon, parsed on first use.
    pub fn get() -> &'static Database {
        static DB: OnceLock<Database> = OnceLock::new();
        DB.get_or_init(|| {
            use std::io::Read;
            let mut json = Vec::with_capacity(CANBOAT_JSON_LEN.parse().unwrap_or(0));
            flate2::read::GzDecoder::new(CANBOAT_JSON_GZ)
                .read_to_end(&mut json)
                .expect("the embedded canboat database inflates");
            let json = std::str::from_utf8(&json).expect("the canboat database is UTF-8");
            Database::parse(json).expect("the embedded canboat database parses")
        })
    }

    pub fn parse(json: &str) -> serde_json::Result<Database> {
        let mut raw: Raw = serde_json::from_str(json)?;
        let extra: Vec<Pgn> = serde_json::from_str(GATEWAY_JSON)?;
        raw.pgns.extend(extra);
        raw.pgns.sort_by_key(|p| p.pgn);
        for p in &mut raw.pgns {
            // Read without a length, the lists grew by doubling: up to half of them spare.
            p.fields.shrink_to_fit();
            for f in &mut p.fields {
                f.prepare();
            }
        }
        raw.pgns.shrink_to_fit();
        let mut by_pgn: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, p) in raw.pgns.iter().enumerate() {
            by_pgn.entry(p.pgn).or_default().push(i);
        }
        Ok(Database {
            version: raw.version,
            pgns: raw.pgns,
            by_pgn,
            lookups: raw
                .lookup_enumerations
                .into_iter()
                .map(|e| {
                    let values = e.enum_values.into_iter().map(|v| (v.value, v.name));
                    (e.name, values.collect())
                })
                .collect(),
            bits: raw
                .lookup_bit_enumerations
                .into_iter()
                .map(|e| {
                    let values = e.enum_bit_values.into_iter().map(|v| (v.bit, v.name));
                    (e.name, values.collect())
                })
                .collect(),
            indirect: raw
                .lookup_indirect_enumerations
                .into_iter()
                .map(|e| {
                    let values = e
                        .enum_values
                        .into_iter()
                        .map(|v| ((v.value1, v.value2), v.name));
                    (e.name, values.collect())
                })
                .collect(),
            typed: raw
                .lookup_field_type_enumerations
                .into_iter()
                .map(|e| {
                    let values = e.enum_field_type_values.into_iter().map(|v| (v.value, v));
                    (e.name, values.collect())
                })
                .collect(),
        })
    }

    /// Every definition of `pgn`, in the database's order.
    pub fn definitions(&self, pgn: u32) -> impl Iterator<Item = &Pgn> {
        self.by_pgn
            .get(&pgn)
            .into_iter()
            .flatten()
            .map(|&i| &self.pgns[i])
    }

    /// Whether `pgn` travels as a fast packet: as its definition says, or for a PGN the
    /// database does not know, as its range's catch-all says (130816–131071 are fast).
    pub fn is_fast(&self, pgn: u32) -> bool {
        self.first(pgn)
            .or_else(|| self.catch_all(pgn))
            .is_some_and(Pgn::is_fast)
    }

    /// The first definition of `pgn` that is not a catch-all (canboat's "search").
    pub fn first(&self, pgn: u32) -> Option<&Pgn> {
        self.definitions(pgn).find(|p| !p.fallback)
    }

    /// The catch-all for a PGN nobody defines: the last `Fallback` definition at or
    /// before it in PGN order (the manufacturer-specific ranges).
    pub fn catch_all(&self, pgn: u32) -> Option<&Pgn> {
        let mut last = None;
        for p in &self.pgns {
            if p.fallback {
                last = Some(p);
            }
            if p.pgn >= pgn {
                break;
            }
        }
        last
    }

    /// The definition that applies to a message of `pgn` carrying `data`: the only one,
    /// or the first whose `Match` fields all hold, or the catch-all.
    pub fn choose(&self, pgn: u32, data: &[u8]) -> Option<&Pgn> {
        let Some(first) = self.first(pgn) else {
            return self.catch_all(pgn);
        };
        if !self.definitions(pgn).any(Pgn::has_match) {
            return Some(first);
        }
        for def in self.definitions(pgn).filter(|p| !p.fallback) {
            let mut at = 0usize;
            let mut ok = true;
            let mut fixed = false;
            for f in &def.fields {
                let s = &f.scale[Units::Si as usize];
                if let Some(want) = f.must_be {
                    fixed = true;
                    let got =
                        super::bits::extract(data, at, s.bits as usize, f.signed, s.raw_offset);
                    if got.map(|g| g.0) != Some(want) {
                        ok = false;
                        break;
                    }
                }
                at += s.bits as usize;
            }
            if !fixed || ok {
                return Some(def);
            }
        }
        self.catch_all(pgn)
    }

    pub fn lookup(&self, table: &str, value: i64) -> Option<&str> {
        self.lookups.get(table)?.get(&value).map(String::as_str)
    }

    pub fn bit_name(&self, table: &str, bit: u32) -> Option<&str> {
        self.bits.get(table)?.get(&bit).map(String::as_str)
    }

    pub fn indirect(&self, table: &str, first: i64, second: i64) -> Option<&str> {
        self.indirect
            .get(table)?
            .get(&(first, second))
            .map(String::as_str)
    }

    pub fn typed_key(&self, table: &str, value: i64) -> Option<&TypedKey> {
        self.typed.get(table)?.get(&value)
    }

    /// How many PGN definitions there are (for the record: canboat 8.0.0-beta3 has 611).
    pub fn len(&self) -> usize {
        self.pgns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pgns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_database_loads_every_definition() {
        let db = Database::get();
        assert_eq!(db.version, "8.0.0-beta3");
        assert_eq!(db.len(), 613, "canboat's 611 and the two gateway PGNs");
        let engine = db.definitions(127_489).next().unwrap();
        assert_eq!(engine.description, "Engine Parameters, Dynamic");
        assert!(engine.is_fast());
        assert!(db.is_fast(127_489));
        assert!(!db.is_fast(127_488));
        assert_eq!(
            db.lookup("ENGINE_INSTANCE", 1),
            Some("Dual Engine Starboard")
        );
        assert_eq!(
            db.bit_name("ENGINE_STATUS_1", 5),
            Some("Low System Voltage")
        );
    }
}
