//! Replay of real klines from a local mirror of data.binance.vision's `data/` tree.
//!
//! Layout read (`{iv}` is the archive spelling, `1mo` for `1M`):
//!
//! ```text
//! DIR/spot/{monthly,daily}/klines/{SYM}/{iv}/{SYM}-{iv}-….csv | .zip
//! DIR/futures/um/{monthly,daily}/klines/{SYM}/{iv}/…
//! ```
//!
//! A file is a CSV of Binance's 12 columns, or a zip holding one; with or without the futures
//! header line (`open_time,open,…`); with millisecond or (spot since 2025) microsecond times,
//! which become milliseconds. Everything else is kept verbatim: `Decimal` keeps each value's
//! text and scale, and each row's JSON is rendered once at load time, so serving a page is a
//! copy of one slice. Other files (`.CHECKSUM`, …) are ignored. Rows present in both a monthly
//! and a daily file are kept once (the first read, monthly).

use std::{
    collections::BTreeMap,
    fs,
    io::Read,
    ops::Range,
    path::{Path, PathBuf},
    str::FromStr,
};

use binance_spec::{Decimal, Interval, Kline, Market};

/// Timestamps at or above this are microseconds (16 digits), not milliseconds (13 digits).
const MICROS_THRESHOLD: i64 = 100_000_000_000_000;

/// Why a mirror could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open zip {path}: {source}")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("zip {path} holds no .csv file")]
    NoCsvInZip { path: PathBuf },
    #[error("{path} line {line}: {reason}")]
    Row {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: {interval} klines do not exist on {market}")]
    Unsupported {
        path: PathBuf,
        market: Market,
        interval: Interval,
    },
}

/// The replayed rows of one (market, symbol, interval), ascending by open time.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReplaySeries {
    klines: Vec<Kline>,
    /// Every row's JSON followed by a comma.
    json: Vec<u8>,
    /// Where row `i`'s JSON starts in `json`; one extra entry at the end (`json.len()`).
    starts: Vec<usize>,
}

impl ReplaySeries {
    fn new(mut klines: Vec<Kline>) -> Self {
        klines.sort_by_key(|k| k.open_time);
        klines.dedup_by_key(|k| k.open_time);
        let mut text = String::with_capacity(klines.len() * 160);
        let mut starts = Vec::with_capacity(klines.len() + 1);
        for k in &klines {
            starts.push(text.len());
            k.write_json(&mut text);
            text.push(',');
        }
        starts.push(text.len());
        Self {
            klines,
            json: text.into_bytes(),
            starts,
        }
    }

    pub(crate) fn klines(&self) -> &[Kline] {
        &self.klines
    }

    /// Index of the first row opening at or after `ms`.
    pub(crate) fn first_at_or_after(&self, ms: i64) -> usize {
        self.klines.partition_point(|k| k.open_time < ms)
    }

    /// Index just past the last row opening at or before `ms`.
    pub(crate) fn end_at_or_before(&self, ms: i64) -> usize {
        self.klines.partition_point(|k| k.open_time <= ms)
    }

    /// Appends the rows `range` as comma-separated JSON arrays (no brackets).
    pub(crate) fn write_json(&self, range: Range<usize>, out: &mut Vec<u8>) {
        if range.is_empty() {
            return;
        }
        out.extend_from_slice(&self.json[self.starts[range.start]..self.starts[range.end] - 1]);
    }

    /// Bytes [`Self::write_json`] appends for `range`.
    pub(crate) fn json_len(&self, range: Range<usize>) -> usize {
        if range.is_empty() {
            0
        } else {
            self.starts[range.end] - self.starts[range.start] - 1
        }
    }
}

/// Everything replayed, by (market, symbol), then by interval.
pub(crate) type Replay = BTreeMap<(Market, String), BTreeMap<Interval, ReplaySeries>>;

