//! Decodes a whole NMEA 2000 message into named field values, as canboat's database
//! lays them out and as canboat's analyzer reads them: bits little endian and running
//! on from field to field, a field cut short by the message's end read from the bytes
//! there are, the top values of a field's width meaning "not available" (left out),
//! lookups, repeating field sets ("list"), strings, and proprietary variants.

pub use super::bits::extract;
use super::database::{Database, Field, Kind, Pgn, Scale, TypedKey, Units};
use super::frame::Message;

/// A field's value. Numbers keep their raw count and scale, so they can be printed in
/// either unit system; `si()` is the value in the database's unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'db> {
    Number {
        raw: i64,
        scale: Scale,
        /// Resolution in the database's unit, and whether it is a latitude or longitude.
        res: f64,
        position: bool,
    },
    Float(f32),
    Lookup {
        raw: i64,
        name: Option<&'db str>,
    },
    /// The bits set, each with its name when the table has one.
    Bits(Vec<(u32, Option<&'db str>)>),
    /// Days since 1970-01-01.
    Date(i64),
    /// A time of day or a duration: raw count at `res` seconds.
    Time {
        raw: i64,
        res: f64,
    },
    Mmsi(u32),
    Pgn {
        value: u32,
        name: Option<&'db str>,
    },
    /// A string's bytes, as sent (cleaned of padding).
    Text(Vec<u8>),
    /// Bytes shown as hex (`"12 00 FF"`): binary, reserved and spare fields.
    Hex(String),
    /// Decimal digits, two per byte.
    Decimal(String),
    IsoName(u64),
}

impl Value<'_> {
    /// The value in the database's unit (SI but for a few, such as L/h); `None` for
    /// values that are not numbers.
    pub fn si(&self) -> Option<f64> {
        match self {
            Value::Number { raw, res, .. } => {
                Some(*raw as f64 * if *res == 0.0 { 1.0 } else { *res })
            }
            Value::Float(v) => Some(f64::from(*v)),
            Value::Time { raw, res } => Some(*raw as f64 * res),
            Value::Date(d) => Some(*d as f64),
            Value::Lookup { raw, .. } => Some(*raw as f64),
            _ => None,
        }
    }
}

/// One decoded field, or the start of a repeating set or of its next repetition.
#[derive(Debug, Clone)]
pub enum Item<'db> {
    Field {
        field: &'db Field,
        /// The name printed: the field's, or for a value whose type a key chose, still
        /// the field's own.
        name: &'db str,
        value: Value<'db>,
        /// Part of the message's primary key (canboat's `"key":true`).
        key: bool,
        /// Inside a repeating set.
        repeated: bool,
    },
    /// A repeating set starts (1 or 2).
    List(u8),
    /// The next repetition of the set.
    Next,
}

/// A decoded message: its definition (perhaps a catch-all) and its items in order.
#[derive(Debug, Clone)]
pub struct Decoded<'db> {
    pub def: &'db Pgn,
    pub items: Vec<Item<'db>>,
}

impl<'db> Decoded<'db> {
    /// Whether the PGN is one the database defines, not a catch-all for its range.
    pub fn known(&self) -> bool {
        !self.def.fallback
    }

    /// The value of the field with canboat's `Id` (`oilPressure`), outside any list.
    pub fn get(&self, id: &str) -> Option<&Value<'db>> {
        self.items.iter().find_map(|i| match i {
            Item::Field {
                field,
                value,
                repeated: false,
                ..
            } if field.id == id => Some(value),
            _ => None,
        })
    }

    /// A number field's value in the database's unit.
    pub fn number(&self, id: &str) -> Option<f64> {
        match self.get(id)? {
            v @ (Value::Number { .. } | Value::Float(_) | Value::Time { .. } | Value::Date(_)) => {
                v.si()
            }
            _ => None,
        }
    }

    /// A lookup's or number's raw value.
    pub fn raw(&self, id: &str) -> Option<i64> {
        match self.get(id)? {
            Value::Lookup { raw, .. } | Value::Number { raw, .. } => Some(*raw),
            _ => None,
        }
    }
}

/// Whether a number at the top of its range means "not available" or an error.
fn sentinel(value: i64, max: i64, s: &Scale) -> bool {
    let mut threshold = max - s.reserved as i64;
    if let Some(m) = s.range_max
        && m > 0.0
        && s.res > 0.0
    {
        let x = (m / s.res + 0.5).floor();
        if x < 9.2e18 && x as i64 == max {
            threshold = max;
        }
    }
    value > threshold
}

