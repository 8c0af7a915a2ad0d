//! greg's own minimal serde structs for the Bitbucket JSON it reads, shared by webhook
//! payloads and REST responses: [`cloud`] (REST 2.0, Cloud webhooks) and [`server`] (REST
//! 1.0, Server/Data Center webhooks). Only the fields greg uses are declared; a field greg
//! does not read is never a reason to fail. Wire types never leave this crate.
//!
//! This module holds what both share: JSON decoding with the path of the first error, and
//! [`Timestamp`], which reads every date form Bitbucket writes.

pub(crate) mod cloud;
pub(crate) mod server;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// Why a JSON document could not be read as the expected type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError {
    /// Where it went wrong: `pullRequest.fromRef.latestCommit`, or `(top level)`.
    pub path: String,
    /// True when the text is not JSON at all (truncated, not UTF-8, trailing characters).
    pub syntax: bool,
    /// serde_json's message, with line and column.
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.syntax {
            write!(f, "not valid JSON (in {}): {}", self.path, self.message)
        } else {
            write!(f, "at {}: {}", self.path, self.message)
        }
    }
}

/// Deserializes `body` as `T`, reporting failures with the dotted JSON path of the first
/// error and serde_json's message.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, JsonError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        JsonError {
            path: if path == "." {
                "(top level)".to_owned()
            } else {
                path
            },
            syntax: inner.is_eof() || inner.is_syntax(),
            message: inner.to_string(),
        }
    })?;
    // Trailing characters after the document are an error, as in `serde_json::from_slice`.
    de.end().map_err(|e| JsonError {
        path: "(top level)".to_owned(),
        syntax: true,
        message: e.to_string(),
    })?;
    Ok(value)
}

/// A sender-controlled string made safe for a one-line message: as is when it looks like an
/// event key or ref (`pr:comment:added`, `refs/tags/v1.0`), else quoted and escaped; at most
/// 60 characters either way.
pub(crate) fn printable(raw: &str) -> String {
    let cut: String = raw.chars().take(60).collect();
    let plain = !cut.is_empty()
        && cut
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':'));
    if plain { cut } else { format!("{cut:?}") }
}

/// A point in time, in microseconds since the Unix epoch (UTC), read from any form
/// Bitbucket writes:
/// - epoch milliseconds as a JSON number (Server entity dates: `"createdDate": 1580222693069`);
/// - ISO 8601 with a `±HHMM` offset (Server event dates: `"date": "2018-07-05T19:21:30+0000"`;
///   Data Center 10.x entity dates, tests/data/bitbucket-server/pr_opened.iso-dates.go-scm.json);
/// - ISO 8601 with fractional seconds and `±HH:MM` or `Z` (Cloud:
///   `"participated_on": "2020-02-10T16:28:37.177914+00:00"`; Data Center 10.x commit
///   timestamps `"2018-09-21T14:09:51.000Z"`).
///
/// greg compares Cloud approval times with it; webhook parsing never reads a date, so an odd
/// date in a payload is never a reason to refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp(pub i64);

