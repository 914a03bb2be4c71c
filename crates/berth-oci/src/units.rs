//! How sizes and durations read, the same in progress bars, summaries and errors: binary
//! units (`512 B`, `1.50 KiB`, `12.30 MiB`, as `--split-size` reads them and the progress bar
//! prints them), durations in the flags' syntax (`42.1s`, `3m05s`, `2h07m`) and RFC 3339
//! timestamps.

use std::time::Duration;

/// `n` bytes: `512 B`, `1.50 KiB`, `12.30 MiB`, `3.02 GiB`.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let (mut v, mut unit) = (n as f64 / 1024.0, 0);
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {}", UNITS[unit])
}

/// `bytes` moved in `seconds`, per second: `12.30 MiB/s` (`0 B/s` for no time).
pub fn rate(bytes: u64, seconds: f64) -> String {
    let per = match seconds > 0.0 {
        true => (bytes as f64 / seconds) as u64,
        false => 0,
    };
    format!("{}/s", size(per))
}

/// A duration as the flags write them: `0.42s`, `42.1s`, `3m05s`, `2h07m`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    let whole = d.as_secs();
    match whole {
        0 => format!("{s:.2}s"),
        1..60 => format!("{s:.1}s"),
        60..3600 => format!("{}m{:02}s", whole / 60, whole % 60),
        _ => format!("{}h{:02}m", whole / 3600, whole % 3600 / 60),
    }
}

/// [`duration`] of a number of seconds (negative or NaN as zero).
pub fn seconds(s: f64) -> String {
    duration(Duration::try_from_secs_f64(s).unwrap_or_default())
}

/// `d` as Go's `time.ParseDuration` reads it (kubelet's durations): `90s`, `10m`, `24h`.
pub fn go_duration(d: Duration) -> String {
    match d.as_secs() {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `2024-01-01T00:00:00Z` (RFC 3339, UTC, whole seconds) for a time since the Unix epoch;
/// `None` past what RFC 3339 can write (the year 9999).
pub fn rfc3339(since_epoch: Duration) -> Option<String> {
    let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary_with_two_decimals() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.50 KiB");
        assert_eq!(size(12_897_485), "12.30 MiB");
        assert_eq!(size(3 << 30), "3.00 GiB");
        assert_eq!(rate(10 << 20, 2.0), "5.00 MiB/s");
        assert_eq!(rate(10, 0.0), "0 B/s");
    }

    #[test]
    fn rfc3339_is_utc_whole_seconds() {
        assert_eq!(
            rfc3339(Duration::from_secs(0)).as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            rfc3339(Duration::from_secs(1_709_164_800)).as_deref(),
            Some("2024-02-29T00:00:00Z")
        );
        assert_eq!(rfc3339(Duration::MAX), None);
    }

    #[test]
    fn durations_read_like_the_flags() {
        assert_eq!(seconds(0.421), "0.42s");
        assert_eq!(seconds(42.06), "42.1s");
        assert_eq!(seconds(185.0), "3m05s");
        assert_eq!(seconds(7620.0), "2h07m");
        assert_eq!(seconds(-1.0), "0.00s");
        let go = |s| go_duration(Duration::from_secs(s));
        assert_eq!(
            (go(600), go(86400), go(90), go(0)),
            ("10m".into(), "24h".into(), "90s".into(), "0s".into())
        );
    }
}