fn is_proprietary(pgn: u32) -> bool {
    (0xEF00..=0xEFFF).contains(&pgn)
        || (0xFF00..=0xFFFF).contains(&pgn)
        || (0x1EF00..=0x1EFFF).contains(&pgn)
        || (0x1FF00..=0x1FFFF).contains(&pgn)
}

fn is_manufacturer(pgn: u32) -> bool {
    (0xFF00..=0xFFFF).contains(&pgn) || pgn == 0x1EF00 || (0x1FF00..=0x1FFFF).contains(&pgn)
}

/// The walk's state: what earlier fields said about later ones.
struct Walk<'db, 'm> {
    db: &'db Database,
    units: Units,
    data: &'m [u8],
    /// The last number read (a variable binary field's length).
    prev: i64,
    repeat: [i64; 2],
    /// The PGN an earlier field named `PGN` refers to (group functions).
    ref_pgn: u32,
    ref_def: Option<Option<&'db Pgn>>,
    /// The type a key field chose for the next value field.
    typed: Option<&'db TypedKey>,
    /// The byte length a length field gave the next value field.
    length: Option<i64>,
    items: Vec<Item<'db>>,
}

/// A field could not be read at all: canboat drops the whole message.
struct Drop;

/// Decodes `msg` in `units` (the unit system only decides which values count as "not
/// available"); `None` when the message cannot be read as its definition says.
pub fn decode<'db>(db: &'db Database, msg: &Message, units: Units) -> Option<Decoded<'db>> {
    let def = db.choose(msg.pgn, &msg.data)?;
    let mut w = Walk {
        db,
        units,
        data: &msg.data,
        prev: 0,
        repeat: [255, 0],
        ref_pgn: 0,
        ref_def: None,
        typed: None,
        length: None,
        items: Vec::with_capacity(def.fields.len()),
    };
    w.fields(def).ok()?;
    Some(Decoded {
        def,
        items: w.items,
    })
}

