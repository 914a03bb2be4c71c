//! containerd 2.4 and the CRI image service, as kubelet pulls: a private containerd 2.4
//! (config version 3, CRI images `config_path` = the hosts directory `berth node-config`
//! writes) driven with `crictl pull`. The image resolves through the edge registry named in
//! hosts.toml (`berth serve --user-data`, a pull-through cache of the external registry), and
//! through the external registry itself (hosts.toml's `server`, its CA and credentials) when
//! the edge registry is down.

mod common;

use std::path::{Path, PathBuf};

use berth_testkit::berth_serve::{BerthServe, ServeOpts};
use berth_testkit::containerd::Containerd;
use berth_testkit::images::{self, FixtureRef};
use berth_testkit::{Distribution, require_go_peer};
use common::{berth, indent, text};
use serde_json::Value;

const EDGE_USER: &str = "edge";
const EDGE_PASS: &str = "Edge-Cri-Pw5";
const EXT_USER: &str = "ext";
const EXT_PASS: &str = "Ext-Cri-Pw8";
const HOST_PLATFORM: &str = if cfg!(target_arch = "aarch64") {
    "linux/arm64"
} else {
    "linux/amd64"
};

/// User data naming `ext` as the external registry `EXT/<prefix>` (credentials, CA) and
/// mapping `quay.io` into it.
fn user_data(dir: &Path, ext: &Distribution, prefix: &str) -> PathBuf {
    let ca = &ext.certs().unwrap().ca_pem;
    let t = format!(
        "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {host}/{prefix}\n        username: {EXT_USER}\n        password: {EXT_PASS}\n        certificates:\n          - |\n{ca}    registryMappingRules:\n      \"quay.io\": \"{host}/{prefix}/quay.io\"\n",
        host = ext.host(),
        ca = indent(ca, 12),
    );
    let p = dir.join("user-data.yaml");
    std::fs::write(&p, t).unwrap();
    p
}

fn profile(dir: &Path, images: &[String]) -> PathBuf {
    let mut t = String::from(
        "name: cri\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n",
    );
    for i in images {
        t.push_str(&format!("            - image: {i}\n"));
    }
    let p = dir.join("profile.yaml");
    std::fs::write(&p, t).unwrap();
    p
}

/// `crictl pull REF` that must succeed.
fn crictl_pull_ok(c: &Containerd, reference: &str) {
    let o = c.crictl(&["pull", reference]);
    assert!(
        o.status.success(),
        "crictl pull {reference}: {}\n--- containerd log:\n{}",
        text(&o),
        c.log()
    );
}

/// The repo digests CRI records for an image (`crictl inspecti -o json`).
fn repo_digests(c: &Containerd, reference: &str) -> Vec<String> {
    let o = c.crictl(&["inspecti", "-o", "json", reference]);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["status"]["repoDigests"]
        .as_array()
        .unwrap_or_else(|| panic!("no repoDigests: {v:#}"))
        .iter()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect()
}

