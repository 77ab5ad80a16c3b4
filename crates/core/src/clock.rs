//! Time, injected. The only place in authd allowed to read the system clock is
//! [`SystemClock`]; everything else receives a [`Clock`] so tests can move time at will.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time in Unix milliseconds (UTC).
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the system clock
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to; for tests and tooling.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock stopped at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self(AtomicI64::new(now_ms))
    }

    /// Moves the clock forward (or back, with a negative delta).
    pub fn advance_ms(&self, delta_ms: i64) {
        self.0.fetch_add(delta_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC with millisecond precision
/// (`2015-03-27T21:52:09.893Z`); `None` ("never") is `0001-01-01T00:00:00Z`, the value typed
/// Lytics clients expect instead of an empty string.
pub fn rfc3339(ms: Option<i64>) -> String {
    Rfc3339(ms).to_string()
}

/// [`rfc3339`] as a `Display` value, formatted without allocating (it sits on the read path
/// of every auth response). Instants outside years 0001–9999 are written as "never".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub Option<i64>);

impl Rfc3339 {
    /// The longest text: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    const LEN: usize = 24;

    /// Formats into `buf` by hand (no `fmt` machinery: this runs four times per auth in
    /// every answer) and returns the text.
    pub fn write_to(self, buf: &mut [u8; 24]) -> &str {
        // Days from 0001-01-01 to 1970-01-01 and to 10000-01-01.
        const MIN_MS: i64 = -62_135_596_800_000;
        const MAX_MS: i64 = 253_402_300_800_000;
        let Some(ms) = self.0.filter(|m| (MIN_MS..MAX_MS).contains(m)) else {
            return NEVER;
        };
        let days = ms.div_euclid(86_400_000);
        let in_day = ms.rem_euclid(86_400_000);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (at..at + width).rev() {
                // v is non-negative and below 10^width here: each digit fits a u8.
                buf[i] = b'0' + u8::try_from(v % 10).unwrap_or(0);
                v /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, in_day / 3_600_000);
        put(14, 2, in_day / 60_000 % 60);
        put(17, 2, in_day / 1_000 % 60);
        put(20, 3, in_day % 1_000);
        for (i, c) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (23, b'Z'),
        ] {
            buf[i] = c;
        }
        std::str::from_utf8(&buf[..Self::LEN]).unwrap_or(NEVER)
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.write_to(&mut [0; 24]))
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.write_to(&mut [0; 24]))
    }
}

pub const NEVER: &str = "0001-01-01T00:00:00Z";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_render_as_rfc3339_millis_utc() {
        assert_eq!(rfc3339(Some(1_427_493_129_893)), "2015-03-27T21:52:09.893Z");
        assert_eq!(rfc3339(None), NEVER);
    }

    #[test]
    fn the_fast_formatter_agrees_with_chrono() {
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = match i {
                0 => 0,
                1 => -1,
                2 => -62_135_596_800_000,
                3 => 253_402_300_799_999,
                4 => 951_782_400_000, // 2000-02-29
                _ => x.rem_euclid(315_537_897_600_000) - 62_135_596_800_000,
            };
            let want = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(Rfc3339(Some(ms)).to_string(), want, "{ms}");
        }
        assert_eq!(Rfc3339(Some(253_402_300_800_000)).to_string(), NEVER);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(10);
        assert_eq!(c.now_ms(), 10);
        c.advance_ms(5);
        assert_eq!(c.now_ms(), 15);
    }
}
