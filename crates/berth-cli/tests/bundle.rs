//! `berth bundle` end to end: build from a profile against a plain Distribution, inspect,
//! verify, extract (skopeo reads the layout), push to a TLS + htpasswd Distribution through
//! the user data's rules (skopeo judges every digest), signatures, damage → exit 1.

use std::path::Path;
use std::process::{Command, Output};

use berth_testkit::images::{self, Fixture};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, sha256_digest};
use serde_json::Value;

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", "/nonexistent")
        .output()
        .expect("run berth")
}

fn ok(o: &Output) -> &Output {
    assert!(
        o.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&ok(o).stdout).unwrap()
}

fn write_profile(dir: &Path, src: &Distribution, f: &Fixture) -> String {
    let mut text = String::from(
        "name: bundle-cli\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n",
    );
    for r in &f.refs {
        text.push_str(&format!(
            "            - image: {}/library/{}:{}\n",
            src.host(),
            r.name,
            r.tag
        ));
    }
    let p = dir.join("profile.yaml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn write_user_data(dir: &Path, src: &Distribution, dst: &Distribution) -> String {
    let (user, pass) = dst.credentials().unwrap();
    let ca: String = dst
        .certs()
        .unwrap()
        .ca_pem
        .lines()
        .map(|l| format!("            {l}\n"))
        .collect();
    let text = format!(
        "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {}/edge\n        username: {user}\n        password: {pass}\n        certificates:\n          - |\n{ca}    registryMappingRules:\n      \"{}/library\": \"{}/edge/library\"\n",
        dst.host(),
        src.host(),
        dst.host()
    );
    let p = dir.join("user-data.yaml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn bundle_build_inspect_verify_extract_push_and_damage() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = Distribution::plain();
    let dst = Distribution::tls_htpasswd("edge", "edge-pass");
    let f = images::build_set(&w.join("images"));
    images::push_with_skopeo(&f, &src, "library");
    let profile = write_profile(w, &src, &f);
    let key = w.join("site");
    ok(&berth(&[
        "bundle",
        "keygen",
        "--out",
        key.to_str().unwrap(),
    ]));
    let (k, p) = (
        format!("{}.key", key.display()),
        format!("{}.pub", key.display()),
    );
    let b = w.join("b.tar.zst");
    let b = b.to_str().unwrap();
    let o = berth(&[
        "bundle",
        "build",
        "--profile",
        &profile,
        "-o",
        b,
        "--src-tls-verify=false",
        "--signing-key",
        &k,
        "--split-size",
        "1M",
        "--output",
        "json",
    ]);
    let built = json(&o);
    assert_eq!(
        built["manifest"]["images"].as_array().unwrap().len(),
        f.refs.len()
    );
    assert!(built["files"].as_array().unwrap().len() > 1);

    let inspected = json(&berth(&[
        "bundle",
        "inspect",
        &format!("{b}.part00"),
        "--output",
        "json",
    ]));
    assert_eq!(inspected["signed"], true);
    assert_eq!(inspected["created_from"][0], "bundle-cli");
    assert_eq!(inspected["images"], built["manifest"]["images"]);
    ok(&berth(&["bundle", "verify", b, "--public-key", &p]));

    let ex = w.join("layout");
    ok(&berth(&[
        "bundle",
        "extract",
        b,
        "--to",
        ex.to_str().unwrap(),
        "--public-key",
        &p,
    ]));
    let base = f.get("base", "1");
    let r = format!("{}/library/base:1", src.host());
    assert_eq!(
        skopeo::digest_of(&skopeo::oci_ref(&ex, &r), &SkopeoOpts::insecure()),
        base.digest
    );
    assert!(ex.join("profiles/profile.yaml").is_file());

    let ud = write_user_data(w, &src, &dst);
    let pushed = json(&berth(&[
        "bundle",
        "push",
        b,
        "--user-data",
        &ud,
        "--public-key",
        &p,
        "--output",
        "json",
    ]));
    assert!(
        pushed["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "copied"),
        "{pushed}"
    );
    assert!(pushed["blobs"]["copied"].as_u64().unwrap() > 0);
    let sk = SkopeoOpts::for_registry(&dst);
    for fr in &f.refs {
        let t = format!(
            "docker://{}/edge/library/{}:{}",
            dst.host(),
            fr.name,
            fr.tag
        );
        assert_eq!(
            sha256_digest(&skopeo::inspect_raw(&t, &sk)),
            fr.digest,
            "{t}"
        );
    }
    let again = json(&berth(&[
        "bundle",
        "push",
        b,
        "--user-data",
        &ud,
        "--output",
        "json",
    ]));
    assert!(
        again["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "present")
    );

    // Another key: refused with exit 1, nothing extracted.
    ok(&berth(&[
        "bundle",
        "keygen",
        "--out",
        w.join("other").to_str().unwrap(),
    ]));
    let other = format!("{}/other.pub", w.display());
    let o = berth(&[
        "bundle",
        "extract",
        b,
        "--to",
        w.join("no").to_str().unwrap(),
        "--public-key",
        &other,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not match the public key"));
    assert!(!w.join("no").exists());
    // A damaged part: verify exits 1.
    let part = format!("{b}.part01");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[1000] ^= 0x55;
    std::fs::write(&part, bytes).unwrap();
    let o = berth(&["bundle", "verify", b]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