impl<'db> Walk<'db, '_> {
    fn fields(&mut self, def: &'db Pgn) -> Result<(), Drop> {
        let fields = &def.fields;
        let (mut i, mut pos) = (0usize, 0usize);
        let mut left = 0i64;
        let (mut start, mut size) = (0usize, 0usize);
        let mut in_set = false;
        let mut repeated = false;
        while pos / 8 < self.data.len() {
            if left <= 0 {
                in_set = false;
            }
            let order = fields.get(i).map(|f| f.order as usize);
            for (set, (sz, st)) in [
                (def.repeat1_size, def.repeat1_start),
                (def.repeat2_size, def.repeat2_start),
            ]
            .into_iter()
            .enumerate()
            {
                if let (Some(sz), Some(st)) = (sz, st)
                    && sz > 0
                    && order == Some(st as usize)
                    && !in_set
                {
                    self.items.push(Item::List(set as u8 + 1));
                    left = i64::from(sz) * self.repeat[set];
                    (start, size) = (st as usize, sz as usize);
                    in_set = true;
                    repeated = true;
                }
            }
            if left > 0 {
                if i + 1 == start + size {
                    i = start - 1;
                    self.items.push(Item::Next);
                }
                left -= 1;
            }
            let Some(f) = fields.get(i) else { break };
            pos += self.field(def, f, &f.name, pos, true, repeated)?;
            i += 1;
        }
        Ok(())
    }

    /// Reads field `f` at `pos` under `name`; returns the bits it took.
    fn field(
        &mut self,
        def: &'db Pgn,
        f: &'db Field,
        name: &'db str,
        pos: usize,
        key_allowed: bool,
        repeated: bool,
    ) -> Result<usize, Drop> {
        let s = &f.scale[self.units as usize];
        let size = s.bits as usize;
        let bytes = size.div_ceil(8).min(self.data.len() - pos / 8);
        let bits = size.min(bytes * 8);
        if f.name == "PGN" {
            self.ref_pgn = extract(self.data, pos, bits, false, 0).map_or(0, |v| v.0 as u32);
            self.ref_def = None;
        } else if f.kind == Kind::DynamicFieldLength
            && let Some((v, _)) = extract(self.data, pos, bits, false, 0)
        {
            self.length = Some(v - f.dynamic_field_length_overhead);
        }
        if f.condition.as_deref() == Some("PGNIsProprietary") && !is_proprietary(self.ref_pgn) {
            return Ok(0);
        }
        if f.kind == Kind::Variable {
            return self.variable(f, name, pos, repeated);
        }
        let (value, used) = self.value(def, f, s, pos, bits)?;
        if let Some(value) = value {
            self.items.push(Item::Field {
                field: f,
                name,
                value,
                key: key_allowed && f.part_of_primary_key,
                repeated,
            });
        }
        Ok(used)
    }

    /// A number-like field: its value (`None`: not available) after noting what later
    /// fields need from it.
    fn number(
        &mut self,
        def: Option<&Pgn>,
        f: &Field,
        s: &Scale,
        pos: usize,
        bits: usize,
    ) -> Result<Option<i64>, Drop> {
        let (value, max) = extract(self.data, pos, bits, f.signed, s.raw_offset).ok_or(Drop)?;
        if let Some(def) = def {
            if def.repeat1_count == Some(f.order) {
                self.repeat[0] = value;
            }
            if def.repeat2_count == Some(f.order) {
                self.repeat[1] = value;
            }
        }
        self.prev = value;
        Ok((!sentinel(value, max, s)).then_some(value))
    }

    fn value(
        &mut self,
        def: &'db Pgn,
        f: &'db Field,
        s: &Scale,
        pos: usize,
        bits: usize,
    ) -> Result<(Option<Value<'db>>, usize), Drop> {
        let data = self.data;
        let at = pos / 8;
        let v = match f.kind {
            Kind::Number | Kind::DynamicFieldLength | Kind::FieldIndex => self
                .number(Some(def), f, s, pos, bits)?
                .map(|raw| Value::Number {
                    raw,
                    scale: *s,
                    res: f.resolution.unwrap_or(0.0),
                    position: f.is_position(),
                }),
            Kind::Mmsi => self
                .number(Some(def), f, s, pos, bits)?
                .map(|v| Value::Mmsi(v as u32)),
            Kind::Time | Kind::Duration => {
                self.number(Some(def), f, s, pos, bits)?
                    .map(|raw| Value::Time {
                        raw,
                        res: f.resolution.unwrap_or(1.0),
                    })
            }
            Kind::Float => {
                if bits != 32 || !pos.is_multiple_of(8) {
                    return Err(Drop);
                }
                let b = data.get(at..at + 4).ok_or(Drop)?;
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                // NaN is the type's "not available"; canboat prints it (as invalid JSON).
                v.is_finite().then_some(Value::Float(v))
            }
            Kind::Date => {
                if !pos.is_multiple_of(8) || bits != 16 {
                    return Err(Drop);
                }
                let b = data.get(at..at + 2).ok_or(Drop)?;
                let d = u16::from_le_bytes([b[0], b[1]]);
                (d < 0xFFFD).then_some(Value::Date(i64::from(d)))
            }
            Kind::Lookup | Kind::IndirectLookup | Kind::DynamicFieldKey => {
                let (raw, max) = extract(data, pos, bits, false, 0).ok_or(Drop)?;
                let name = self.lookup_name(def, f, raw)?;
                match name {
                    Some(n) => Some(Value::Lookup { raw, name: Some(n) }),
                    None if bits > 1 && raw >= max - if bits > 2 { 2 } else { 1 } => None,
                    None => Some(Value::Lookup { raw, name: None }),
                }
            }
            Kind::Bitlookup => {
                let (raw, _) = extract(data, pos, bits, false, 0).ok_or(Drop)?;
                if raw == 0 {
                    None
                } else {
                    let table = f.bit_lookup.as_deref();
                    let set = (0..bits as u32)
                        .filter(|b| (raw as u64) >> b & 1 == 1)
                        .map(|b| (b, table.and_then(|t| self.db.bit_name(t, b))))
                        .collect();
                    Some(Value::Bits(set))
                }
            }
            Kind::Pgn => {
                let v = self.number(Some(def), f, s, pos, bits)?;
                let max = (1i64 << bits) - 1;
                v.filter(|&v| v < max - 2).map(|v| Value::Pgn {
                    value: v as u32,
                    name: if is_manufacturer(v as u32) {
                        None
                    } else {
                        self.db.first(v as u32).map(|p| p.description.as_str())
                    },
                })
            }
            Kind::Reserved | Kind::Spare => {
                let Some((raw, max)) = extract(data, pos, bits, false, 0) else {
                    return Ok((None, bits));
                };
                let blank = if f.kind == Kind::Reserved {
                    raw == max
                } else {
                    raw == 0
                };
                (!blank).then(|| Value::Hex(hex(data, pos, bits).0))
            }
            Kind::Binary => {
                let bits = if s.bits == 0 {
                    self.prev.max(0) as usize
                } else {
                    bits
                };
                if at >= data.len() {
                    return Err(Drop);
                }
                let (text, used) = hex(data, pos, bits);
                return Ok((Some(Value::Hex(text)), used));
            }
            Kind::StringFix => {
                if at >= data.len() {
                    return Err(Drop);
                }
                let len = (s.bits as usize / 8).min(data.len() - at);
                return Ok((text(&data[at..at + len]), len * 8));
            }
            Kind::StringLz => {
                let len = usize::from(*data.get(at).ok_or(Drop)?).min(data.len() - at - 1);
                return Ok((text(&data[at + 1..at + 1 + len]), (len + 2) * 8));
            }
            Kind::StringLau => {
                let len = usize::from(*data.get(at).ok_or(Drop)?);
                let encoding = data.get(at + 1).copied().unwrap_or(0);
                if len < 2 || data.len() - at < 2 {
                    return Err(Drop);
                }
                let len = len.min(data.len() - at) - 2;
                let body = &data[at + 2..at + 2 + len];
                let body = match encoding {
                    0 => {
                        let units: Vec<u16> = body
                            .chunks_exact(2)
                            .map(|c| u16::from_le_bytes([c[0], c[1]]))
                            .collect();
                        String::from_utf16_lossy(&units).into_bytes()
                    }
                    1 | 0xFF => body.to_vec(),
                    _ => return Err(Drop),
                };
                return Ok((text(&body), (len + 2) * 8));
            }
            Kind::Decimal => {
                let bits = bits.min(data.len().saturating_sub(at) * 8 - pos % 8);
                let bytes = &data[at..(at + bits.div_ceil(8)).min(data.len())];
                let digits: String = bytes
                    .iter()
                    .filter(|&&b| b < 100)
                    .map(|b| format!("{b:02}"))
                    .collect();
                // All 0xFF is "not available"; no digit at all would print nothing, which
                // is not JSON (canboat prints it anyway).
                (!digits.is_empty()).then_some(Value::Decimal(digits))
            }
            Kind::IsoName => {
                let (raw, max) = extract(data, pos, bits, false, 0).ok_or(Drop)?;
                (raw <= max - 2).then_some(Value::IsoName(raw as u64))
            }
            Kind::DynamicFieldValue => return self.dynamic(f, pos),
            Kind::KeyValue | Kind::Variable => {
                let (text, used) = hex(data, pos, data.len() * 8 - pos);
                return Ok((Some(Value::Hex(text)), used));
            }
        };
        Ok((v, bits))
    }

    fn lookup_name(
        &mut self,
        def: &'db Pgn,
        f: &'db Field,
        raw: i64,
    ) -> Result<Option<&'db str>, Drop> {
        if let Some(want) = f.must_be {
            if raw != want {
                return Err(Drop);
            }
            if let Some(d) = f.description.as_deref() {
                return Ok(Some(d));
            }
        }
        if let Some(t) = f.lookup.as_deref() {
            return Ok(self.db.lookup(t, raw));
        }
        if let Some(t) = f.fieldtype_lookup.as_deref() {
            self.typed = self.db.typed_key(t, raw);
            return Ok(self.typed.map(|k| k.name.as_str()));
        }
        if let (Some(t), Some(order)) = (f.indirect_lookup.as_deref(), f.indirect_field) {
            let fields = &def.fields;
            let idx = order as usize - 1;
            let off: usize = fields[..idx.min(fields.len())]
                .iter()
                .map(|g| g.scale[0].bits as usize)
                .sum();
            if let Some(other) = fields.get(idx)
                && let Some((first, _)) =
                    extract(self.data, off, other.scale[0].bits as usize, false, 0)
            {
                return Ok(self.db.indirect(t, first, raw));
            }
        }
        Ok(None)
    }

    /// A value whose type and length earlier key and length fields chose.
    fn dynamic(&mut self, f: &'db Field, pos: usize) -> Result<(Option<Value<'db>>, usize), Drop> {
        let data = self.data;
        let typed = self.typed.take();
        let length = self.length.take();
        let total = data.len() * 8;
        let mut bits = match length {
            Some(l) if l < 0 => {
                if typed.is_none() {
                    let (text, used) = hex(data, pos, total - pos);
                    return Ok((Some(Value::Hex(text)), used));
                }
                0
            }
            Some(0) => return Ok((None, 0)),
            Some(l) => l as usize * 8,
            None => 0,
        };
        if pos + bits > total {
            return Ok((None, total.saturating_sub(pos)));
        }
        let Some(k) = typed else {
            if bits == 0 && length.is_none() {
                bits = total - pos;
            }
            let (text, used) = hex(data, pos, bits);
            return Ok((Some(Value::Hex(text)), used));
        };
        if bits == 0 {
            bits = k.bits.unwrap_or(0) as usize;
        }
        let kind = k.field_type.unwrap_or(Kind::Number);
        let res = k.resolution.unwrap_or(0.0);
        let (raw, _) = extract(data, pos, bits, k.signed, 0).ok_or(Drop)?;
        let value = match kind {
            Kind::Number => {
                let mut scale = Scale {
                    res,
                    bits: bits as u32,
                    ..Scale::default()
                };
                if self.units == Units::Std && res != 0.0 {
                    match k.unit.as_deref() {
                        Some("Pa") => {
                            scale.res = res / 100_000.0;
                            scale.decimals = 3;
                        }
                        Some("K") if !k.signed => scale.add = -273.15,
                        Some("rad") => {
                            scale.res = res * 360.0 / 2.0 / std::f64::consts::PI;
                            scale.decimals = 1;
                        }
                        Some("rad/s") => scale.res = res * 360.0 / 2.0 / std::f64::consts::PI,
                        _ => {}
                    }
                }
                Value::Number {
                    raw,
                    scale,
                    res,
                    position: k.unit.as_deref() == Some("deg"),
                }
            }
            Kind::Time | Kind::Duration => Value::Time {
                raw,
                res: if res == 0.0 { 1.0 } else { res },
            },
            Kind::Lookup => Value::Lookup {
                raw,
                name: k.lookup.as_deref().and_then(|t| self.db.lookup(t, raw)),
            },
            _ => Value::Hex(hex(data, pos, bits).0),
        };
        self.items.push(Item::Field {
            field: f,
            name: &f.name,
            value,
            key: false,
            repeated: false,
        });
        Ok((None, bits))
    }

    /// A group function's parameter value: typed as the referenced PGN's field.
    fn variable(
        &mut self,
        f: &'db Field,
        name: &'db str,
        pos: usize,
        repeated: bool,
    ) -> Result<usize, Drop> {
        let data = self.data;
        let at = pos / 8;
        if self.ref_pgn == 0 || at < 2 {
            return Err(Drop);
        }
        let mut catch_all = false;
        let def = match self.ref_def {
            Some(d) => d,
            None => {
                let mut d = self.by_parameters(self.ref_pgn, &data[at - 2..]);
                if d.is_none() {
                    d = self.db.catch_all(self.ref_pgn);
                    catch_all = true;
                }
                self.ref_def = Some(d);
                d
            }
        };
        let Some(def) = def else { return Err(Drop) };
        let idx = usize::from(data[at - 1]).wrapping_sub(1);
        let Some(target) = def.fields.get(idx) else {
            return Err(Drop);
        };
        if catch_all && target.scale[0].bits == 0 && data.len() * 8 > pos {
            let (text, used) = hex(data, pos, data.len() * 8 - pos);
            self.items.push(Item::Field {
                field: f,
                name,
                value: Value::Hex(text),
                key: false,
                repeated,
            });
            return Ok(used);
        }
        let used = self.field(def, target, name, pos, false, repeated)?;
        Ok((used + 7) & !7)
    }

    /// The variant of a referenced PGN that a group function's parameters select.
    fn by_parameters(&self, pgn: u32, d: &[u8]) -> Option<&'db Pgn> {
        let first = self.db.first(pgn)?;
        if is_proprietary(pgn) && (d.len() < 6 || d[0] < 2 || d[1] != 1 || d[4] != 3) {
            return None;
        }
        if !self
            .db
            .definitions(pgn)
            .any(|p| p.fields.iter().any(|f| f.must_be.is_some()))
        {
            return Some(first);
        }
        'variant: for p in self.db.definitions(pgn).filter(|p| !p.fallback) {
            let mut at = 1usize;
            for _ in 0..d[0] {
                let Some(&n) = d.get(at) else { break };
                at += 1;
                let Some(field) = p.fields.get(usize::from(n).wrapping_sub(1)) else {
                    continue 'variant;
                };
                let bits = field.scale[0].bits as usize;
                if let Some(want) = field.must_be
                    && extract(d, at * 8, bits, field.signed, 0).map(|v| v.0) != Some(want)
                {
                    continue 'variant;
                }
                at += bits.div_ceil(8);
            }
            return Some(p);
        }
        None
    }
}

