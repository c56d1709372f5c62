//! Go-style command lines: upstream components used Go's `flag`/pflag packages, so manifests pass `-flag`,
//! `--flag`, `-flag=value` and durations such as `30s`; these helpers accept them unchanged.

use std::time::Duration;

/// Parse a Go `time.Duration` string (`300ms`, `30s`, `3m`, `1h30m`, `1.5s`; a bare `0` is zero).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration \"{s}\""))?;
        if num_end == 0 {
            return Err(format!("invalid duration \"{s}\""));
        }
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid duration \"{s}\""))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => return Err(format!("unknown unit \"{u}\" in duration \"{s}\"")),
        };
        total += n * secs;
        rest = &rest[unit_end..];
    }
    if !total.is_finite() || total > 1e12 {
        return Err(format!("invalid duration \"{s}\""));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Rewrite Go-style single-dash long flags (`-forceNamespaced`, `-v=2`) to clap's `--` form.
pub fn normalize_go_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut after_dd = false;
    for a in args {
        if after_dd {
            out.push(a);
            continue;
        }
        if a == "--" {
            after_dd = true;
            out.push(a);
            continue;
        }
        let single = a.starts_with('-') && !a.starts_with("--") && a.len() > 1;
        let name = a[1.min(a.len())..].split('=').next().unwrap_or("");
        if single && (name.len() > 1 || name == "v") {
            out.push(format!("-{a}"));
        } else {
            out.push(a);
        }
    }
    out
}
