//! Decoding Binance's kline JSON into [`Kline`]s, exactly and without per-field allocation.
//!
//! A body is a JSON array of 12-element rows:
//!
//! ```json
//! [[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",
//!   1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","17928899.62484339"]]
//! ```
//!
//! Decimal strings are parsed straight from the body's bytes into [`Decimal`] (exact, scale
//! kept). Rows as Binance really sends them — zero volume, a close time cut short at a halt or
//! even before the open, open times off the interval grid — are accepted as they are. Only a
//! malformed row (wrong arity, a number that does not parse) is rejected, and the error names
//! the row's open time. A body that ends early is reported as [`DecodeError::Truncated`],
//! which is worth retrying; a malformed row is not.

use std::fmt;

use binance_spec::{Decimal, Kline, time::format_rfc3339_ms};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};

/// Why a klines body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body stopped in the middle (a cut connection): retrying may help.
    #[error("the response body ended early ({0})")]
    Truncated(String),
    /// The body is JSON but not an array of kline rows.
    #[error("the response is not a list of klines: {0}")]
    NotKlines(String),
    /// One row is malformed: the exchange sent something we must not store.
    #[error("malformed kline {}: {problem}", describe_row(*.index, *.open_time))]
    Row {
        /// Position of the row in the page.
        index: usize,
        /// The row's open time, when it could be read.
        open_time: Option<i64>,
        /// What is wrong with it.
        problem: String,
    },
}

fn describe_row(index: usize, open_time: Option<i64>) -> String {
    match open_time {
        Some(t) => format!("with open time {t} ({})", format_rfc3339_ms(t)),
        None => format!("#{index} of the page"),
    }
}

impl DecodeError {
    /// Whether fetching the same page again may give a usable answer.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DecodeError::Truncated(_))
    }
}

/// Field names in row order, for error messages.
const FIELDS: [&str; 12] = [
    "open time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close time",
    "quote volume",
    "trades",
    "taker buy base volume",
    "taker buy quote volume",
    "ignore",
];

/// Decodes a klines response body.
pub fn decode_klines(body: &[u8]) -> Result<Vec<Kline>, DecodeError> {
    let mut problem = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = PageSeed {
        problem: &mut problem,
        capacity_hint: body.len() / 150,
    }
    .deserialize(&mut de)
    .and_then(|rows| de.end().map(|()| rows));
    match result {
        Ok(rows) => Ok(rows),
        Err(_) if problem.is_some() => Err(problem.expect("checked")),
        Err(e) if e.classify() == serde_json::error::Category::Eof => {
            Err(DecodeError::Truncated(e.to_string()))
        }
        Err(e) => Err(DecodeError::NotKlines(e.to_string())),
    }
}

/// Deserializes the outer array, recording the first row problem in `problem`.
struct PageSeed<'p> {
    problem: &'p mut Option<DecodeError>,
    capacity_hint: usize,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = Vec<Kline>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = Vec<Kline>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of kline rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut rows = Vec::with_capacity(self.capacity_hint.min(1500));
        loop {
            let index = rows.len();
            let seed = RowSeed {
                index,
                problem: &mut *self.problem,
            };
            match seq.next_element_seed(seed)? {
                Some(row) => rows.push(row),
                None => return Ok(rows),
            }
        }
    }
}

