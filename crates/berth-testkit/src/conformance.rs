//! The OCI distribution-spec conformance suite (`conformance` of opencontainers/
//! distribution-spec, a Go peer built by `scripts/install-deps.sh`): run against a registry
//! with every v1.1 API and data set switched on (callers turn some off, e.g. for a read-only
//! registry), its `junit.xml` read back.
//!
//! A missing suite binary is a hard failure naming `scripts/install-deps.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The suite's binary ([`crate::require_go_peer`]: a panic telling how to build it when it
/// is missing).
pub fn suite() -> PathBuf {
    crate::require_go_peer("conformance")
}

/// What `junit.xml` says.
#[derive(Debug, Default)]
pub struct Report {
    /// Test cases (leaves of the suite's tree).
    pub tests: usize,
    pub passed: usize,
    /// The suite's own counts of checks (`<testsuite tests= failures= errors= skipped=
    /// disabled=>`): failed or erred, skipped as unsupported, switched off.
    pub checks: usize,
    pub failed_checks: usize,
    pub skipped_checks: usize,
    pub disabled_checks: usize,
    /// `name: status` of every test that failed or erred.
    pub failed: Vec<String>,
    /// Names of the tests skipped (a test case does not tell a switched-off one from one
    /// the suite found unsupported: the counts above do).
    pub skipped: Vec<String>,
}

fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#xA;", "\n")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

/// Every `<testcase>` of the suite's JUnit report: its name and status (`passed`, `skipped`,
/// `failure`, `error`, `disabled`); a `<failure>` or `<error>` element counts too.
pub fn parse_junit(xml: &str) -> Report {
    let mut r = Report::default();
    if let Some(i) = xml.find("<testsuite ") {
        let open = &xml[i + 10..];
        let open = &open[..open.find('>').unwrap_or(open.len())];
        let n = |a: &str| {
            attr(open, a)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        };
        r.checks = n("tests");
        r.failed_checks = n("failures") + n("errors");
        r.skipped_checks = n("skipped");
        r.disabled_checks = n("disabled");
    }
    let cases: Vec<&str> = xml.split("<testcase ").skip(1).collect();
    for case in cases {
        let open = &case[..case.find('>').unwrap_or(case.len())];
        let name = attr(&format!(" {open}"), "name").unwrap_or_default();
        let status = attr(&format!(" {open}"), "status").unwrap_or_default();
        let body = case.split("</testcase>").next().unwrap_or("");
        let failed_element = body.contains("<failure") || body.contains("<error");
        r.tests += 1;
        match status.as_str() {
            "passed" if !failed_element => r.passed += 1,
            "skipped" if !failed_element => r.skipped.push(name),
            _ => r.failed.push(format!("{name}: {status}")),
        }
    }
    r
}

