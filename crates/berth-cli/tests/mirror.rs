//! `berth mirror` and `berth verify` end to end: a plain Distribution as the source, a
//! Distribution with TLS (CA + leaf) and htpasswd as the external registry, images built from
//! real files, skopeo as the independent judge of digests.

mod common;
use std::path::Path;
use std::process::Output;

use berth_testkit::images::{self, Fixture};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, sha256_digest};
use common::{berth, indent};
use serde_json::Value;

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A profile that lists every fixture image of `src` under `library/`.
fn write_profile(dir: &Path, src: &Distribution, f: &Fixture) -> String {
    let mut text = String::from(
        "name: mirror-test\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n",
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

/// User data mapping the source's `library` to `edge/library` on the TLS registry, with its CA.
fn write_user_data(dir: &Path, src: &Distribution, dst: &Distribution, password: &str) -> String {
    let (user, _) = dst.credentials().unwrap();
    let ca = &dst.certs().unwrap().ca_pem;
    let text = format!(
        "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {}/edge\n        username: {user}\n        password: {password}\n        certificates:\n          - |\n{}    registryMappingRules:\n      \"{}/library\": \"{}/edge/library\"\n",
        dst.host(),
        indent(ca, 12),
        src.host(),
        dst.host()
    );
    let p = dir.join("user-data.yaml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A plain source registry holding the fixture images, a TLS + htpasswd destination, and a
/// profile listing the images.
struct Setup {
    work: tempfile::TempDir,
    src: Distribution,
    dst: Distribution,
    f: Fixture,
    profile: String,
}

fn setup(dst_password: &str, push: bool) -> Setup {
    let work = tempfile::tempdir().unwrap();
    let src = Distribution::plain();
    let dst = Distribution::tls_htpasswd("edge", dst_password);
    let f = images::build_set(&work.path().join("images"));
    if push {
        images::push_with_skopeo(&f, &src, "library");
    }
    let profile = write_profile(work.path(), &src, &f);
    Setup {
        work,
        src,
        dst,
        f,
        profile,
    }
}

#[test]
fn mirror_copies_every_image_byte_for_byte_then_verify_and_rerun() {
    let Setup {
        work,
        src,
        dst,
        f,
        profile,
    } = setup("edge-pass", true);
    let ud = write_user_data(work.path(), &src, &dst, "edge-pass");

    // verify before: everything missing, the fix command printed, exit 1
    let o = berth(&[
        "verify",
        "--profile",
        &profile,
        "--user-data",
        &ud,
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["images"].as_array().unwrap().len(), f.refs.len(), "{v}");
    for i in v["images"].as_array().unwrap() {
        assert_eq!(i["status"], "missing", "{i}");
    }
    assert!(
        stderr(&o).contains("berth mirror --profile"),
        "{}",
        stderr(&o)
    );

    // mirror
    let o = berth(&[
        "mirror",
        "--profile",
        &profile,
        "--user-data",
        &ud,
        "--src-tls-verify=false",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let imgs = v["images"].as_array().unwrap();
    assert_eq!(imgs.len(), f.refs.len());
    let dopts = SkopeoOpts::for_registry(&dst);
    for r in &f.refs {
        let target = format!("{}/edge/library/{}:{}", dst.host(), r.name, r.tag);
        let row = imgs
            .iter()
            .find(|i| i["target"] == target)
            .unwrap_or_else(|| panic!("{target}"));
        assert_eq!(row["status"], "copied", "{row}");
        assert_eq!(row["digest"], r.digest, "{row}");
        // skopeo, independently: the manifest bytes at the target hash to the source digest
        let raw = skopeo::inspect_raw(&format!("docker://{target}"), &dopts);
        assert_eq!(sha256_digest(&raw), r.digest, "{target}");
    }
    // every child of the OCI index is there, by digest
    let multi = f.get("multi", "1");
    for m in &multi.manifests {
        let raw = skopeo::inspect_raw(
            &format!(
                "docker://{}/edge/library/multi@{}",
                dst.host(),
                m.manifest.digest
            ),
            &dopts,
        );
        assert_eq!(sha256_digest(&raw), m.manifest.digest);
    }
    // shared layers moved once: copied blobs == distinct blobs in the set
    let mut distinct: Vec<String> = f.refs.iter().flat_map(|r| r.blobs()).collect();
    distinct.sort();
    distinct.dedup();
    let copied = v["blobs"]["copied"].as_u64().unwrap() + v["blobs"]["mounted"].as_u64().unwrap();
    assert!(
        copied <= 2 * distinct.len() as u64
            && v["blobs"]["copied"].as_u64().unwrap() <= distinct.len() as u64,
        "blobs {} for {} distinct",
        v["blobs"],
        distinct.len()
    );
    assert!(v["bytes"].as_u64().unwrap() > 0);
    for key in ["images", "blobs", "bytes", "seconds"] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }

    // verify after: all present, deep too
    let o = berth(&[
        "verify",
        "--profile",
        &profile,
        "--user-data",
        &ud,
        "--deep",
        "--src-tls-verify=false",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["images"].as_array().unwrap().len(), f.refs.len(), "{v}");
    for i in v["images"].as_array().unwrap() {
        assert_eq!(i["status"], "present", "{i}");
    }

    // rerun: nothing moves
    let o = berth(&[
        "mirror",
        "--profile",
        &profile,
        "--user-data",
        &ud,
        "--src-tls-verify=false",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["bytes"], 0, "{v}");
    assert_eq!(v["images"].as_array().unwrap().len(), f.refs.len(), "{v}");
    for i in v["images"].as_array().unwrap() {
        assert_eq!(i["status"], "present", "{i}");
    }
    assert!(stderr(&o).contains("already present"), "{}", stderr(&o));
}

#[test]
fn wrong_password_names_the_registry_and_hides_the_password() {
    let Setup {
        work,
        src,
        dst,
        profile,
        ..
    } = setup("right-pass", true);
    let ud = write_user_data(work.path(), &src, &dst, "wrong-pass-xyz");
    let o = berth(&[
        "mirror",
        "--profile",
        &profile,
        "--user-data",
        &ud,
        "--src-tls-verify=false",
        "--keep-going",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(all.contains(&dst.host()), "{all}");
    assert!(!all.contains("wrong-pass-xyz"), "{all}");
    let o = berth(&[
        "mirror",
        "--profile",
        &profile,
        "--user-data",
        &ud,
        "--src-tls-verify=false",
        "--output",
        "json",
    ]);
    let v = json(&o);
    assert!(!v.to_string().contains("wrong-pass-xyz"));
    assert!(
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["status"] == "failed")
    );
}

#[test]
fn untrusted_certificate_is_refused_unless_insecure() {
    let Setup {
        work,
        src,
        dst,
        f,
        profile,
    } = setup("pw", true);
    // prepend form: no certificates field, so the private CA is unknown
    let ud = work.path().join("ud.yaml");
    let write = |insecure: bool| {
        std::fs::write(
            &ud,
            format!(
                "#cloud-config\nstylus:\n  registryCredentials:\n    domain: {}/spectro-images\n    username: edge\n    password: pw\n    insecure: {insecure}\n",
                dst.host()
            ),
        )
        .unwrap()
    };
    write(false);
    let u = ud.display().to_string();
    let o = berth(&[
        "mirror",
        "--profile",
        &profile,
        "--user-data",
        &u,
        "--src-tls-verify=false",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        json(&o)["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "failed")
    );
    write(true);
    let o = berth(&[
        "mirror",
        "--profile",
        &profile,
        "--user-data",
        &u,
        "--src-tls-verify=false",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // the source's host:port became host_port under the prefix
    let base = f.get("base", "1");
    let target = format!(
        "{}/spectro-images/{}/library/base:1",
        dst.host(),
        src.host().replace(':', "_")
    );
    let raw = skopeo::inspect_raw(
        &format!("docker://{target}"),
        &SkopeoOpts::for_registry(&dst),
    );
    assert_eq!(sha256_digest(&raw), base.digest);
}

#[test]
fn dry_run_copies_nothing() {
    let Setup {
        work,
        src,
        dst,
        f,
        profile,
    } = setup("pw", false);
    let ud = write_user_data(work.path(), &src, &dst, "pw");
    let o = berth(&[
        "mirror",
        "--profile",
        &profile,
        "--user-data",
        &ud,
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["images"].as_array().unwrap().len(), f.refs.len());
    assert_eq!(
        std::fs::read_dir(dst.data_dir())
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "nothing written"
    );
}

/// The edge registry as the destination, in the new spelling (`--edge-registry`,
/// `--edge-ca FILE`, `--edge-creds`) and the old one (`--local-registry`, `--project`,
/// `--dest-cert-dir DIR`, `--dest-creds`, `--dest-tls-verify=false`): the same targets, the
/// CA and credentials used, and without them the registry refused.
#[test]
fn mirror_and_verify_to_the_edge_registry_in_either_spelling() {
    let Setup {
        work: _work,
        src,
        dst: edge,
        f,
        profile,
    } = setup("edge-pass", true);
    let certs = edge.certs().unwrap();
    let (ca, cert_dir) = (
        certs.ca_path.to_str().unwrap(),
        certs.cert_dir.to_str().unwrap(),
    );
    let host = edge.host();
    let run = |cmd: &str, flags: &[&str]| {
        let mut args = vec![cmd, "--profile", &profile, "--src-tls-verify=false"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--output", "json"]);
        berth(&args)
    };
    let new = [
        "--edge-registry",
        &host,
        "--edge-project",
        "edge",
        "--edge-ca",
        ca,
        "--edge-creds",
        "edge:edge-pass",
    ];
    let o = run("mirror", &new);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["images"].as_array().unwrap().len(), f.refs.len(), "{v}");
    let dopts = SkopeoOpts::for_registry(&edge);
    let encoded = src.host().replace(':', "_");
    for r in &f.refs {
        let target = format!("{host}/edge/{encoded}/library/{}:{}", r.name, r.tag);
        let raw = skopeo::inspect_raw(&format!("docker://{target}"), &dopts);
        assert_eq!(sha256_digest(&raw), r.digest, "{target}");
    }

    let old = [
        "--local-registry",
        &host,
        "--project",
        "edge",
        "--dest-cert-dir",
        cert_dir,
        "--dest-creds",
        "edge:edge-pass",
    ];
    let o = run("verify", &old);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), f.refs.len(), "{v}");
    assert!(images.iter().all(|i| i["status"] == "present"), "{v}");
    let o = run("mirror", &old);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        json(&o)["bytes"],
        0,
        "the same targets: nothing left to copy"
    );

    // Without the CA the certificate is refused; not verifying it, in either spelling, works.
    let bare = [
        "--edge-registry",
        &host,
        "--edge-project",
        "edge",
        "--edge-creds",
        "edge:edge-pass",
    ];
    let o = run("verify", &bare);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    for skip in ["--edge-insecure", "--dest-tls-verify=false"] {
        let mut flags = bare.to_vec();
        flags.push(skip);
        let o = run("verify", &flags);
        assert_eq!(o.status.code(), Some(0), "{skip}: {}", stderr(&o));
    }
    // Without credentials the registry says no.
    let o = run("verify", &new[..6]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Edge settings without an edge registry are a usage error.
    let o = run(
        "verify",
        &["--edge-insecure", "--user-data", "/nonexistent"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--edge-registry"), "{}", stderr(&o));
}
