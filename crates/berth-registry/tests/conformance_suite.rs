//! The OCI distribution-spec conformance suite (`conformance` of opencontainers/
//! distribution-spec, built by `scripts/install-deps.sh` into `.tools/bin`) against `berth
//! serve` on a loopback socket: plain HTTP, and TLS (verified against the generated CA) with
//! htpasswd and bearer tokens. Every v1.1 API and data set is switched on: pull, push, blob
//! and manifest digest headers, upload cancel, anonymous mount, tags list and delete,
//! manifest and blob delete, referrers. The suite's `junit.xml` must list tests, and none of
//! them may fail, err or be skipped (the suite skips what a registry answers as unsupported,
//! such as a mount that falls back to an upload).
//!
//! A missing suite binary fails the test: run `scripts/install-deps.sh`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_registry::{AuthConfig, Config, TlsConfig};

fn suite() -> PathBuf {
    berth_testkit::tools::go_peer("conformance").unwrap_or_else(|| {
        panic!(
            "the OCI conformance suite (`conformance`) is not built: run scripts/install-deps.sh \
             (it builds the pinned Go peers into .tools/bin; BERTH_TOOLS_DIR overrides the directory)"
        )
    })
}

/// What `junit.xml` says.
#[derive(Debug, Default)]
struct Report {
    /// Test cases (leaves of the suite's tree).
    tests: usize,
    passed: usize,
    /// The suite's own counts of checks (`<testsuite tests= failures= errors= skipped=>`).
    checks: usize,
    failed_checks: usize,
    /// `name: status` of every test that did not pass.
    not_passed: Vec<String>,
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
fn parse_junit(xml: &str) -> Report {
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
        r.failed_checks = n("failures") + n("errors") + n("skipped");
    }
    let cases: Vec<&str> = xml.split("<testcase ").skip(1).collect();
    for case in cases {
        let open = &case[..case.find('>').unwrap_or(case.len())];
        let name = attr(&format!(" {open}"), "name").unwrap_or_default();
        let status = attr(&format!(" {open}"), "status").unwrap_or_default();
        let body = case.split("</testcase>").next().unwrap_or("");
        let failed_element = body.contains("<failure") || body.contains("<error");
        r.tests += 1;
        if status == "passed" && !failed_element {
            r.passed += 1;
        } else {
            r.not_passed.push(format!("{name}: {status}"));
        }
    }
    r
}

/// Runs the suite against `registry` (`host:port`) with `env` on top of the settings that
/// switch everything on; returns the report and the suite's output.
fn run(registry: &str, tls: &str, env: &[(&str, String)], work: &Path) -> (Report, String) {
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

fn check(what: &str, r: &Report, log: &str) {
    let summary = log
        .lines()
        .skip_while(|l| !l.starts_with("OCI Conformance Result"))
        .take(8)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        r.tests > 100,
        "{what}: the suite ran only {} tests:\n{log}",
        r.tests
    );
    assert!(
        r.not_passed.is_empty() && r.failed_checks == 0,
        "{what}: {} of {} conformance tests ({} of {} checks) did not pass:\n  {}\n{summary}",
        r.not_passed.len(),
        r.tests,
        r.failed_checks,
        r.checks,
        r.not_passed.join("\n  ")
    );
    eprintln!(
        "{what}: {} of {} conformance tests passed ({} checks)",
        r.passed, r.tests, r.checks
    );
}

#[test]
fn conformance_plain_http() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = support::start(
        Config {
            listen: "127.0.0.1:0".into(),
            data: tmp.path().join("data"),
            ..Default::default()
        },
        2,
    );
    let (r, log) = run(&reg.addr.to_string(), "disabled", &[], tmp.path());
    check("plain HTTP", &r, &log);
}

#[test]
fn conformance_tls_htpasswd_bearer() {
    let tmp = tempfile::tempdir().unwrap();
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(
        &htpasswd,
        format!("conformance:{}\n", bcrypt::hash("c0nf-pw", 5).unwrap()),
    )
    .unwrap();
    let reg = support::start(
        Config {
            listen: "127.0.0.1:0".into(),
            data: tmp.path().join("data"),
            tls: TlsConfig {
                self_signed: true,
                ..Default::default()
            },
            auth: AuthConfig {
                htpasswd: Some(htpasswd),
                ..Default::default()
            },
            ..Default::default()
        },
        2,
    );
    // The suite's client speaks HTTP/2 (no `Host` header) and follows the bearer challenge.
    let (r, log) = run(
        &reg.addr.to_string(),
        "enabled",
        &[
            (
                "SSL_CERT_FILE",
                reg.data.join("tls/ca.crt").display().to_string(),
            ),
            ("OCI_USERNAME", "conformance".into()),
            ("OCI_PASSWORD", "c0nf-pw".into()),
        ],
        tmp.path(),
    );
    check("TLS + htpasswd", &r, &log);
    assert!(
        !log.contains("c0nf-pw"),
        "the password is in the suite's output"
    );
}

#[test]
fn junit_parsing_counts_every_status() {
    let xml = r#"<testsuites><testsuite name="OCI Conformance Test" tests="9" failures="1" errors="0" skipped="2">
    <testcase name="a/ping" classname="" status="passed"><system-err>x</system-err></testcase>
    <testcase name="a/mount &#34;x&#34;" classname="" status="skipped"><skipped message="unsupported"></skipped></testcase>
    <testcase name="a/put" classname="" status="failure"><failure message="400"></failure></testcase>
    <testcase name="a/get" classname="" status="passed"><error message="odd"></error></testcase>
    </testsuite></testsuites>"#;
    let r = parse_junit(xml);
    assert_eq!((r.checks, r.failed_checks), (9, 3));
    assert_eq!(r.tests, 4);
    assert_eq!(r.passed, 1);
    assert_eq!(
        r.not_passed,
        vec![
            "a/mount \"x\": skipped".to_string(),
            "a/put: failure".into(),
            "a/get: passed".into()
        ]
    );
}
