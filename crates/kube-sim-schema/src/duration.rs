//! `k8s.io/apimachinery/pkg/util/duration.HumanDuration`, the API server's AGE rendering.

use jiff::Timestamp;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Render a duration given in nanoseconds the way `duration.HumanDuration` does: up to
/// 2-3 significant figures (`5s`, `119s`, `3m2s`, `15m`, `7h5m`, `20h`, `2d3h`, `45d`,
/// `2y30d`, `9y`); more than one second in the future is `<invalid>`, up to one second in
/// the future is `0s`.
#[must_use]
pub fn human_duration_nanos(nanos: i128) -> String {
    // int(d.Seconds()) truncates toward zero.
    let seconds = nanos / NANOS_PER_SECOND;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 || nanos < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{h}h", hours / 24);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{dy}d", hours / 24 / 365);
    }
    format!("{}y", hours / 24 / 365)
}

/// `HumanDuration(now - then)`.
#[must_use]
pub fn human_duration_since(then: Timestamp, now: Timestamp) -> String {
    human_duration_nanos(now.as_nanosecond() - then.as_nanosecond())
}

/// Parse a `metav1.Time` string (RFC 3339, as `time.Parse(time.RFC3339, …)` accepts).
/// `""` and `"null"` are the zero time (`Ok(None)`).
pub(crate) fn parse_time(s: &str) -> Result<Option<Timestamp>, ()> {
    if s.is_empty() || s == "null" {
        return Ok(None);
    }
    s.parse::<Timestamp>().map(Some).map_err(|_| ())
}

/// `translateTimestampSince`: `<unknown>` for a missing/zero/unparseable timestamp, else the
/// human duration since it.
pub(crate) fn since(ts: Option<&serde_json::Value>, now: Timestamp) -> String {
    match ts.and_then(serde_json::Value::as_str).map(parse_time) {
        Some(Ok(Some(t))) => human_duration_since(t, now),
        _ => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_human_duration_table() {
        let s = |n: i128| n * NANOS_PER_SECOND;
        let cases: &[(i128, &str)] = &[
            (-s(3), "<invalid>"),
            (-s(2), "<invalid>"),
            (-s(1), "0s"),
            (-NANOS_PER_SECOND / 2, "0s"),
            (0, "0s"),
            (s(5), "5s"),
            (s(119), "119s"),
            (s(120), "2m"),
            (s(182), "3m2s"),
            (s(599), "9m59s"),
            (s(600), "10m"),
            (s(3 * 3600 - 1), "179m"),
            (s(3 * 3600), "3h"),
            (s(7 * 3600 + 5 * 60), "7h5m"),
            (s(8 * 3600), "8h"),
            (s(47 * 3600 + 59 * 60), "47h"),
            (s(48 * 3600), "2d"),
            (s(51 * 3600), "2d3h"),
            (s(8 * 24 * 3600), "8d"),
            (s(729 * 24 * 3600), "729d"),
            (s(730 * 24 * 3600), "2y"),
            (s(760 * 24 * 3600), "2y30d"),
            (s(8 * 365 * 24 * 3600), "8y"),
            (s(20 * 365 * 24 * 3600), "20y"),
        ];
        for (n, want) in cases {
            assert_eq!(human_duration_nanos(*n), *want, "{n}");
        }
    }

    #[test]
    fn since_timestamps() {
        let now: Timestamp = "2024-05-01T12:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let v = serde_json::json!("2024-05-01T11:57:00Z");
        assert_eq!(since(Some(&v), now), "3m");
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(Some(&serde_json::json!("garbage")), now), "<unknown>");
        assert_eq!(
            since(Some(&serde_json::json!("2024-05-01T11:59:59.5+00:00")), now),
            "0s"
        );
    }
}
