//! Attached artifacts travel with their image. An SBOM made from this test's own files is
//! attached with oras, signed with cosign (the classic `.sig` tag and the v3 bundle, a
//! referrer), and the SBOM itself signed, on Distribution 2.8 (no referrers API: the
//! `sha256-<hex>` fallback index); `berth mirror` copies all of it to `berth serve`
//! (referrers API) and `berth copy` back to another Distribution whose fallback index already
//! lists a foreign artifact. Counted, digest-checked at every step; skopeo still reads the
//! image; `cosign verify` passes at each target; `berth verify` tells a target without them.

mod common;
use std::path::{Path, PathBuf};
use std::process::Output;

use berth_testkit::berth_serve::{BerthServe, ServeOpts};
use berth_testkit::cosign::Cosign;
use berth_testkit::crane::Crane;
use berth_testkit::images;
use berth_testkit::oras::{Oras, Target};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, require_tool, sha256_digest};
use common::{berth, indent};
use serde_json::Value;

const USER: &str = "edge";
const PASS: &str = "Edge-Referrers-Pw1";
const SBOM_TYPE: &str = "application/spdx+json";
const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const FOREIGN_TYPE: &str = "application/vnd.example.foreign+json";

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// `GET https://HOST/v2/REPO/referrers/DIGEST[?artifactType=T]` at `berth serve`: the
/// response headers (lower-cased) and the index.
fn serve_referrers(serve: &BerthServe, repo: &str, digest: &str, filter: &str) -> (String, Value) {
    let curl = require_tool("curl", "curl");
    let query = match filter {
        "" => String::new(),
        // `+` in a query string is a space: encoded.
        t => format!("?artifactType={}", t.replace('+', "%2B")),
    };
    let o = std::process::Command::new(curl)
        .args(["-sS", "-f", "-D", "-", "--cacert"])
        .arg(serve.ca())
        .arg("-u")
        .arg(format!("{USER}:{PASS}"))
        .arg(format!(
            "https://{}/v2/{repo}/referrers/{digest}{query}",
            serve.host
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8(o.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("headers and body");
    (head.to_lowercase(), serde_json::from_str(body).unwrap())
}

/// The digests an index lists with `artifactType` `t` (any type when `t` is empty).
fn listed(index: &Value, t: &str) -> Vec<String> {
    let mut v: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| t.is_empty() || d["artifactType"] == t)
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// An SPDX document of this test's own source files, with their SHA-256 sums.
fn sbom_of_own_files(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<Value> = ["tests/referrers.rs", "Cargo.toml", "tests/common/mod.rs"]
        .iter()
        .map(|f| {
            let bytes = std::fs::read(root.join(f)).unwrap();
            serde_json::json!({
                "fileName": format!("./{f}"),
                "checksums": [{ "algorithm": "SHA256", "checksumValue": hex(&sha256_digest(&bytes)) }],
            })
        })
        .collect();
    let doc = serde_json::json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "berth-referrers-test",
        "files": files,
    });
    let p = dir.join("sbom.spdx.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    p
}

/// `oras attach` of `file` with `artifact_type` to `reference`: the artifact's digest.
fn attach(
    oras: &Oras,
    target: &Target,
    reference: &str,
    file: &Path,
    artifact_type: &str,
) -> String {
    let name = file.file_name().unwrap().to_str().unwrap();
    std::fs::copy(file, oras.dir().join(name)).unwrap();
    let out = oras.ok(
        "attach",
        target,
        &[
            "--artifact-type",
            artifact_type,
            "--format",
            "json",
            reference,
            &format!("{name}:{artifact_type}"),
        ],
    );
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["digest"].as_str().unwrap().to_string()
}

/// User data mapping `src`'s `library` to `edge/library` at `berth serve`.
fn user_data(dir: &Path, src: &Distribution, serve: &BerthServe) -> String {
    let ca = std::fs::read_to_string(serve.ca()).unwrap();
    let text = format!(
        "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {h}/edge\n        username: {USER}\n        password: {PASS}\n        certificates:\n          - |\n{}    registryMappingRules:\n      \"{}/library\": \"{h}/edge/library\"\n",
        indent(&ca, 12),
        src.host(),
        h = serve.host,
    );
    let p = dir.join("user-data.yaml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn signatures_sboms_and_referrers_travel_distribution_to_serve_and_back() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // The source: Distribution 2.8, no referrers API.
    let src = Distribution::plain();
    let f = images::build_set(&w.join("set"));
    images::push_with_skopeo(&f, &src, "library");
    let base = f.get("base", "1");
    let src_repo = format!("{}/library/base", src.host());
    let subject = format!("{src_repo}@{}", base.digest);

    // An SBOM attached with oras; the image signed both ways, the SBOM signed too.
    let signer = Cosign::new();
    signer.sign(&subject, false);
    signer.sign(&subject, true);
    let oras = Oras::new();
    let sbom_file = sbom_of_own_files(w);
    let sbom = attach(&oras, &Target::plain(), &subject, &sbom_file, SBOM_TYPE);
    signer.sign(&format!("{src_repo}@{sbom}"), false);
    let plain = SkopeoOpts::insecure();
    let fallback = format!("docker://{src_repo}:sha256-{}", hex(&base.digest));
    let src_index: Value = serde_json::from_slice(&skopeo::inspect_raw(&fallback, &plain)).unwrap();
    assert_eq!(
        listed(&src_index, SBOM_TYPE),
        vec![sbom.clone()],
        "{src_index:#}"
    );
    let bundle = listed(&src_index, BUNDLE_TYPE);
    assert_eq!(bundle.len(), 1, "{src_index:#}");
    let bundle = bundle[0].clone();
    let sig_tag = format!("sha256-{}.sig", hex(&base.digest));
    let sbom_sig_tag = format!("sha256-{}.sig", hex(&sbom));
    let at_src = |tag: &str| skopeo::digest_of(&format!("docker://{src_repo}:{tag}"), &plain);
    let (sig, sbom_sig) = (at_src(&sig_tag), at_src(&sbom_sig_tag));

    // The edge registry: berth serve, with the referrers API.
    let serve = BerthServe::start(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        &w.join("serve"),
        ServeOpts {
            tls: true,
            user: Some((USER.into(), PASS.into())),
            extra: vec![],
            explicit_realm: true,
        },
    );
    let profile = w.join("profile.yaml");
    std::fs::write(
        &profile,
        format!(
            "name: signed\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n            - image: {src_repo}:1\n"
        ),
    )
    .unwrap();
    let profile = profile.display().to_string();
    let ud = user_data(w, &src, &serve);
    let plan = [
        "--profile",
        &profile,
        "--user-data",
        &ud,
        "--src-tls-verify=false",
    ];
    let run = |cmd: &str, extra: &[&str]| {
        let mut args = vec![cmd];
        args.extend(plan);
        args.extend(extra);
        args.extend(["--output", "json"]);
        berth(&args)
    };

    // Without artifacts: the image only, and verify names what the target lacks.
    let o = run("mirror", &["--referrers=false"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(json(&o)["images"][0]["attached"], 0, "{}", json(&o));
    let o = run("verify", &[]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let v = json(&o);
    assert_eq!(v["images"][0]["status"], "incomplete", "{v:#}");
    let missing = v["images"][0]["missing"].to_string();
    for d in [&sbom, &bundle] {
        assert!(missing.contains(d.as_str()), "{d} not named: {missing}");
    }
    assert!(missing.contains(&sig_tag), "{missing}");

    // With them: 4 artifacts (SBOM, bundle, the image's .sig, the SBOM's .sig).
    let o = run("mirror", &[]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(json(&o)["images"][0]["attached"], 4, "{}", json(&o));
    let o = run("verify", &[]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(json(&o)["images"][0]["status"], "present");
    // A rerun finds them there.
    let o = run("mirror", &[]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(json(&o)["images"][0]["status"], "present");
    assert_eq!(json(&o)["images"][0]["attached"], 4);

    // At berth serve: the referrers API lists both, filters by artifactType, says so.
    let edge_repo = format!("{}/edge/library/base", serve.host);
    let (head, all) = serve_referrers(&serve, "edge/library/base", &base.digest, "");
    let mut want = vec![sbom.clone(), bundle.clone()];
    want.sort();
    assert_eq!(listed(&all, ""), want, "{all:#}");
    assert!(!head.contains("oci-filters-applied"), "{head}");
    let (head, only) = serve_referrers(&serve, "edge/library/base", &base.digest, SBOM_TYPE);
    assert_eq!(listed(&only, ""), vec![sbom.clone()], "{only:#}");
    assert!(head.contains("oci-filters-applied: artifacttype"), "{head}");
    let (_, of_sbom) = serve_referrers(&serve, "edge/library/base", &sbom, "");
    assert!(listed(&of_sbom, "").is_empty(), "{of_sbom:#}");
    // Digests equal at the edge, read by skopeo.
    let cert_dir = w.join("serve-certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    std::fs::copy(serve.ca(), cert_dir.join("ca.crt")).unwrap();
    let edge = SkopeoOpts {
        tls_verify: true,
        cert_dir: Some(cert_dir.clone()),
        creds: Some((USER.into(), PASS.into())),
    };
    let at_edge = |r: &str| skopeo::digest_of(&format!("docker://{edge_repo}{r}"), &edge);
    assert_eq!(at_edge(":1"), base.digest);
    assert_eq!(at_edge(&format!("@{sbom}")), sbom);
    assert_eq!(at_edge(&format!("@{bundle}")), bundle);
    assert_eq!(at_edge(&format!(":{sig_tag}")), sig);
    assert_eq!(at_edge(&format!(":{sbom_sig_tag}")), sbom_sig);
    // cosign verifies the mirrored image at the edge, both formats.
    let crane = Crane::new().with_ca(&serve.ca());
    crane.login(&serve.host, USER, PASS);
    let verifier = Cosign::new()
        .with_ca(&serve.ca())
        .with_docker_config(&crane.docker_config());
    let signed_at_edge = format!("{edge_repo}@{}", base.digest);
    for new_bundle in [false, true] {
        let o = verifier.verify(&signer.public_key(), &signed_at_edge, new_bundle);
        assert!(o.status.success(), "new bundle {new_bundle}: {o:?}");
    }

    // Back to a Distribution 2.8 with TLS + htpasswd whose fallback index lists a foreign
    // artifact already.
    let back = Distribution::tls_htpasswd(USER, PASS);
    let back_opts = SkopeoOpts::for_registry(&back);
    let back_repo = format!("{}/back/base", back.host());
    skopeo::copy(
        &format!("docker://{src_repo}:1"),
        &plain,
        &format!("docker://{back_repo}:1"),
        &back_opts,
        &[],
    );
    let foreign_file = w.join("foreign.json");
    std::fs::write(&foreign_file, br#"{"note":"attached by someone else"}"#).unwrap();
    let back_certs = back.certs().unwrap();
    let back_target = Target::tls(&back_certs.ca_path, USER, PASS);
    let foreign = attach(
        &oras,
        &back_target,
        &format!("{back_repo}@{}", base.digest),
        &foreign_file,
        FOREIGN_TYPE,
    );
    let o = berth(&[
        "copy",
        &format!("docker://{edge_repo}:1"),
        &format!("docker://{back_repo}:1"),
        "--src-creds",
        &format!("{USER}:{PASS}"),
        "--src-cert-dir",
        cert_dir.to_str().unwrap(),
        "--dest-creds",
        &format!("{USER}:{PASS}"),
        "--dest-cert-dir",
        back_certs.cert_dir.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(json(&o)["images"][0]["attached"], 4, "{}", json(&o));
    let back_index: Value = serde_json::from_slice(&skopeo::inspect_raw(
        &format!("docker://{back_repo}:sha256-{}", hex(&base.digest)),
        &back_opts,
    ))
    .unwrap();
    let mut want = vec![sbom.clone(), bundle.clone(), foreign.clone()];
    want.sort();
    assert_eq!(listed(&back_index, ""), want, "{back_index:#}");
    assert_eq!(
        listed(&back_index, FOREIGN_TYPE),
        vec![foreign],
        "{back_index:#}"
    );
    assert_eq!(listed(&back_index, SBOM_TYPE), vec![sbom.clone()]);
    let at_back = |r: &str| skopeo::digest_of(&format!("docker://{back_repo}{r}"), &back_opts);
    assert_eq!(at_back(":1"), base.digest);
    assert_eq!(at_back(&format!("@{sbom}")), sbom);
    assert_eq!(at_back(&format!("@{bundle}")), bundle);
    assert_eq!(at_back(&format!(":{sig_tag}")), sig);
    assert_eq!(at_back(&format!(":{sbom_sig_tag}")), sbom_sig);
    let crane = Crane::new().with_ca(&back_certs.ca_path);
    crane.login(&back.host(), USER, PASS);
    let verifier = Cosign::new()
        .with_ca(&back_certs.ca_path)
        .with_docker_config(&crane.docker_config());
    let signed_back = format!("{back_repo}@{}", base.digest);
    for new_bundle in [false, true] {
        let o = verifier.verify(&signer.public_key(), &signed_back, new_bundle);
        assert!(o.status.success(), "new bundle {new_bundle}: {o:?}");
    }
}
