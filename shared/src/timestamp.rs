//! Instants as milliseconds since the Unix epoch, and the three text forms the
//! pipeline meets: RFC 3339 (event times), IMF-fixdate (the HTTP `Date` header)
//! and SigV4's basic `X-Amz-Date` form.
//!
//! Written out by hand rather than pulling in a date crate: the grammar needed
//! is small, and nothing here may reach for the system clock.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An instant, in whole milliseconds since 1970-01-01T00:00:00Z (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// The earliest instant any parser here accepts: 0001-01-01T00:00:00Z.
/// Years 1..=9999 are the one range of times edgehose reads, in any form.
pub const MIN_MS: i64 = -62_135_596_800_000;
/// The latest instant any parser here accepts: 9999-12-31T23:59:59.999Z.
pub const MAX_MS: i64 = 253_402_300_799_999;

impl Timestamp {
    /// Wraps milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch, if they fall in years 1..=9999
    /// ([`MIN_MS`]..=[`MAX_MS`]), the range every parser here keeps to.
    pub fn from_millis_in_range(ms: i64) -> Option<Self> {
        (MIN_MS..=MAX_MS).contains(&ms).then_some(Self(ms))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This instant moved by `ms` milliseconds (saturating).
    pub const fn add_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    pub const fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The same instant as a [`SystemTime`], built by arithmetic on
    /// `UNIX_EPOCH` (safe on wasm32, unlike `SystemTime::now()`).
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_millis(self.0.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_millis(self.0.unsigned_abs())
        }
    }

