//! `berth copy` across every transport, judged by skopeo.

mod common;
use std::process::Output;

use berth_testkit::images;
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, sha256_digest};
use common::berth;
use serde_json::Value;

fn ok(o: Output) -> Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("json")
}

#[test]
fn copy_through_every_transport_keeps_digests() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = Distribution::plain();
    let dst = Distribution::tls_htpasswd("u", "p4ss");
    let f = images::build_set(&w.join("images"));
    images::push_with_skopeo(&f, &src, "library");
    let multi = f.get("multi", "1");
    let base = f.get("base", "1");
    let insecure = SkopeoOpts::insecure();
    let layout = w.join("layout");
    let layout_s = layout.display().to_string();
    let certs = dst.certs().unwrap().cert_dir.display().to_string();

    // registry → OCI layout (the index with both platforms)
    let v = ok(berth(&[
        "copy",
        &format!("docker://{}/library/multi:1", src.host()),
        &format!("oci:{layout_s}:multi"),
        "--src-tls-verify=false",
        "--output",
        "json",
    ]));
    assert_eq!(v["images"][0]["digest"], multi.digest);
    let raw = skopeo::inspect_raw(&format!("oci:{layout_s}:multi"), &insecure);
    assert_eq!(sha256_digest(&raw), multi.digest);

    // OCI layout → oci-archive
    let archive = w.join("multi.tar").display().to_string();
    ok(berth(&[
        "copy",
        &format!("oci:{layout_s}:multi"),
        &format!("oci-archive:{archive}:multi"),
        "--output",
        "json",
    ]));
    let raw = skopeo::inspect_raw(&format!("oci-archive:{archive}:multi"), &insecure);
    assert_eq!(sha256_digest(&raw), multi.digest);

    // oci-archive → TLS + htpasswd registry
    let v = ok(berth(&[
        "copy",
        &format!("oci-archive:{archive}:multi"),
        &format!("docker://{}/edge/multi:1", dst.host()),
        "--dest-cert-dir",
        &certs,
        "--dest-creds",
        "u:p4ss",
        "--output",
        "json",
    ]));
    assert_eq!(v["images"][0]["status"], "copied");
    let raw = skopeo::inspect_raw(
        &format!("docker://{}/edge/multi:1", dst.host()),
        &SkopeoOpts::for_registry(&dst),
    );
    assert_eq!(sha256_digest(&raw), multi.digest);

    // registry → docker-archive → registry: skopeo reads the archive; the layers keep their digests
    let darchive = w.join("base-docker.tar").display().to_string();
    ok(berth(&[
        "copy",
        &format!("docker://{}/library/base:1", src.host()),
        &format!("docker-archive:{darchive}:base:1"),
        "--src-tls-verify=false",
        "--output",
        "json",
    ]));
    let cfg = skopeo::inspect_config_raw(&format!("docker-archive:{darchive}"), &insecure);
    assert_eq!(sha256_digest(&cfg), base.manifests[0].config.digest);
    ok(berth(&[
        "copy",
        &format!("docker-archive:{darchive}"),
        &format!("docker://{}/edge/base:1", dst.host()),
        "--dest-cert-dir",
        &certs,
        "--dest-creds",
        "u:p4ss",
        "--output",
        "json",
    ]));
    let raw = skopeo::inspect_raw(
        &format!("docker://{}/edge/base:1", dst.host()),
        &SkopeoOpts::for_registry(&dst),
    );
    let m: Value = serde_json::from_slice(&raw).unwrap();
    let layers: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = base.manifests[0]
        .layers
        .iter()
        .map(|l| l.digest.as_str())
        .collect();
    assert_eq!(layers, want);
}

#[test]
fn bad_transports_and_missing_files_are_usage_errors() {
    let o = berth(&["copy", "ftp://x/y", "oci:/tmp/x"]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("ftp://x/y") && e.contains("docker://"), "{e}");
    let o = berth(&["copy", "oci-archive:/nonexistent/a.tar", "oci:/tmp/x"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/a.tar"));
}
