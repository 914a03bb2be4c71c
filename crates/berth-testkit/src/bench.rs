//! Small helpers shared by the benchmarks (`bench/*.sh` run ignored release tests): knobs
//! from the environment, medians, a description of the machine, and the replacement of one
//! marked section of `BENCHMARKS.md`.

use std::path::Path;
use std::process::Command;

/// A `usize` knob from the environment, `default` when unset or not a number.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median (the mean of the two middle values for an even count). Panics when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The first line of a program's stdout, trimmed (empty when it cannot run).
pub fn cmd_line(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        Err(_) => String::new(),
    }
}

/// `OS, N CPU(s) "model" [with sha_ni], M GiB RAM`.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let sha_ni = cpu.contains(" sha_ni");
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("PRETTY_NAME=")
                .map(|s| s.trim_matches('"').to_string())
        })
        .unwrap_or_default();
    format!(
        "{os}, {} CPU(s) \"{model}\"{}, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        if sha_ni { " with sha_ni" } else { "" },
        cmd_line(
            "sh",
            &["-c", "free -g | awk '/Mem:/{print $2\" GiB RAM\"}'"]
        ),
    )
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `**met**` / `**missed**`.
pub fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

/// The version of CNCF Distribution (`/usr/bin/docker-registry --version`), `?` if unknown.
pub fn distribution_version() -> String {
    cmd_line("/usr/bin/docker-registry", &["--version"])
        .split_whitespace()
        .nth(2)
        .unwrap_or("?")
        .to_string()
}

/// Replaces the text between the markers `begin` and `end` of the Markdown file at `path`
/// with `text`; when the markers are missing, appends `## heading` and the marked section.
/// Other sections are left as they are. Panics when the file cannot be written.
pub fn write_section(path: &Path, heading: &str, begin: &str, end: &str, text: &str) {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (old.find(begin), old.find(end)) {
        (Some(a), Some(z)) if a < z => {
            format!("{}{begin}\n{text}{end}{}", &old[..a], &old[z + end.len()..])
        }
        _ => format!("{old}\n## {heading}\n\n{begin}\n{text}{end}\n"),
    };
    std::fs::write(path, new).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Peak resident set size (`VmHWM`, KiB) of a running process, 0 when unreadable.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn write_section_replaces_only_its_markers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("B.md");
        std::fs::write(
            &p,
            "# B\n\n## A\n\n<!-- a:begin -->\nold\n<!-- a:end -->\n\n## C\nc\n",
        )
        .unwrap();
        write_section(&p, "A", "<!-- a:begin -->", "<!-- a:end -->", "new\n");
        write_section(&p, "D", "<!-- d:begin -->", "<!-- d:end -->", "d\n");
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "# B\n\n## A\n\n<!-- a:begin -->\nnew\n<!-- a:end -->\n\n## C\nc\n\n## D\n\n<!-- d:begin -->\nd\n<!-- d:end -->\n"
        );
        assert!(peak_rss_kib(std::process::id()) > 0);
    }
}