/// Bytes shown as canboat shows binary: upper-case hex pairs, the last partial byte
/// keeping only its low bits, a field starting mid-byte keeping its bits in place.
fn hex(data: &[u8], pos: usize, bits: usize) -> (String, usize) {
    let at = pos / 8;
    let shift = pos % 8;
    let avail = data.len().saturating_sub(at) * 8;
    let bits = if shift + bits > avail {
        avail.saturating_sub(shift)
    } else {
        bits
    };
    let mut out = String::with_capacity(bits.div_ceil(8) * 3);
    let mut rem = bits as i64;
    for i in 0..bits.div_ceil(8) {
        let mut byte = data[at + i];
        if i == 0 && shift != 0 {
            byte >>= shift;
            if rem + (shift as i64) < 8 {
                byte &= (1u8 << rem) - 1;
            }
            byte <<= shift;
            rem -= 8 - shift as i64;
        } else {
            if rem < 8 {
                byte &= ((1u16 << rem) - 1) as u8;
            }
            rem -= 8;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("{byte:02X}"));
    }
    (out, bits)
}

/// A string's bytes cleaned as canboat does: cut at a NUL, padding (0xFF, NUL, `@`,
/// white space) trimmed off the end; nothing left is no value.
fn text<'db>(bytes: &[u8]) -> Option<Value<'db>> {
    let mut len = bytes.len();
    if let Some(z) = bytes[..len.saturating_sub(1)].iter().position(|&b| b == 0) {
        len = z;
    }
    while len > 0
        && matches!(
            bytes[len - 1],
            0xFF | 0 | b'@' | b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r'
        )
    {
        len -= 1;
    }
    (len > 0).then(|| Value::Text(bytes[..len].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(pgn: u32, data: &[u8]) -> Message {
        Message {
            at_ms: 0,
            prio: 2,
            pgn,
            src: 1,
            dst: 255,
            data: data.to_vec(),
        }
    }

    #[test]
    fn engine_parameters_decode_with_sentinels_left_out() {
        // pgn127489.txt's first line: a Yanmar with a low battery.
        let data = hex_bytes("0028 00ffff bb7157 0300 00e0 b005 00ff ffff ffff 2000 0000 7eff");
        let m = msg(127_489, &data);
        let d = decode(Database::get(), &m, Units::Si).unwrap();
        assert_eq!(d.def.description, "Engine Parameters, Dynamic");
        assert_eq!(d.raw("instance"), Some(0));
        assert_eq!(d.number("oilPressure"), Some(4_000.0));
        assert_eq!(d.get("oilTemperature"), None, "0xFFFF is not available");
        assert!((d.number("temperature").unwrap() - 291.15).abs() < 1e-9);
        assert!((d.number("alternatorPotential").unwrap() - 8.55).abs() < 1e-9);
        assert_eq!(d.number("totalEngineHours"), Some(372_960.0));
        assert_eq!(
            d.get("discreteStatus1"),
            Some(&Value::Bits(vec![(5, Some("Low System Voltage"))]))
        );
        assert_eq!(d.number("engineTorque"), Some(-1.0));
        assert_eq!(d.get("engineLoad"), None, "0x7E is an error value");
    }

    #[test]
    fn a_short_message_reads_the_bytes_it_has() {
        let m = msg(127_489, &[0x01, 0x28, 0x00, 0x10]);
        let d = decode(Database::get(), &m, Units::Si).unwrap();
        assert_eq!(d.raw("instance"), Some(1));
        assert_eq!(d.number("oilPressure"), Some(4_000.0));
        assert_eq!(
            d.number("oilTemperature"),
            Some(1.6),
            "cut to the one byte there is"
        );
    }

    #[test]
    fn an_unknown_proprietary_pgn_falls_to_its_range_catch_all() {
        let m = msg(130_818, &[0x7D, 0x99, 1, 2, 3]);
        let d = decode(Database::get(), &m, Units::Si).unwrap();
        assert!(!d.known());
        assert!(d.def.description.starts_with("0x1FF00-0x1FFFF"));
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
