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

use berth_registry::{AuthConfig, Config, TlsConfig};
use berth_testkit::conformance::{assert_all_passed, run};

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
    assert_all_passed("plain HTTP", 600, &r, &log);
    assert_eq!(r.skipped, Vec::<String>::new(), "every API is switched on");
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
    assert_all_passed("TLS + htpasswd", 600, &r, &log);
    assert_eq!(r.skipped, Vec::<String>::new(), "every API is switched on");
    assert!(
        !log.contains("c0nf-pw"),
        "the password is in the suite's output"
    );
}