    /// A [`SystemTime`] to the millisecond (truncated toward the past).
    /// Native code reads the clock as
    /// `Timestamp::from_system_time(SystemTime::now())`; this crate never does.
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
            Err(before) => {
                let d = before.duration();
                let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                // 1.5 ms before the epoch is -2 ms, as for instants after it.
                Self(if d.subsec_nanos() % 1_000_000 == 0 {
                    -ms
                } else {
                    -ms - 1
                })
            }
        }
    }

    /// Parses an RFC 3339 date-time such as `2024-05-01T12:30:00.250Z` or
    /// `2024-05-01T14:30:00+02:00`; fractions beyond milliseconds are truncated.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20 {
            return None;
        }
        let (date_ms, mut i) = parse_date_time_prefix(b)?;
        let mut frac_ms = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 3 {
                    frac_ms = frac_ms * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            let digits = i - start;
            if digits == 0 {
                return None;
            }
            for _ in digits..3 {
                frac_ms *= 10;
            }
        }
        let offset_ms = match b.get(i)? {
            b'Z' | b'z' if i + 1 == b.len() => 0,
            sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
                let hh = two_digits(b, i + 1)?;
                let mm = two_digits(b, i + 4)?;
                if hh > 23 || mm > 59 {
                    return None;
                }
                let off = (hh * 60 + mm) * 60_000;
                if *sign == b'+' { off } else { -off }
            }
            _ => return None,
        };
        Self::from_millis_in_range(date_ms + frac_ms - offset_ms)
    }

    /// Formats as RFC 3339 in UTC with milliseconds: `2024-05-01T12:30:00.250Z`.
    pub fn to_rfc3339(self) -> String {
        String::from_utf8_lossy(&self.rfc3339_bytes()).into_owned()
    }

    /// The same text as ASCII bytes, without an allocation.
    pub fn rfc3339_bytes(self) -> [u8; 24] {
        let (y, mo, d, h, mi, s, ms) = self.fields();
        // Written digit by digit: this runs once or more per event on the
        // regional side, where format! machinery showed in profiles.
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (0..width).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, mo);
        put(8, 2, d);
        put(11, 2, h);
        put(14, 2, mi);
        put(17, 2, s);
        put(20, 3, ms);
        b
    }

    /// Parses an HTTP `Date` header in IMF-fixdate form
    /// (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7).
    pub fn parse_http_date(s: &str) -> Option<Self> {
        let b = s.trim().as_bytes();
        // "Sun, 06 Nov 1994 08:49:37 GMT" is exactly 29 bytes.
        if b.len() != 29 || &b[3..5] != b", " || b[7] != b' ' || b[11] != b' ' || &b[25..] != b" GMT" {
            return None;
        }
        let day = two_digits(b, 5)?;
        let month = MONTHS.iter().position(|m| m.as_bytes() == &b[8..11])? as i64 + 1;
        let year = four_digits(b, 12)?;
        if b[16] != b' ' || b[19] != b':' || b[22] != b':' {
            return None;
        }
        let (h, mi, sec) = (two_digits(b, 17)?, two_digits(b, 20)?, two_digits(b, 23)?);
        from_fields(year, month, day, h, mi, sec).map(Self)
    }

    /// Formats as an HTTP `Date` header value (IMF-fixdate).
    pub fn to_http_date(self) -> String {
        let (y, mo, d, h, mi, s, _) = self.fields();
        let weekday = WEEKDAYS[(self.0.div_euclid(86_400_000) + 4).rem_euclid(7) as usize];
        let month = MONTHS[(mo - 1) as usize];
        format!("{weekday}, {d:02} {month} {y:04} {h:02}:{mi:02}:{s:02} GMT")
    }

    /// Parses SigV4's basic form, `20150830T123600Z`.
    pub fn parse_amz_date(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let year = four_digits(b, 0)?;
        let (mo, d) = (two_digits(b, 4)?, two_digits(b, 6)?);
        let (h, mi, sec) = (two_digits(b, 9)?, two_digits(b, 11)?, two_digits(b, 13)?);
        from_fields(year, mo, d, h, mi, sec).map(Self)
    }

    /// Formats in SigV4's basic form, `20150830T123600Z` (seconds precision).
    pub fn to_amz_date(self) -> String {
        let (y, mo, d, h, mi, s, _) = self.fields();
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }

    fn fields(self) -> (i64, i64, i64, i64, i64, i64, i64) {
        let ms = self.0.clamp(MIN_MS, MAX_MS);
        let days = ms.div_euclid(86_400_000);
        let in_day = ms.rem_euclid(86_400_000);
        let (y, mo, d) = civil_from_days(days);
        (
            y,
            mo,
            d,
            in_day / 3_600_000,
            in_day / 60_000 % 60,
            in_day / 1000 % 60,
            in_day % 1000,
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Parses `YYYY-MM-DDTHH:MM:SS` (with `T`, `t` or a space), returning its
/// milliseconds and the index just past it.
fn parse_date_time_prefix(b: &[u8]) -> Option<(i64, usize)> {
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = four_digits(b, 0)?;
    let (mo, d) = (two_digits(b, 5)?, two_digits(b, 8)?);
    let (h, mi, s) = (two_digits(b, 11)?, two_digits(b, 14)?, two_digits(b, 17)?);
    Some((from_fields(year, mo, d, h, mi, s)?, 19))
}

/// Milliseconds for a UTC civil date and time, or `None` if any field is out of range.
fn from_fields(year: i64, month: i64, day: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    // A leap second (:60) is folded into the next second's start minus nothing:
    // RFC 3339 allows it, and no analytics event depends on it.
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s.min(59) * 1000)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (the "era" method:
/// 400-year cycles of 146,097 days, with the year starting in March so the
/// leap day falls last).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn two_digits(b: &[u8], at: usize) -> Option<i64> {
    let d = b.get(at..at + 2)?;
    d.iter()
        .all(u8::is_ascii_digit)
        .then(|| i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
}

fn four_digits(b: &[u8], at: usize) -> Option<i64> {
    Some(two_digits(b, at)? * 100 + two_digits(b, at + 2)?)
}

/// A timestamp as RFC 3339 text (`2024-05-01T12:30:00.250Z`) that
/// serializes without an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339([u8; 24]);

impl Rfc3339 {
    /// The instant `ms` milliseconds after the epoch.
    pub fn of_millis(ms: i64) -> Self {
        Self(Timestamp::from_millis(ms).rfc3339_bytes())
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(std::str::from_utf8(&self.0).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_utc_and_offset_forms_of_the_same_instant() {
        let utc = Timestamp::parse_rfc3339("2024-05-01T12:30:00.250Z").unwrap();
        let plus = Timestamp::parse_rfc3339("2024-05-01T14:30:00.25+02:00").unwrap();
        let minus = Timestamp::parse_rfc3339("2024-05-01T07:00:00.250-05:30").unwrap();
        assert_eq!(utc, plus);
        assert_eq!(utc, minus);
        assert_eq!(utc.as_millis(), 1_714_566_600_250);
        assert_eq!(utc.to_rfc3339(), "2024-05-01T12:30:00.250Z");
    }

    #[test]
    fn truncates_sub_millisecond_fractions() {
        let t = Timestamp::parse_rfc3339("1970-01-01T00:00:01.999999999Z").unwrap();
        assert_eq!(t.as_millis(), 1999);
    }

    #[test]
    fn rejects_malformed_and_impossible_dates() {
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:30:00",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:30:00.Z",
            "2024-05-01T12:30:00+2:00",
            "2024-05-01T12:30:00Zjunk",
            "２０２４-05-01T12:30:00Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad:?}");
        }
        assert!(Timestamp::parse_rfc3339("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn http_dates_round_trip_with_the_right_weekday() {
        let t = Timestamp::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(t.as_millis(), 784_111_777_000);
        assert_eq!(t.to_http_date(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(Timestamp(0).to_http_date(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(Timestamp::parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
    }

    #[test]
    fn amz_dates_round_trip() {
        let t = Timestamp::parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t.to_amz_date(), "20150830T123600Z");
        assert_eq!(t.to_rfc3339(), "2015-08-30T12:36:00.000Z");
        assert_eq!(Timestamp::parse_amz_date("2015-08-30T12:36:00Z"), None);
    }

    #[test]
    fn system_time_conversion_works_on_both_sides_of_the_epoch() {
        assert_eq!(
            Timestamp(1500).to_system_time(),
            UNIX_EPOCH + Duration::from_millis(1500)
        );
        assert_eq!(
            Timestamp(-1500).to_system_time(),
            UNIX_EPOCH - Duration::from_millis(1500)
        );
    }

    #[test]
    fn system_time_reads_back_to_the_millisecond() {
        for ms in [0, 1500, -1500, 1_700_000_000_123, -86_400_000] {
            assert_eq!(
                Timestamp::from_system_time(Timestamp(ms).to_system_time()),
                Timestamp(ms)
            );
        }
        let t = UNIX_EPOCH - Duration::from_micros(1500);
        assert_eq!(Timestamp::from_system_time(t), Timestamp(-2));
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH + Duration::from_micros(1500)),
            Timestamp(1)
        );
    }

    proptest! {
        #[test]
        fn rfc3339_formatting_round_trips(ms in MIN_MS..=MAX_MS) {
            let t = Timestamp(ms);
            prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
        }

        #[test]
        fn http_date_formatting_round_trips_to_the_second(ms in 0i64..=MAX_MS) {
            let t = Timestamp(ms);
            let back = Timestamp::parse_http_date(&t.to_http_date()).unwrap();
            prop_assert_eq!(back.as_millis(), ms - ms.rem_euclid(1000));
        }
    }
}
