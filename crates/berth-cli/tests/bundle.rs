//! `berth bundle` end to end: build from a profile against a plain Distribution, inspect,
//! verify, extract (skopeo reads the layout), push to a TLS + htpasswd Distribution through
//! the user data's rules (skopeo judges every digest), signatures, damage → exit 1; serve
//! over HTTPS (curl and skopeo verify its certificate against a testkit CA).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use berth_testkit::images::{self, Fixture};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, sha256_digest};
use common::berth;
use serde_json::Value;

/// `berth bundle build --profile PROFILE --out OUT` from the plain source, plus `extra`.
fn build(profile: &str, out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "bundle",
        "build",
        "--profile",
        profile,
        "--out",
        out,
        "--src-tls-verify=false",
    ];
    args.extend_from_slice(extra);
    berth(&args)
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
    let o = build(
        &profile,
        b,
        &[
            "--signing-key",
            &k,
            "--split-size",
            "1M",
            "--output",
            "json",
        ],
    );
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

#[test]
fn bundle_serve_over_tls_answers_skopeo_and_curl_that_trust_its_ca() {
    use std::io::{BufRead, BufReader};
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = Distribution::plain();
    let f = images::build_set(&w.join("images"));
    images::push_with_skopeo(&f, &src, "library");
    let profile = write_profile(w, &src, &f);
    let b = w.join("b.tar.zst");
    let b = b.to_str().unwrap();
    ok(&build(&profile, b, &[]));
    let certs = berth_testkit::Certs::generate(&[]);
    let tmp = w.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let home = common::Home::new();
    let mut child = common::command(home.path())
        .args(["bundle", "serve", b, "--listen", &addr, "--tmp-dir"])
        .arg(&tmp)
        .arg("--tls-cert")
        .arg(&certs.cert_path)
        .arg("--tls-key")
        .arg(&certs.key_path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run berth bundle serve");
    // "serving SOURCE as ADDR/REPOSITORY" lines, then the URL line once it listens.
    let mut served = Vec::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("serving ") {
            let (source, at) = rest.split_once(" as ").unwrap();
            served.push((source.to_string(), at.to_string()));
        }
        if line.starts_with("berth bundle serve:") {
            assert!(line.contains(&format!("https://{addr}/v2/")), "{line}");
            break;
        }
    }
    assert_eq!(served.len(), f.refs.len(), "{served:?}");
    std::thread::spawn(move || for _ in lines {});

    // curl: trusts the CA → 200; trusts nothing → refuses the certificate (exit 60).
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(extra)
            .arg(format!("https://{addr}/v2/"))
            .output()
            .expect("run curl")
    };
    let o = curl(&["--cacert", certs.ca_path.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "200", "{o:?}");
    let o = curl(&[]);
    assert_eq!(o.status.code(), Some(60), "{o:?}");

    // skopeo, verifying TLS against the CA: every image at its digest, a config blob.
    let sk = SkopeoOpts {
        tls_verify: true,
        cert_dir: Some(certs.cert_dir.clone()),
        creds: None,
    };
    for r in &f.refs {
        let source = format!("{}/library/{}:{}", src.host(), r.name, r.tag);
        let at = &served.iter().find(|(s, _)| *s == source).unwrap().1;
        assert_eq!(
            skopeo::digest_of(&format!("docker://{at}:{}", r.tag), &sk),
            r.digest,
            "{at}"
        );
    }
    let base = f.get("base", "1");
    let source = format!("{}/library/{}:{}", src.host(), base.name, base.tag);
    let at = &served.iter().find(|(s, _)| *s == source).unwrap().1;
    let config = skopeo::inspect_config_raw(&format!("docker://{at}:{}", base.tag), &sk);
    assert!(!config.is_empty());

    // SIGTERM (to this one process) stops it and removes the extracted copy.
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}
