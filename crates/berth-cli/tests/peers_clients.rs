//! The Go clients people mirror and attach artifacts with, against `berth serve` (TLS with its
//! generated CA + htpasswd) and Distribution 2.8, all on 127.0.0.1:
//!
//! - `crane copy` of a multi-arch OCI index and a Docker manifest list from a Distribution into
//!   `berth serve` and back out to another repository: the digests stay, the bytes berth serves
//!   are the ones crane pushed, every child manifest is there;
//! - `oras attach` of an artifact with a `subject`, then `oras discover`: through the referrers
//!   API against `berth serve` (no fallback tag written), through the `sha256-<hex>` fallback tag
//!   against Distribution 2.8, which has no referrers API.

use std::path::Path;
use std::process::Command;

use berth_testkit::berth_serve::{BerthServe, ServeOpts};
use berth_testkit::crane::Crane;
use berth_testkit::images::{self, FixtureRef};
use berth_testkit::oras::{Oras, Target};
use berth_testkit::{Distribution, require_tool, sha256_digest};
use serde_json::Value;

const USER: &str = "edge";
const PASS: &str = "Edge-Peers-Pw3";
const SBOM_TYPE: &str = "application/vnd.example.sbom.v1+json";

fn serve(dir: &Path) -> BerthServe {
    BerthServe::start(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        dir,
        ServeOpts {
            tls: true,
            user: Some((USER.into(), PASS.into())),
            extra: vec![],
            // See ServeOpts::explicit_realm: Go clients speak HTTP/2 and send no Host header.
            explicit_realm: true,
        },
    )
}

/// `GET path` of berth serve with curl (its CA, the user): (status, body).
fn get(serve: &BerthServe, path: &str) -> (u16, String) {
    let curl = require_tool("curl", "curl");
    let o = Command::new(curl)
        .args(["-sS", "-w", "\n%{http_code}", "--cacert"])
        .arg(serve.ca())
        .arg("-u")
        .arg(format!("{USER}:{PASS}"))
        .arg(format!("https://{}{path}", serve.host))
        .output()
        .unwrap();
    assert!(o.status.success(), "curl {path}: {o:?}");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

#[test]
fn crane_copies_a_multi_arch_index_into_berth_serve_and_back() {
    let work = tempfile::tempdir().unwrap();
    let src = Distribution::plain();
    let f = images::build_set(&work.path().join("set"));
    images::push_with_skopeo(&f, &src, "library");
    let serve = serve(&work.path().join("serve"));

    // Without credentials berth serve refuses the push.
    let anonymous = Crane::new().with_ca(&serve.ca());
    let multi = f.get("multi", "1");
    let o = anonymous.run(&[
        "copy",
        &format!("{}/library/multi:1", src.host()),
        &format!("{}/mirror/multi:1", serve.host),
    ]);
    assert!(!o.status.success(), "an anonymous push was accepted: {o:?}");

    let crane = Crane::new().with_ca(&serve.ca());
    crane.login(&serve.host, USER, PASS);
    let lists: Vec<&FixtureRef> = vec![multi, f.get("multi", "1-docker")];
    for r in &lists {
        assert!(r.kind.is_index() && r.manifests.len() >= 2, "{r:?}");
        let from = format!("{}/library/{}:{}", src.host(), r.name, r.tag);
        let mid = format!("{}/mirror/{}:{}", serve.host, r.name, r.tag);
        let back = format!("{}/back/{}:{}", src.host(), r.name, r.tag);
        crane.ok(&["copy", &from, &mid]);
        assert_eq!(crane.digest(&mid), r.digest, "{mid}");
        // The exact bytes crane read from the source are what berth serves.
        assert_eq!(crane.manifest(&mid), crane.manifest(&from), "{mid}");
        for m in &r.manifests {
            let child = format!("{}/mirror/{}@{}", serve.host, r.name, m.manifest.digest);
            assert_eq!(sha256_digest(&crane.manifest(&child)), m.manifest.digest);
            let cfg = crane.ok(&["config", &child]);
            assert_eq!(sha256_digest(cfg.as_bytes()), m.config.digest, "{child}");
        }
        // And back out to a repository of the Distribution.
        crane.ok(&["copy", &mid, &back]);
        assert_eq!(crane.digest(&back), r.digest, "{back}");
        assert_eq!(crane.manifest(&back), crane.manifest(&from), "{back}");
    }
    let tags = crane.ok(&["ls", &format!("{}/mirror/multi", serve.host)]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["1", "1-docker"]);
    // A layer of the arm64 image, pulled from berth serve, hashes to its digest.
    let layer = &multi.manifests[1].layers[0].digest;
    let o = crane.run(&["blob", &format!("{}/mirror/multi@{layer}", serve.host)]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(&sha256_digest(&o.stdout), layer);
}

/// Every object in `v` (at any depth) with this digest.
fn find_digest<'a>(v: &'a Value, digest: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if m.get("digest").and_then(Value::as_str) == Some(digest) {
                out.push(v);
            }
            m.values().for_each(|x| find_digest(x, digest, out));
        }
        Value::Array(a) => a.iter().for_each(|x| find_digest(x, digest, out)),
        _ => {}
    }
}

