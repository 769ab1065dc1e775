//! Writing kline rows as Binance's JSON without going through `fmt`: integers and fixed-point
//! decimals (an integer mantissa and a scale) straight into a byte buffer.
//!
//! The bytes are identical to [`binance_spec::Kline::write_json`] of the same row (the
//! synthetic tests check it row by row); this exists only because the synthetic path must
//! write millions of rows a second.

/// Two ASCII digits for every value 0..100.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes the decimal digits of `v` into the end of `buf`; returns where they start.
fn digits_u64(mut v: u64, buf: &mut [u8; 40]) -> usize {
    let mut pos = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        pos -= 1;
        buf[pos] = b'0' + v as u8;
    }
    pos
}

/// Like [`digits_u64`] for any `u128`.
fn digits_u128(v: u128, buf: &mut [u8; 40]) -> usize {
    if let Ok(small) = u64::try_from(v) {
        return digits_u64(small, buf);
    }
    // Peel off 19 low digits at a time with u64 arithmetic.
    const CHUNK: u128 = 10_000_000_000_000_000_000;
    let (high, low) = (v / CHUNK, (v % CHUNK) as u64);
    let mut low_buf = [0u8; 40];
    let low_start = digits_u64(low, &mut low_buf);
    let mut pos = buf.len() - 19;
    buf[pos..].fill(b'0');
    let low_digits = &low_buf[low_start..];
    let len = buf.len();
    buf[len - low_digits.len()..].copy_from_slice(low_digits);
    let mut high_buf = [0u8; 40];
    let high_start = digits_u128(high, &mut high_buf);
    let high_digits = &high_buf[high_start..];
    pos -= high_digits.len();
    buf[pos..pos + high_digits.len()].copy_from_slice(high_digits);
    pos
}

/// Appends `v` in decimal.
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 40];
    let start = digits_u64(v, &mut buf);
    out.extend_from_slice(&buf[start..]);
}

/// Appends `v` in decimal.
pub(crate) fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// Appends `mantissa / 10^scale` with exactly `scale` decimals, as rust_decimal prints a
/// `Decimal` of that mantissa and scale (`5, 8` → `0.00000005`; `0, 3` → `0.000`).
pub(crate) fn push_fixed(out: &mut Vec<u8>, mantissa: u128, scale: u32) {
    let mut buf = [0u8; 40];
    let start = digits_u128(mantissa, &mut buf);
    let digits = &buf[start..];
    let scale = scale as usize;
    if scale == 0 {
        out.extend_from_slice(digits);
    } else if digits.len() > scale {
        let split = digits.len() - scale;
        out.extend_from_slice(&digits[..split]);
        out.push(b'.');
        out.extend_from_slice(&digits[split..]);
    } else {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + scale - digits.len(), b'0');
        out.extend_from_slice(digits);
    }
}

/// Appends `"` + [`push_fixed`] + `"`.
pub(crate) fn push_quoted_fixed(out: &mut Vec<u8>, mantissa: u128, scale: u32) {
    out.push(b'"');
    push_fixed(out, mantissa, scale);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use binance_spec::Decimal;

    fn fixed(m: u128, scale: u32) -> String {
        let mut out = Vec::new();
        push_fixed(&mut out, m, scale);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixed_point_prints_like_rust_decimal() {
        let cases: &[(u128, u32)] = &[
            (0, 0),
            (0, 3),
            (0, 8),
            (5, 8),
            (2_892_363_000_000, 8),
            (3_045_300, 2),
            (174_120, 3),
            (530_191_357_520, 5),
            (12_345_678_901_234_567_890, 8),
            (u64::MAX as u128 + 1, 8),
            (79_228_162_514_264_337_593_543_950_335, 10),
            (100_000_000_000_000_000_000_000, 0),
            (1, 0),
            (9, 1),
            (10, 1),
        ];
        for &(m, scale) in cases {
            let want = Decimal::from_i128_with_scale(m as i128, scale).to_string();
            assert_eq!(fixed(m, scale), want, "mantissa {m} scale {scale}");
        }
    }

    #[test]
    fn integers() {
        for v in [0i64, 7, 10, 99, 100, 1_499_040_000_000, -1, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            push_i64(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
        let mut out = Vec::new();
        push_u64(&mut out, u64::MAX);
        assert_eq!(String::from_utf8(out).unwrap(), u64::MAX.to_string());
    }
}