/// Runs the suite against `registry` (`host:port`) with `env` on top of the settings that
/// switch everything on; returns the report and the suite's output.
pub fn run(registry: &str, tls: &str, env: &[(&str, String)], work: &Path) -> (Report, String) {
    let results = work.join("results");
    let mut cmd = Command::new(suite());
    // Only what the suite is told: no caller CA, proxy or OCI_* setting leaks in, and no
    // `oci-conformance.yaml` of another directory is read.
    cmd.env_clear()
        .current_dir(work)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", work)
        .env("OCI_REGISTRY", registry)
        .env("OCI_TLS", tls)
        .env("OCI_VERSION", "1.1")
        .env("OCI_RESULTS_DIR", &results)
        .env("OCI_REPO1", "conformance/repo1")
        .env("OCI_REPO2", "conformance/repo2")
        .env("OCI_LOG", "warn");
    for k in [
        "OCI_API_PING",
        "OCI_API_PULL",
        "OCI_API_PUSH",
        "OCI_API_BLOBS_ATOMIC",
        "OCI_API_BLOBS_DELETE",
        "OCI_API_BLOBS_DIGEST_HEADER",
        "OCI_API_BLOBS_MOUNT_ANONYMOUS",
        "OCI_API_BLOBS_UPLOAD_CANCEL",
        "OCI_API_MANIFESTS_ATOMIC",
        "OCI_API_MANIFESTS_DELETE",
        "OCI_API_MANIFESTS_DIGEST_HEADER",
        "OCI_API_TAGS_ATOMIC",
        "OCI_API_TAGS_DELETE",
        "OCI_API_TAGS_LIST",
        "OCI_API_REFERRER",
    ] {
        cmd.env(k, "true");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the conformance suite");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The suite exits 0 without writing a report when its settings are wrong: a report
    // with tests in it is what counts.
    let xml = std::fs::read_to_string(results.join("junit.xml")).unwrap_or_else(|e| {
        panic!("the conformance suite wrote no junit.xml ({e}); its output:\n{log}")
    });
    (parse_junit(&xml), log)
}

/// Panics unless the suite ran at least `min_tests` tests, none failed or erred, and every
/// skipped one was switched off by the settings (none was found unsupported), listing those
/// that did not pass.
pub fn assert_all_passed(what: &str, min_tests: usize, r: &Report, log: &str) {
    let summary = log
        .lines()
        .skip_while(|l| !l.starts_with("OCI Conformance Result"))
        .take(8)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        r.tests >= min_tests.max(1),
        "{what}: the suite ran only {} tests:\n{log}",
        r.tests
    );
    assert!(
        r.failed.is_empty() && r.failed_checks == 0,
        "{what}: {} of {} conformance tests ({} of {} checks) failed:\n  {}\n{summary}",
        r.failed.len(),
        r.tests,
        r.failed_checks,
        r.checks,
        r.failed.join("\n  ")
    );
    assert!(
        r.skipped_checks == 0,
        "{what}: the suite skipped {} checks as unsupported; skipped tests:\n  {}\n{summary}",
        r.skipped_checks,
        r.skipped.join("\n  ")
    );
    eprintln!(
        "{what}: {} of {} conformance tests passed, {} switched off ({} checks)",
        r.passed,
        r.tests,
        r.skipped.len(),
        r.checks
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_parsing_counts_every_status() {
        let xml = r#"<testsuites><testsuite name="OCI Conformance Test" tests="9" failures="1" errors="0" skipped="2" disabled="1">
        <testcase name="a/ping" classname="" status="passed"><system-err>x</system-err></testcase>
        <testcase name="a/mount &#34;x&#34;" classname="" status="skipped"><skipped message="unsupported"></skipped></testcase>
        <testcase name="a/put" classname="" status="failure"><failure message="400"></failure></testcase>
        <testcase name="a/get" classname="" status="passed"><error message="odd"></error></testcase>
        </testsuite></testsuites>"#;
        let r = parse_junit(xml);
        assert_eq!(
            (
                r.checks,
                r.failed_checks,
                r.skipped_checks,
                r.disabled_checks
            ),
            (9, 1, 2, 1)
        );
        assert_eq!(r.tests, 4);
        assert_eq!(r.passed, 1);
        assert_eq!(r.skipped, vec!["a/mount \"x\"".to_string()]);
        assert_eq!(
            r.failed,
            vec!["a/put: failure".to_string(), "a/get: passed".into()]
        );
        let e = std::panic::catch_unwind(|| assert_all_passed("x", 1, &r, "")).unwrap_err();
        assert!(
            e.downcast_ref::<String>()
                .unwrap()
                .contains("a/put: failure")
        );
        let ok = parse_junit(
            r#"<testsuite tests="2" failures="0" errors="0" disabled="1">
            <testcase name="a" status="passed"></testcase><testcase name="b" status="skipped"></testcase>"#,
        );
        assert_all_passed("switched off", 2, &ok, "");
        let unsupported = parse_junit(
            r#"<testsuite tests="2" failures="0" errors="0" skipped="1">
            <testcase name="a" status="passed"></testcase><testcase name="b" status="skipped"></testcase>"#,
        );
        assert!(std::panic::catch_unwind(|| assert_all_passed("y", 1, &unsupported, "")).is_err());
    }
}