/// Loads every kline file under `dir` (a mirror of `data/`). A missing market folder is
/// simply absent data; an unreadable or malformed file is an error.
pub(crate) fn load_dir(dir: &Path) -> Result<Replay, LoadError> {
    let mut rows: BTreeMap<(Market, String), BTreeMap<Interval, Vec<Kline>>> = BTreeMap::new();
    if !dir.is_dir() {
        return Err(LoadError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    for market in Market::ALL {
        for period in ["monthly", "daily"] {
            let root = dir.join(market.archive_dir()).join(period).join("klines");
            for symbol_dir in sorted_entries(&root)? {
                let Some(symbol) = file_name(&symbol_dir) else {
                    continue;
                };
                if !symbol_dir.is_dir() {
                    continue;
                }
                for interval_dir in sorted_entries(&symbol_dir)? {
                    let name = file_name(&interval_dir).unwrap_or_default();
                    let Some(interval) = Interval::ALL.into_iter().find(|i| i.archive_name() == name) else {
                        tracing::warn!(path = %interval_dir.display(), "Not an interval folder; skipped.");
                        continue;
                    };
                    if !market.supports(interval) {
                        return Err(LoadError::Unsupported {
                            path: interval_dir,
                            market,
                            interval,
                        });
                    }
                    let series = rows
                        .entry((market, symbol.clone()))
                        .or_default()
                        .entry(interval)
                        .or_default();
                    for file in sorted_entries(&interval_dir)? {
                        if let Some(text) = read_kline_file(&file)? {
                            series.extend(parse_csv(&text, &file)?);
                        }
                    }
                }
            }
        }
    }
    let replay: Replay = rows
        .into_iter()
        .map(|(key, by_interval)| {
            let series = by_interval
                .into_iter()
                .map(|(interval, klines)| (interval, ReplaySeries::new(klines)))
                .collect();
            (key, series)
        })
        .collect();
    for ((market, symbol), series) in &replay {
        let rows: usize = series.values().map(|s| s.klines.len()).sum();
        tracing::info!(%market, symbol, intervals = series.len(), rows, "Loaded replay klines.");
    }
    Ok(replay)
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_string)
}

/// The entries of `dir` by name; none if it does not exist.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut paths = read
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    paths.sort();
    Ok(paths)
}

/// The CSV text of a `.csv` file or of the first `.csv` inside a `.zip`; `None` for any
/// other file.
fn read_kline_file(path: &Path) -> Result<Option<String>, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => fs::read_to_string(path).map(Some).map_err(io),
        Some("zip") => {
            let zip_err = |source| LoadError::Zip {
                path: path.to_path_buf(),
                source,
            };
            let mut archive = zip::ZipArchive::new(fs::File::open(path).map_err(io)?).map_err(zip_err)?;
            for i in 0..archive.len() {
                let mut entry = archive.by_index(i).map_err(zip_err)?;
                if entry.name().ends_with(".csv") {
                    let mut text = String::with_capacity(entry.size() as usize);
                    entry.read_to_string(&mut text).map_err(io)?;
                    return Ok(Some(text));
                }
            }
            Err(LoadError::NoCsvInZip {
                path: path.to_path_buf(),
            })
        }
        _ => Ok(None),
    }
}

/// Parses Binance's kline CSV (header line optional, ms or µs times).
pub(crate) fn parse_csv(text: &str, path: &Path) -> Result<Vec<Kline>, LoadError> {
    let mut out = Vec::with_capacity(text.len() / 140);
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || (index == 0 && line.starts_with("open_time")) {
            continue;
        }
        out.push(parse_row(line).map_err(|reason| LoadError::Row {
            path: path.to_path_buf(),
            line: index + 1,
            reason,
        })?);
    }
    Ok(out)
}