/// Deserializes one row.
struct RowSeed<'p> {
    index: usize,
    problem: &'p mut Option<DecodeError>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Kline;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl RowSeed<'_> {
    fn fail<E: de::Error>(self, open_time: Option<i64>, problem: String) -> E {
        *self.problem = Some(DecodeError::Row {
            index: self.index,
            open_time,
            problem,
        });
        E::custom("malformed kline row")
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Kline;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 12-element kline row")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ints = [0i64; 3]; // open time, close time, trades
        let mut decs = [Decimal::ZERO; 9];
        let mut open_time = None;
        for (pos, name) in FIELDS.iter().enumerate() {
            let field = match seq.next_element::<Field<'de>>() {
                Ok(Some(f)) => f,
                Ok(None) => {
                    let msg = format!("it has {pos} fields, Binance rows have 12");
                    return Err(self.fail(open_time, msg));
                }
                // Only broken JSON (or a body cut short) fails here: leave it to the caller.
                Err(e) => return Err(e),
            };
            match pos {
                0 | 6 | 8 => {
                    let Some(v) = field.as_int().filter(|v| pos != 8 || *v >= 0) else {
                        let msg = format!("field {} ({name}) is not an integer: {field}", pos + 1);
                        return Err(self.fail(open_time, msg));
                    };
                    if pos == 0 {
                        open_time = Some(v);
                    }
                    ints[int_slot(pos)] = v;
                }
                _ => {
                    let Some(v) = field.as_decimal() else {
                        let msg = format!("field {} ({name}) is not a decimal: {field}", pos + 1);
                        return Err(self.fail(open_time, msg));
                    };
                    decs[decimal_slot(pos)] = v;
                }
            }
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            let msg = "it has more than 12 fields".to_string();
            return Err(self.fail(open_time, msg));
        }
        Ok(Kline {
            open_time: ints[0],
            open: decs[0],
            high: decs[1],
            low: decs[2],
            close: decs[3],
            volume: decs[4],
            close_time: ints[1],
            quote_volume: decs[5],
            trades: ints[2] as u64,
            taker_buy_base_volume: decs[6],
            taker_buy_quote_volume: decs[7],
            ignore: decs[8],
        })
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.fail(None, "it is a number, not a 12-element array".into()))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.fail(None, "it is a number, not a 12-element array".into()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.fail(None, "it is a number, not a 12-element array".into()))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.fail(None, "it is a string, not a 12-element array".into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(self.fail(None, "it is null, not a 12-element array".into()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.fail(None, "it is a boolean, not a 12-element array".into()))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.fail(None, "it is an object, not a 12-element array".into()))
    }
}

/// Slot of row position `pos` in the decimal array (positions 0, 6 and 8 are integers).
const fn decimal_slot(pos: usize) -> usize {
    match pos {
        1..=5 => pos - 1,
        7 => 5,
        _ => pos - 3,
    }
}

/// Slot of row position `pos` (0, 6 or 8) in the integer array.
const fn int_slot(pos: usize) -> usize {
    match pos {
        0 => 0,
        6 => 1,
        _ => 2,
    }
}

/// One field of a row, borrowed from the body when possible.
enum Field<'a> {
    Int(i64),
    Float(f64),
    Str(std::borrow::Cow<'a, str>),
    /// Any other JSON value (null, bool, array, object), named.
    Other(&'static str),
}

impl Field<'_> {
    fn as_int(&self) -> Option<i64> {
        match self {
            Field::Int(v) => Some(*v),
            Field::Str(s) => s.parse().ok(),
            Field::Float(_) | Field::Other(_) => None,
        }
    }

    fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Field::Str(s) => parse_decimal(s),
            Field::Int(v) => Some(Decimal::from(*v)),
            Field::Float(_) | Field::Other(_) => None,
        }
    }
}

