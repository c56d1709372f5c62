//! The `Retry-After` header: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), the preferred IMF-fixdate
//! (`Sun, 06 Nov 1994 08:49:37 GMT`) and the two obsolete forms (RFC 850 and asctime).
//!
//! A date in the past means "now" (zero). Values are capped at [`MAX_RETRY_AFTER_SECS`] so that time
//! arithmetic on them can never overflow; anything unparseable is `None` and the caller picks its default.

use std::time::{Duration, SystemTime};

/// Largest delay returned, seconds (one day; real ARM throttling windows are minutes).
pub const MAX_RETRY_AFTER_SECS: u64 = 24 * 60 * 60;

/// Parse a `Retry-After` value relative to `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        // More than 20 digits cannot be a u64; any such number is "very long", so cap it.
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs.min(MAX_RETRY_AFTER_SECS)));
    }
    let at = http_date(v)?;
    let now = jiff::Timestamp::try_from(now).ok()?;
    let secs = at.as_second().saturating_sub(now.as_second());
    Some(Duration::from_secs(
        u64::try_from(secs).unwrap_or(0).min(MAX_RETRY_AFTER_SECS),
    ))
}

/// An HTTP-date in any of its three forms.
fn http_date(v: &str) -> Option<jiff::Timestamp> {
    if let Ok(ts) = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(v) {
        return Some(ts);
    }
    for fmt in ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"] {
        if let Ok(bdt) = jiff::fmt::strtime::parse(fmt, v)
            && let Ok(dt) = bdt.to_datetime()
            && let Ok(z) = dt.to_zoned(jiff::tz::TimeZone::UTC)
        {
            return Some(z.timestamp());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn table() {
        // 784111777 = Sun, 06 Nov 1994 08:49:37 GMT
        let now = at(784_111_777 - 30);
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("7", Some(7)),
            (" 120 ", Some(120)),
            ("99999999999999999999999", Some(MAX_RETRY_AFTER_SECS)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(30)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(30)),
            ("Sun Nov  6 08:49:37 1994", Some(30)),
            ("Sun, 06 Nov 1994 08:48:37 GMT", Some(0)),
            ("", None),
            ("-1", None),
            ("1.5", None),
            ("soon", None),
        ];
        for (v, want) in cases {
            assert_eq!(
                parse_retry_after(v, now),
                want.map(Duration::from_secs),
                "{v}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,64}", secs in 0u64..4_000_000_000) {
            let _ = parse_retry_after(&s, at(secs));
        }

        #[test]
        fn seconds_round_trip(n in 0u64..MAX_RETRY_AFTER_SECS) {
            proptest::prop_assert_eq!(parse_retry_after(&n.to_string(), SystemTime::now()), Some(Duration::from_secs(n)));
        }

        #[test]
        fn dates_round_trip(now in 0i64..4_000_000_000, ahead in 0i64..(MAX_RETRY_AFTER_SECS as i64)) {
            let target = jiff::Timestamp::from_second(now + ahead).expect("ts");
            let text = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&target).expect("fmt");
            let got = parse_retry_after(&text, at(now as u64));
            proptest::prop_assert_eq!(got, Some(Duration::from_secs(ahead as u64)));
        }
    }
}