#[test]
fn crictl_pulls_through_the_edge_registry_and_from_upstream_when_it_is_down() {
    // The peers first: a missing one fails here, naming scripts/install-deps.sh.
    require_go_peer("crictl");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let ext = Distribution::tls_htpasswd(EXT_USER, EXT_PASS);
    let f = images::build_set(&w.join("set"));
    images::push_with_skopeo(&f, &ext, "spectro-images/quay.io/berth");
    let ud = user_data(w, &ext, "spectro-images");
    let mut serve = BerthServe::start(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        &w.join("serve"),
        ServeOpts {
            tls: true,
            user: Some((EDGE_USER.into(), EDGE_PASS.into())),
            extra: vec![
                "--anonymous-pull".into(),
                "--user-data".into(),
                ud.display().to_string(),
            ],
            // See ServeOpts::explicit_realm: Go clients speak HTTP/2 and send no Host header.
            explicit_realm: true,
        },
    );
    let name = |r: &FixtureRef| format!("quay.io/berth/{}:{}", r.name, r.tag);
    let profile = profile(w, &f.refs.iter().map(name).collect::<Vec<_>>());
    let hosts = w.join("certs.d");
    let edge_url = format!("https://{}", serve.host);
    let o = berth(&[
        "node-config",
        "--user-data",
        ud.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        "--hosts-dir",
        hosts.to_str().unwrap(),
        "--edge-registry",
        &edge_url,
        "--edge-ca",
        serve.ca().to_str().unwrap(),
        "--hosts-credentials",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let quay = std::fs::read_to_string(hosts.join("quay.io/hosts.toml")).unwrap();
    assert!(
        quay.contains(&format!("[host.\"https://{}/v2/", serve.host))
            && quay.contains(&format!("server = \"https://{}/v2/", ext.host())),
        "{quay}"
    );

    let c = Containerd::start_v2(&hosts);
    // Through the edge registry: berth serve fetches from the external registry and keeps it.
    let base2 = f.get("base", "2");
    let multi = f.get("multi", "1");
    for r in [base2, multi] {
        crictl_pull_ok(&c, &name(r));
        let want = format!("quay.io/berth/{}@{}", r.name, r.digest);
        assert!(
            repo_digests(&c, &name(r)).contains(&want),
            "{want}: {:?}",
            repo_digests(&c, &name(r))
        );
    }
    let cached = serve
        .data
        .join("repos/spectro-images")
        .join(ext.host().replace(':', "_"))
        .join("spectro-images/quay.io/berth");
    for r in [base2, multi] {
        let tag = cached.join(&r.name).join("_tags").join(&r.tag);
        assert!(
            tag.exists(),
            "{} not in berth serve's cache\n{}",
            tag.display(),
            serve.log_text()
        );
    }

    // The edge registry goes down: an image it never fetched comes from the external
    // registry (hosts.toml's server, with its CA and credentials).
    serve.stop();
    let app = f.get("app", "1");
    crictl_pull_ok(&c, &name(app));
    assert!(
        repo_digests(&c, &name(app)).contains(&format!("quay.io/berth/app@{}", app.digest)),
        "{:?}",
        repo_digests(&c, &name(app))
    );
    assert!(
        !cached.join("app/_tags/1").exists(),
        "app:1 went through the stopped edge registry?"
    );
    let log = std::fs::read_to_string(ext.log_path()).unwrap();
    assert!(
        log.contains("spectro-images/quay.io/berth/app"),
        "{}",
        &log[log.len().saturating_sub(4000)..]
    );
    // Nothing answers for a name neither has.
    let o = c.crictl(&["pull", "quay.io/berth/absent:1"]);
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn containerd_2_with_cri_starts_beside_debians_1_6() {
    let work = tempfile::tempdir().unwrap();
    let hosts = work.path().join("certs.d");
    std::fs::create_dir_all(&hosts).unwrap();
    let c = Containerd::start_v2(&hosts);
    let v = c.ctr_ok("default", &["version"]);
    assert!(v.contains("v2.4.2"), "{v}");
    // The CRI runtime answers (crictl version names containerd 2.4).
    let o = c.crictl(&["version"]);
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("RuntimeName:  containerd") && out.contains("v2.4.2"),
        "{out}"
    );
    // Debian's containerd 1.6 runs beside it, each on its own socket.
    let old = Containerd::start();
    let v = old.ctr_ok("default", &["version"]);
    assert!(v.contains("1.6."), "{v}");
    assert_ne!(old.socket, c.socket);
}

/// `berth agent apply` into containerd 2.4 through its API (the external registry a
/// Distribution with TLS + htpasswd, the profile's names mapped into it), then `agent status`;
/// the kubelet's view, `crictl images`, lists every image under the name the cluster asks for
/// with the registry's digest, and a rerun transfers nothing.
#[test]
fn agent_apply_and_status_on_containerd_2_images_seen_by_cri() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let ext = Distribution::tls_htpasswd(EXT_USER, EXT_PASS);
    let f = images::build_set(&w.join("set"));
    images::push_with_skopeo(&f, &ext, "edge/library");
    let ca = &ext.certs().unwrap().ca_pem;
    let ud = w.join("user-data.yaml");
    std::fs::write(
        &ud,
        format!(
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {host}/edge\n        username: {EXT_USER}\n        password: {EXT_PASS}\n        certificates:\n          - |\n{ca}    registryMappingRules:\n      \"registry.example.com/library\": \"{host}/edge/library\"\n",
            host = ext.host(),
            ca = indent(ca, 12),
        ),
    )
    .unwrap();
    let name = |r: &FixtureRef| format!("registry.example.com/library/{}:{}", r.name, r.tag);
    let profile = profile(w, &f.refs.iter().map(name).collect::<Vec<_>>());
    let hosts = w.join("certs.d");
    std::fs::create_dir_all(&hosts).unwrap();
    let c = Containerd::start_v2(&hosts);
    let sock = c.socket.display().to_string();
    let args = |cmd: &'static str| -> Vec<String> {
        [
            "agent",
            cmd,
            "--user-data",
            ud.to_str().unwrap(),
            "--profile",
            profile.to_str().unwrap(),
            "--containerd-socket",
            &sock,
            "--snapshotter",
            "native",
            "--output",
            "json",
        ]
        .map(str::to_string)
        .to_vec()
    };
    let run = |a: Vec<String>| berth(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args("apply"));
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["imported"].as_u64(), v["failed"].as_u64()),
        (Some(f.refs.len() as u64), Some(0)),
        "{v:#}"
    );

    // kubelet's view through CRI: every image, by the profile's name, with its digest.
    let o = c.crictl(&["images", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    let images = listed["images"].as_array().unwrap();
    for r in &f.refs {
        let tag = name(r);
        let row = images
            .iter()
            .find(|i| {
                i["repoTags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t.as_str() == Some(tag.as_str())))
            })
            .unwrap_or_else(|| panic!("{tag} not listed by CRI: {listed:#}"));
        // CRI's image id is the config digest of the host platform's image.
        let host = r
            .manifests
            .iter()
            .find(|m| m.platform.starts_with(HOST_PLATFORM))
            .unwrap_or(&r.manifests[0]);
        assert_eq!(row["id"], host.config.digest.as_str(), "{tag}: {row:#}");
        // kubelet asks by the same name: ImageStatus finds it, so no pull.
        let o = c.crictl(&["inspecti", "-o", "json", &tag]);
        assert!(o.status.success(), "{tag}: {}", text(&o));
    }
    // Not asserted (a known gap, docs/testing.md): the agent records only the tag names, so
    // CRI lists no repoDigests and a Pod naming an image `NAME@sha256:...` is not found here
    // (`crictl inspecti NAME@DIGEST`: "no such image"); a CRI pull records `NAME@DIGEST` too.
    let o = run(args("status"));
    assert!(o.status.success(), "{}", text(&o));
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = st["images"].as_array().unwrap();
    assert_eq!(rows.len(), f.refs.len());
    for r in rows {
        assert_eq!(
            (r["in_containerd"].as_bool(), r["unpacked"].as_bool()),
            (Some(true), Some(true)),
            "{r}"
        );
    }
    let o = run(args("apply"));
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["present"].as_u64(), v["bytes"].as_u64()),
        (Some(f.refs.len() as u64), Some(0)),
        "{v:#}"
    );
}
