//! Go `time.ParseDuration`, exactly: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units ns, us, µs,
//! μs, ms, s, m, h, the special `0`, fractions, and overflow detection at ±2^63 ns. Lytics
//! clients send token lifetimes in this grammar (`"100h"`, `"1h30m"`), so authd must accept
//! and reject exactly what Go does. Whether a parsed value is acceptable (e.g. positive) is
//! the caller's rule, not the parser's.

use std::fmt;

/// Why a duration string was rejected, worded like Go's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// The string does not follow the grammar.
    Invalid(String),
    /// A component is missing its unit.
    MissingUnit(String),
    /// A unit outside ns, us, µs, μs, ms, s, m, h (e.g. `d`).
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// The value does not fit in a signed 64-bit count of nanoseconds.
    Overflow(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Invalid(s) => write!(f, "time: invalid duration {s:?}"),
            DurationError::MissingUnit(s) => write!(f, "time: missing unit in duration {s:?}"),
            DurationError::UnknownUnit { unit, input } => {
                write!(f, "time: unknown unit {unit:?} in duration {input:?}")
            }
            DurationError::Overflow(s) => write!(f, "time: invalid duration {s:?}"),
        }
    }
}

impl std::error::Error for DurationError {}

const LIMIT: u64 = 1 << 63;

fn unit_nanos(u: &str) -> Option<u64> {
    Some(match u {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration into signed nanoseconds.
pub fn parse_go_duration(input: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(input.to_owned());
    let overflow = || DurationError::Overflow(input.to_owned());
    let mut s = input.as_bytes();
    let mut neg = false;
    if let Some((&c, rest)) = s.split_first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            s = rest;
        }
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while let Some(&first) = s.first() {
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part: [0-9]*
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let (int_part, rest) = s.split_at(digits);
        s = rest;
        let mut v: u64 = 0;
        for &c in int_part {
            if v > LIMIT / 10 {
                return Err(overflow());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(overflow());
            }
        }
        let pre = digits > 0;
        // Fraction: (\.[0-9]*)?
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = s.get(1..).unwrap_or_default();
            let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let (frac_part, rest) = s.split_at(n);
            s = rest;
            post = n > 0;
            let mut overflowed = false;
            for &c in frac_part {
                if overflowed {
                    continue;
                }
                if frac > (LIMIT - 1) / 10 {
                    overflowed = true;
                    continue;
                }
                let y = frac * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflowed = true;
                    continue;
                }
                frac = y;
                scale *= 10.0;
            }
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit: everything up to the next '.' or digit.
        let n = s
            .iter()
            .take_while(|c| !(**c == b'.' || c.is_ascii_digit()))
            .count();
        if n == 0 {
            return Err(DurationError::MissingUnit(input.to_owned()));
        }
        let (unit, rest) = s.split_at(n);
        s = rest;
        let unit = String::from_utf8_lossy(unit);
        let Some(u) = unit_nanos(&unit) else {
            return Err(DurationError::UnknownUnit {
                unit: unit.into_owned(),
                input: input.to_owned(),
            });
        };
        if v > LIMIT / u {
            return Err(overflow());
        }
        v *= u;
        if frac > 0 {
            // Go computes this in float64 and truncates.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let add = (frac as f64 * (u as f64 / scale)) as u64;
            v = v.checked_add(add).ok_or_else(overflow)?;
            if v > LIMIT {
                return Err(overflow());
            }
        }
        total = total.checked_add(v).ok_or_else(overflow)?;
        if total > LIMIT {
            return Err(overflow());
        }
    }
    if neg {
        // total <= 2^63, so -total fits.
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| overflow())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn accepts_what_go_accepts() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            (".5s", S / 2),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4_000_000),
            ("1.0040s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * 3600 * S),
            ("100h", 100 * 3600 * S),
            ("3h30m", (3 * 3600 + 30 * 60) * S),
            ("1h30m", 5400 * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            (
                "1h2m3s4ms5us6ns",
                3600 * S + 2 * 60 * S + 3 * S + 4_000_000 + 5_000 + 6,
            ),
            (
                "39h9m14.425s",
                39 * 3600 * S + 9 * 60 * S + 14 * S + 425_000_000,
            ),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * 60 * S),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036.854775807s", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036.854775808s", i64::MIN),
            ("0.000000000000000000000000000001ns", 0),
            ("0.100000000000000000000h", 6 * 60 * S),
            (
                "0.830103483285477580700h",
                49 * 60 * S + 48 * S + 372_539_827,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_duration(input), Ok(*want), "{input}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for input in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1w",
            "1.5d",
            "3000000h",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "abc",
            "1h ",
            " 1h",
            "1hh",
            "1H",
            "h1",
            "1e3s",
            "--1s",
            "1s-1s",
            "\u{0}",
            "100h\n",
        ] {
            assert!(
                parse_go_duration(input).is_err(),
                "{input:?} must be rejected"
            );
        }
    }

    #[test]
    fn unknown_units_are_named_like_go() {
        let e = parse_go_duration("1d").unwrap_err();
        assert_eq!(e.to_string(), "time: unknown unit \"d\" in duration \"1d\"");
        assert_eq!(
            parse_go_duration("3").unwrap_err().to_string(),
            "time: missing unit in duration \"3\""
        );
    }
}