/// `oras attach` an SBOM to `subject`, then `oras discover` it: the artifact's digest.
fn attach_and_discover(oras: &Oras, t: &Target, subject: &str, discover_args: &[&str]) -> String {
    std::fs::write(
        oras.dir().join("sbom.json"),
        br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}"#,
    )
    .unwrap();
    let out = oras.ok(
        "attach",
        t,
        &[
            "--artifact-type",
            SBOM_TYPE,
            "--format",
            "json",
            subject,
            "sbom.json:application/vnd.cyclonedx+json",
        ],
    );
    let attached: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let digest = attached["digest"].as_str().unwrap().to_string();
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(discover_args);
    args.push(subject);
    let out = oras.ok("discover", t, &args);
    let found: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut hits = Vec::new();
    find_digest(&found, &digest, &mut hits);
    assert!(
        hits.iter()
            .any(|h| h["artifactType"].as_str() == Some(SBOM_TYPE)),
        "oras discover {subject} does not list {digest}: {found:#}"
    );
    digest
}

#[test]
fn oras_attach_and_discover_through_berth_serve_referrers_api() {
    let work = tempfile::tempdir().unwrap();
    let src = Distribution::plain();
    let f = images::build_set(&work.path().join("set"));
    images::push_with_skopeo(&f, &src, "library");
    let serve = serve(&work.path().join("serve"));
    let crane = Crane::new().with_ca(&serve.ca());
    crane.login(&serve.host, USER, PASS);
    let base = f.get("base", "1");
    let subject = format!("{}/library/base:1", serve.host);
    crane.ok(&["copy", &format!("{}/library/base:1", src.host()), &subject]);

    let oras = Oras::new();
    let t = Target::tls(&serve.ca(), USER, PASS);
    let artifact = attach_and_discover(
        &oras,
        &t,
        &subject,
        &["--distribution-spec", "v1.1-referrers-api"],
    );
    // The referrers API lists it, and oras wrote no fallback tag (berth serve answered the
    // manifest PUT with OCI-Subject).
    let (code, body) = get(
        &serve,
        &format!("/v2/library/base/referrers/{}", base.digest),
    );
    assert_eq!(code, 200, "{body}");
    let index: Value = serde_json::from_str(&body).unwrap();
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["artifactType"] == SBOM_TYPE)
        .filter_map(|d| d["digest"].as_str())
        .collect();
    assert_eq!(listed, [artifact.as_str()], "{body}");
    let tags = crane.ok(&["ls", &format!("{}/library/base", serve.host)]);
    assert!(
        !tags.lines().any(|t| t.starts_with("sha256-")),
        "a fallback tag beside the referrers API: {tags}"
    );
    // The artifact itself comes back byte for byte and names its subject.
    let m = crane.manifest(&format!("{}/library/base@{artifact}", serve.host));
    assert_eq!(sha256_digest(&m), artifact);
    let m: Value = serde_json::from_slice(&m).unwrap();
    assert_eq!(m["subject"]["digest"], base.digest.as_str());
}

#[test]
fn oras_attach_and_discover_through_the_fallback_tag_of_distribution() {
    let work = tempfile::tempdir().unwrap();
    let reg = Distribution::plain();
    let f = images::build_set(&work.path().join("set"));
    images::push_with_skopeo(&f, &reg, "library");
    let base = f.get("base", "1");
    let subject = format!("{}/library/base:1", reg.host());
    let oras = Oras::new();
    let artifact = attach_and_discover(&oras, &Target::plain(), &subject, &[]);
    // Distribution 2.8 has no referrers API: oras keeps the referrers in the tag schema's
    // index, `sha256-<hex of the subject>`, which lists the artifact.
    let tag = format!("sha256-{}", base.digest.trim_start_matches("sha256:"));
    let crane = Crane::new();
    let tags = crane.ok(&["ls", &format!("{}/library/base", reg.host())]);
    assert!(tags.lines().any(|t| t == tag), "{tags}");
    let index: Value =
        serde_json::from_slice(&crane.manifest(&format!("{}/library/base:{tag}", reg.host())))
            .unwrap();
    assert!(
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["digest"] == artifact.as_str() && d["artifactType"] == SBOM_TYPE),
        "{index:#}"
    );
}