fn parse_row(line: &str) -> Result<Kline, String> {
    let fields: Vec<&str> = line.split(',').collect();
    if fields.len() != 12 {
        return Err(format!("expected 12 columns, found {}", fields.len()));
    }
    let time = |i: usize| -> Result<i64, String> {
        let v = i64::from_str(fields[i])
            .map_err(|_| format!("column {} is not a timestamp: '{}'", i + 1, fields[i]))?;
        Ok(if v >= MICROS_THRESHOLD { v / 1_000 } else { v })
    };
    let dec = |i: usize| -> Result<Decimal, String> {
        Decimal::from_str(fields[i])
            .map_err(|_| format!("column {} is not a decimal: '{}'", i + 1, fields[i]))
    };
    Ok(Kline {
        open_time: time(0)?,
        open: dec(1)?,
        high: dec(2)?,
        low: dec(3)?,
        close: dec(4)?,
        volume: dec(5)?,
        close_time: time(6)?,
        quote_volume: dec(7)?,
        trades: u64::from_str(fields[8])
            .map_err(|_| format!("column 9 is not a trade count: '{}'", fields[8]))?,
        taker_buy_base_volume: dec(9)?,
        taker_buy_quote_volume: dec(10)?,
        ignore: dec(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TC0: a spot row (no header), TC1: the same row with µs times, TC2: a futures header.
    #[test]
    fn parses_real_rows() {
        let path = Path::new("t.csv");
        let spot = "1609459200000,28923.63000000,29031.34000000,28690.17000000,28995.13000000,2311.81144500,1609462799999,66768830.34010008,58389,1215.35923800,35103542.78288276,0\n";
        let micros = "1735689600000000,93576.00000000,93610.93000000,93537.50000000,93610.93000000,8.21827000,1735689659999999,768978.48452240,1673,4.03737000,377799.63281080,0\r\n";
        let header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n1681516800000,30453.00,30455.00,30446.40,30452.40,174.120,1681516859999,5301913.57520,1884,83.714,2549037.25020,0\n";
        let row = &parse_csv(spot, path).unwrap()[0];
        let mut json = String::new();
        row.write_json(&mut json);
        assert_eq!(
            json,
            r#"[1609459200000,"28923.63000000","29031.34000000","28690.17000000","28995.13000000","2311.81144500",1609462799999,"66768830.34010008",58389,"1215.35923800","35103542.78288276","0"]"#
        );
        let row = &parse_csv(micros, path).unwrap()[0];
        assert_eq!(
            (row.open_time, row.close_time),
            (1_735_689_600_000, 1_735_689_659_999)
        );
        let rows = parse_csv(header, path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].quote_volume.to_string(), "5301913.57520");
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let cases = [
            ("1,2,3\n", "line 1: expected 12 columns, found 3"),
            (
                "1609459200000,x,1,1,1,1,1609462799999,1,1,1,1,0\n",
                "column 2 is not a decimal: 'x'",
            ),
            (
                "\nabc,1,1,1,1,1,1,1,1,1,1,0\n",
                "line 2: column 1 is not a timestamp",
            ),
        ];
        for (text, want) in cases {
            let err = parse_csv(text, Path::new("bad.csv")).unwrap_err().to_string();
            assert!(err.contains("bad.csv") && err.contains(want), "{err}");
        }
    }

    #[test]
    fn slices_pages_verbatim() {
        let rows: Vec<Kline> = parse_csv(
            "3,1,1,1,1,0,4,0,0,0,0,0\n1,1.0,1.0,1.0,1.0,0,2,0,0,0,0,0\n1,9,9,9,9,9,2,9,9,9,9,9\n",
            Path::new("t.csv"),
        )
        .unwrap();
        let series = ReplaySeries::new(rows);
        assert_eq!(series.klines().len(), 2, "duplicate open times are kept once");
        let mut out = Vec::new();
        series.write_json(0..2, &mut out);
        assert_eq!(out.len(), series.json_len(0..2));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[1,"1.0","1.0","1.0","1.0","0",2,"0",0,"0","0","0"],[3,"1","1","1","1","0",4,"0",0,"0","0","0"]"#
        );
        assert_eq!((series.first_at_or_after(2), series.end_at_or_before(2)), (1, 1));
    }
}