impl Timestamp {
    /// Parses the ISO 8601 forms above; `None` for anything else (no time zone, an impossible
    /// date, trailing text).
    pub fn parse_iso(s: &str) -> Option<Timestamp> {
        let b = s.trim().as_bytes();
        let num = |from: usize, len: usize| -> Option<i64> {
            let digits = b.get(from..from + len)?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(digits).ok()?.parse().ok()
        };
        let sep = |at: usize, c: u8| b.get(at) == Some(&c);
        if !(sep(4, b'-') && sep(7, b'-') && (sep(10, b'T') || sep(10, b't')) && sep(13, b':'))
            || !sep(16, b':')
        {
            return None;
        }
        let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
        let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut i = 19;
        let mut micros = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                if i - start < 6 {
                    micros = micros * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            if i == start {
                return None;
            }
            for _ in (i - start)..6 {
                micros *= 10;
            }
        }
        let offset_secs = match b.get(i)? {
            b'Z' | b'z' if i + 1 == b.len() => 0,
            sign @ (b'+' | b'-') => {
                let hours = num(i + 1, 2)?;
                let (minutes, end) = if b.get(i + 3) == Some(&b':') {
                    (num(i + 4, 2)?, i + 6)
                } else if b.len() == i + 3 {
                    (0, i + 3)
                } else {
                    (num(i + 3, 2)?, i + 5)
                };
                if end != b.len() || hours > 23 || minutes > 59 {
                    return None;
                }
                let secs = hours * 3600 + minutes * 60;
                if *sign == b'+' { secs } else { -secs }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        Some(Timestamp(secs * 1_000_000 + micros))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;

        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("epoch milliseconds or an ISO 8601 date with a time zone")
            }

            fn visit_i64<E: de::Error>(self, ms: i64) -> Result<Timestamp, E> {
                ms.checked_mul(1000)
                    .map(Timestamp)
                    .ok_or_else(|| E::custom("epoch milliseconds out of range"))
            }

            fn visit_u64<E: de::Error>(self, ms: u64) -> Result<Timestamp, E> {
                i64::try_from(ms)
                    .map_err(|_| E::custom("epoch milliseconds out of range"))
                    .and_then(|ms| self.visit_i64(ms))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Timestamp, E> {
                Timestamp::parse_iso(s).ok_or_else(|| {
                    E::custom(format!(
                        "not an ISO 8601 date with a time zone: {}",
                        printable(s)
                    ))
                })
            }
        }

        d.deserialize_any(TimestampVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn every_bitbucket_date_form_reads_as_the_same_instant() {
        // 2020-01-28T14:44:53.069Z, as Server writes it in pr_opened.json (createdDate, epoch
        // ms) and in the event's `date` (+0100 offset, seconds only).
        let ms: Timestamp = serde_json::from_str("1580222693069").expect("epoch ms");
        assert_eq!(ms, Timestamp(1_580_222_693_069_000));
        assert_eq!(
            Timestamp::parse_iso("2020-01-28T15:44:53+0100"),
            Some(Timestamp(1_580_222_693_000_000))
        );
        for iso in [
            "2020-01-28T14:44:53.069Z",
            "2020-01-28T14:44:53.069000+00:00",
            "2020-01-28T16:44:53.069+02:00",
            "2020-01-28T09:44:53.069-0500",
            "2020-01-28T15:44:53.069+01",
        ] {
            assert_eq!(Timestamp::parse_iso(iso), Some(ms), "{iso}");
        }
        let from_json: Timestamp =
            serde_json::from_str("\"2018-07-05T19:21:30+0000\"").expect("iso");
        assert_eq!(from_json, Timestamp(1_530_818_490_000_000));
    }

    #[test]
    fn microseconds_order_cloud_times() {
        let a = Timestamp::parse_iso("2020-02-10T16:28:37.177914+00:00").expect("a");
        let b = Timestamp::parse_iso("2020-02-10T16:28:37.177915+00:00").expect("b");
        assert!(a < b);
        assert_eq!(b.0 - a.0, 1);
        assert_eq!(
            Timestamp::parse_iso("1969-12-31T23:59:59Z"),
            Some(Timestamp(-1_000_000))
        );
        assert_eq!(
            Timestamp::parse_iso("2024-02-29T00:00:00Z"),
            Some(Timestamp(1_709_164_800_000_000))
        );
    }

    #[test]
    fn impossible_or_zoneless_dates_are_refused() {
        for bad in [
            "",
            "2020-01-28",
            "2020-01-28T14:44:53",
            "2020-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2020-01-28T24:00:00Z",
            "2020-01-28T14:44:53.Z",
            "2020-01-28T14:44:53Zjunk",
            "2020-01-28T14:44:53+01:00junk",
            "2020-01-28 14:44:53Z",
            "yesterday",
        ] {
            assert_eq!(Timestamp::parse_iso(bad), None, "{bad}");
        }
        let err = serde_json::from_str::<Timestamp>("\"soon\"").expect_err("bad");
        assert!(err.to_string().contains("not an ISO 8601 date"), "{err}");
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
    }

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[allow(dead_code)]
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        n: u64,
    }

    #[test]
    fn json_errors_name_the_path_and_syntax_errors_say_so() {
        let err = from_json::<Probe>(br#"{"inner":{"n":"x"}}"#).expect_err("type");
        assert_eq!(err.path, "inner.n");
        assert!(!err.syntax);
        assert!(
            err.to_string().starts_with("at inner.n: invalid type"),
            "{err}"
        );
        let err = from_json::<Probe>(br#"{"inner":{"n":1}"#).expect_err("eof");
        assert!(
            err.syntax && err.to_string().starts_with("not valid JSON"),
            "{err}"
        );
        let err = from_json::<Probe>(br#"{"inner":{"n":1}} x"#).expect_err("trailing");
        assert!(err.syntax, "{err}");
    }

    #[test]
    fn printable_quotes_what_does_not_look_like_an_event_key() {
        assert_eq!(printable("pr:comment:added"), "pr:comment:added");
        assert_eq!(printable("a b"), "\"a b\"");
        assert_eq!(printable(""), "\"\"");
        assert_eq!(printable(&"x".repeat(100)).len(), 60);
    }
}
