//! cosign v3 signatures, offline with a key pair, against `berth serve` (TLS + htpasswd) and
//! Distribution 2.8: the v3 bundle is an OCI artifact with a `subject` (berth's referrers API;
//! Distribution's `sha256-<hex>` fallback index), the classic format a `sha256-<hex>.sig` tag;
//! `cosign verify` accepts each with the signing key and refuses another key.

use std::path::Path;

use berth_testkit::berth_serve::{BerthServe, ServeOpts};
use berth_testkit::cosign::Cosign;
use berth_testkit::crane::Crane;
use berth_testkit::images;
use berth_testkit::{Distribution, require_tool};
use serde_json::Value;

const USER: &str = "edge";
const PASS: &str = "Edge-Cosign-Pw1";
const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

fn referrers(serve: &BerthServe, repo: &str, digest: &str) -> Value {
    let curl = require_tool("curl", "curl");
    let o = std::process::Command::new(curl)
        .args(["-sSf", "--cacert"])
        .arg(serve.ca())
        .arg("-u")
        .arg(format!("{USER}:{PASS}"))
        .arg(format!(
            "https://{}/v2/{repo}/referrers/{digest}",
            serve.host
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn cosign_signs_into_berth_serve_as_a_referrer_and_as_a_sig_tag() {
    let work = tempfile::tempdir().unwrap();
    let src = Distribution::plain();
    let f = images::build_set(&work.path().join("set"));
    images::push_with_skopeo(&f, &src, "library");
    let serve = BerthServe::start(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        &work.path().join("serve"),
        ServeOpts {
            tls: true,
            user: Some((USER.into(), PASS.into())),
            extra: vec![],
            // See ServeOpts::explicit_realm: Go clients speak HTTP/2 and send no Host header.
            explicit_realm: true,
        },
    );
    let crane = Crane::new().with_ca(&serve.ca());
    crane.login(&serve.host, USER, PASS);
    let base = f.get("base", "1");
    let repo = format!("{}/library/base", serve.host);
    crane.ok(&[
        "copy",
        &format!("{}/library/base:1", src.host()),
        &format!("{repo}:1"),
    ]);
    let signed = format!("{repo}@{}", base.digest);
    let cosign = Cosign::new()
        .with_ca(&serve.ca())
        .with_docker_config(&crane.docker_config());
    let stranger = Cosign::new();

    // v3 bundle: a referrer of the image, found through the referrers API, no fallback tag.
    cosign.sign(&signed, true);
    let index = referrers(&serve, "library/base", &base.digest);
    let bundles: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["artifactType"] == BUNDLE_TYPE)
        .collect();
    assert_eq!(bundles.len(), 1, "{index:#}");
    let tags = crane.ok(&["ls", &repo]);
    assert!(!tags.lines().any(|t| t.starts_with("sha256-")), "{tags}");
    let o = cosign.verify(&cosign.public_key(), &signed, true);
    assert!(o.status.success(), "{o:?}");
    let o = cosign.verify(&stranger.public_key(), &signed, true);
    assert!(!o.status.success(), "verified with another key: {o:?}");

    // Classic format: the signature image under the `sha256-<hex>.sig` tag.
    cosign.sign(&signed, false);
    let sig_tag = format!("sha256-{}.sig", base.digest.trim_start_matches("sha256:"));
    let tags = crane.ok(&["ls", &repo]);
    assert!(tags.lines().any(|t| t == sig_tag), "{tags}");
    let o = cosign.verify(&cosign.public_key(), &signed, false);
    assert!(o.status.success(), "{o:?}");
    let o = cosign.verify(&stranger.public_key(), &signed, false);
    assert!(!o.status.success(), "verified with another key: {o:?}");
}

#[test]
fn cosign_bundle_on_distribution_goes_to_the_fallback_tag() {
    let work = tempfile::tempdir().unwrap();
    let reg = Distribution::plain();
    let f = images::build_set(&work.path().join("set"));
    images::push_with_skopeo(&f, &reg, "library");
    let base = f.get("base", "2");
    let repo = format!("{}/library/base", reg.host());
    let signed = format!("{repo}@{}", base.digest);
    let cosign = Cosign::new();
    cosign.sign(&signed, true);
    // No referrers API in Distribution 2.8: the bundle is listed in the tag schema's index.
    let crane = Crane::new();
    let tag = format!("sha256-{}", base.digest.trim_start_matches("sha256:"));
    let index: Value = serde_json::from_slice(&crane.manifest(&format!("{repo}:{tag}"))).unwrap();
    assert!(
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["artifactType"] == BUNDLE_TYPE),
        "{index:#}"
    );
    let o = cosign.verify(&cosign.public_key(), &signed, true);
    assert!(o.status.success(), "{o:?}");
}