/// `s` as an exact decimal, scale kept, or `None`. Binance's shape — digits, a point, more
/// digits, at most 19 digits in all — is read in one pass straight into the mantissa;
/// anything else (a sign, more digits, a stray character) goes to `Decimal::from_str_exact`,
/// and only plain digits, points and minus signs are accepted at all (no exponent, no
/// spaces). Both paths give the same `Decimal` for the same text (tested below).
fn parse_decimal(s: &str) -> Option<Decimal> {
    let mut mantissa: u64 = 0;
    let mut digits = 0u32;
    // Digits after the point, once the point is seen.
    let mut fraction: Option<u32> = None;
    for &b in s.as_bytes() {
        match b {
            // 19 digits always fit in a u64.
            b'0'..=b'9' if digits < 19 => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
                if let Some(f) = fraction.as_mut() {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() && digits > 0 => fraction = Some(0),
            _ => return parse_decimal_slowly(s),
        }
    }
    match fraction {
        // "12" or "12.5": exact as read. ("12." and "" take the slow path.)
        None if digits > 0 => Some(Decimal::from_parts(
            mantissa as u32,
            (mantissa >> 32) as u32,
            0,
            false,
            0,
        )),
        Some(scale) if scale > 0 => Some(Decimal::from_parts(
            mantissa as u32,
            (mantissa >> 32) as u32,
            0,
            false,
            scale,
        )),
        _ => parse_decimal_slowly(s),
    }
}

/// Any other decimal text, by `rust_decimal` (exact or refused, never rounded).
fn parse_decimal_slowly(s: &str) -> Option<Decimal> {
    let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    if plain {
        Decimal::from_str_exact(s).ok()
    } else {
        None
    }
}

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Int(v) => write!(f, "{v}"),
            Field::Float(v) => write!(f, "{v}"),
            Field::Str(s) => write!(f, "{s:?}"),
            Field::Other(kind) => f.write_str(kind),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Field<'de>, E> {
                Ok(Field::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field<'de>, E> {
                i64::try_from(v)
                    .map(Field::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Field<'de>, E> {
                Ok(Field::Float(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Field<'de>, E> {
                Ok(Field::Str(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Field<'de>, E> {
                Ok(Field::Str(v.to_owned().into()))
            }
            fn visit_unit<E>(self) -> Result<Field<'de>, E> {
                Ok(Field::Other("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Field<'de>, E> {
                Ok(Field::Other("a boolean"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Other("an array"))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other("an object"))
            }
        }
        d.deserialize_any(FieldVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// TC0: the row of Binance's own docs, every field kept exactly (the 12th included).
    #[test]
    fn tc0_docs_row() {
        let body = br#"[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","17928899.62484339"]]"#;
        let rows = decode_klines(body).unwrap();
        assert_eq!(rows.len(), 1);
        let k = rows[0];
        assert_eq!(k.open_time, 1_499_040_000_000);
        assert_eq!(k.open.to_string(), "0.01634790");
        assert_eq!(k.high.to_string(), "0.80000000");
        assert_eq!(k.low.to_string(), "0.01575800");
        assert_eq!(k.close.to_string(), "0.01577100");
        assert_eq!(k.volume.to_string(), "148976.11427815");
        assert_eq!(k.close_time, 1_499_644_799_999);
        assert_eq!(k.quote_volume.to_string(), "2434.19055334");
        assert_eq!(k.trades, 308);
        assert_eq!(k.taker_buy_base_volume.to_string(), "1756.87402397");
        assert_eq!(k.taker_buy_quote_volume.to_string(), "28.46694368");
        assert_eq!(k.ignore.to_string(), "17928899.62484339");
        // And it writes back byte for byte.
        let mut out = String::from("[");
        k.write_json(&mut out);
        out.push(']');
        assert_eq!(out.as_bytes(), body);
    }

    /// Real rows with their quirks are stored as they are.
    #[test]
    fn real_quirks_are_accepted() {
        let cases: &[(&str, &str, i64, i64)] = &[
            // TC1: USD-M 1m, 2023-04-15 (realdata), short scales.
            (
                "usdm 1m",
                r#"[1681516800000,"30453.00","30455.00","30446.40","30452.40","174.120",1681516859999,"5301913.57520",1884,"83.714","2549037.25020","0"]"#,
                1_681_516_800_000,
                1_681_516_859_999,
            ),
            // TC2: spot 1h 2021-02-11 03:00, zero volume, cut short at a halt (realdata).
            (
                "halted zero-volume",
                r#"[1613012400000,"44582.07000000","44582.07000000","44582.07000000","44582.07000000","0.00000000",1613014854773,"0.00000000",0,"0.00000000","0.00000000","0"]"#,
                1_613_012_400_000,
                1_613_014_854_773,
            ),
            // TC3: a close time before the open time (seen in real history).
            (
                "close before open",
                r#"[1518077294789,"8000.00","8000.00","8000.00","8000.00","0.0",1518077294000,"0.0",0,"0.0","0.0","0"]"#,
                1_518_077_294_789,
                1_518_077_294_000,
            ),
            // TC4: an open time off the interval grid, after the 2018-02 outage.
            (
                "off grid",
                r#"[1518168494789,"8160.00","8300.00","8100.00","8200.00","12.5",1518172094788,"102500.0",42,"6.0","49200.0","0"]"#,
                1_518_168_494_789,
                1_518_172_094_788,
            ),
        ];
        for (name, row, open, close) in cases {
            let body = format!("[{row}]");
            let rows = decode_klines(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((rows[0].open_time, rows[0].close_time), (*open, *close), "{name}");
            let mut out = String::new();
            rows[0].write_json(&mut out);
            assert_eq!(&out, row, "{name}: round trip");
        }
        let zero = decode_klines(format!("[{}]", cases[1].1).as_bytes()).unwrap()[0];
        assert_eq!(zero.volume, d("0"));
        assert_eq!(zero.volume.to_string(), "0.00000000");
    }

    /// Malformed rows are rejected with the row's open time in the message.
    #[test]
    fn malformed_rows_name_the_open_time() {
        let good = r#"[1681516800000,"30453.00","30455.00","30446.40","30452.40","174.120",1681516859999,"5301913.57520",1884,"83.714","2549037.25020","0"]"#;
        let cases: &[(&str, &str, &str)] = &[
            (
                "TC5 eleven fields",
                r#"[1681516860000,"1","1","1","1","1",1681516919999,"1",1,"1","1"]"#,
                "with open time 1681516860000 (2023-04-15T00:01:00.000Z): it has 11 fields",
            ),
            (
                "TC6 thirteen fields",
                r#"[1681516860000,"1","1","1","1","1",1681516919999,"1",1,"1","1","0","x"]"#,
                "more than 12 fields",
            ),
            (
                "TC7 not a number",
                r#"[1681516860000,"1","abc","1","1","1",1681516919999,"1",1,"1","1","0"]"#,
                "with open time 1681516860000 (2023-04-15T00:01:00.000Z): field 3 (high) is not a decimal: \"abc\"",
            ),
            (
                "TC8 float price",
                r#"[1681516860000,0.5,"1","1","1","1",1681516919999,"1",1,"1","1","0"]"#,
                "field 2 (open) is not a decimal: 0.5",
            ),
            (
                "TC9 exponent",
                r#"[1681516860000,"1e-8","1","1","1","1",1681516919999,"1",1,"1","1","0"]"#,
                "field 2 (open) is not a decimal",
            ),
            (
                "TC10 null volume",
                r#"[1681516860000,"1","1","1","1",null,1681516919999,"1",1,"1","1","0"]"#,
                "field 6 (volume) is not a decimal: null",
            ),
            (
                "TC11 negative trades",
                r#"[1681516860000,"1","1","1","1","1",1681516919999,"1",-1,"1","1","0"]"#,
                "field 9 (trades) is not an integer: -1",
            ),
            (
                "TC12 row is an object",
                r#"{"a":1}"#,
                "#1 of the page: it is an object",
            ),
            ("TC13 row is null", "null", "#1 of the page: it is null"),
            (
                "TC14 open time is text",
                r#"["x","1","1","1","1","1",1681516919999,"1",1,"1","1","0"]"#,
                "#1 of the page: field 1 (open time) is not an integer",
            ),
        ];
        for (name, row, want) in cases {
            let body = format!("[{good},{row}]");
            let err = decode_klines(body.as_bytes()).unwrap_err();
            assert!(matches!(err, DecodeError::Row { .. }), "{name}: {err:?}");
            assert!(!err.is_retryable(), "{name}");
            let msg = err.to_string();
            assert!(msg.contains(want), "{name}: {msg}");
        }
    }

    #[test]
    fn truncated_bodies_are_retryable_and_other_shapes_are_not_klines() {
        let good = r#"[[1681516800000,"30453.00","30455.00","30446.40","30452.40","174.120",1681516859999,"5301913.57520",1884,"83.714","2549037.25020","0"]]"#;
        for cut in [1, 10, 40, good.len() - 1] {
            let err = decode_klines(&good.as_bytes()[..cut]).unwrap_err();
            assert!(matches!(err, DecodeError::Truncated(_)), "cut at {cut}: {err:?}");
            assert!(err.is_retryable());
        }
        assert_eq!(decode_klines(b"[]").unwrap(), vec![]);
        assert_eq!(decode_klines(b" [ ] ").unwrap(), vec![]);
        let err = decode_klines(br#"{"code":-1121,"msg":"Invalid symbol."}"#).unwrap_err();
        assert!(matches!(err, DecodeError::NotKlines(_)), "{err:?}");
        let err = decode_klines(b"[] trailing").unwrap_err();
        assert!(matches!(err, DecodeError::NotKlines(_)), "{err:?}");
    }

    /// The one-pass reader gives exactly what `Decimal::from_str_exact` gives (mantissa and
    /// scale), and refuses what the slow path refuses.
    #[test]
    fn decimals_read_in_one_pass_match_rust_decimal() {
        let mut cases: Vec<String> = [
            "0",
            "0.0",
            "0.00000000",
            "00.10",
            "1",
            "1.",
            ".5",
            "",
            "-",
            "-1.5",
            "-0.00",
            "1.2.3",
            "1-2",
            "9999999999999999999",
            "9999999999999999999.9",
            "10000000000000000000",
            "1844674407370955161.5",
            "18446744073709551615",
            "0.0000000000000000001",
            "0.00000000000000000001",
            "30453.00",
            "5301913.57520",
            "1e5",
            " 1",
            "1 ",
            "+1",
            "79228162514264337593543950335",
            "79228162514264337593543950336",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..50_000 {
            let int_len = rng.usize(0..14);
            let frac_len = rng.usize(0..14);
            let mut text: String = (0..int_len).map(|_| rng.char('0'..='9')).collect();
            if rng.bool() || frac_len > 0 {
                text.push('.');
            }
            text.extend((0..frac_len).map(|_| rng.char('0'..='9')));
            cases.push(text);
        }
        for text in cases {
            let slow = parse_decimal_slowly(&text);
            let fast = parse_decimal(&text);
            assert_eq!(
                fast.map(|d| (d.mantissa(), d.scale(), d.is_sign_negative())),
                slow.map(|d| (d.mantissa(), d.scale(), d.is_sign_negative())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn every_real_archive_row_decodes_exactly() {
        // The repository's copy of ../shared/realdata, rendered as API JSON.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/realdata");
        let mut seen = 0;
        for path in csv_files(std::path::Path::new(dir)) {
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text
                .lines()
                .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            {
                let f: Vec<&str> = line.split(',').collect();
                let json = format!(
                    r#"[[{},"{}","{}","{}","{}","{}",{},"{}",{},"{}","{}","{}"]]"#,
                    f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11]
                );
                let k = decode_klines(json.as_bytes()).unwrap()[0];
                let mut back = String::from("[");
                k.write_json(&mut back);
                back.push(']');
                assert_eq!(back, json);
                seen += 1;
            }
        }
        assert_eq!(seen, 2158 + 1440);
    }

    fn csv_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(csv_files(&path));
            } else if path.extension().is_some_and(|e| e == "csv") {
                out.push(path);
            }
        }
        out
    }
}
