//! `berth agent apply` / `berth agent status` end to end: a private containerd 1.6 (CRI off,
//! native snapshotter), the external registry a Distribution with TLS and htpasswd, a
//! preload directory with a zstd-compressed oci-archive; `ctr` judges the result.

mod common;
#[path = "../../berth-containerd/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use berth_testkit::Distribution;
use berth_testkit::images::{self, Fixture};
use berth_testkit::skopeo::{self, SkopeoOpts};
use common::{berth, indent};
use serde_json::Value;
use support::{BusyboxImage, TestContainerd, busybox_layout};

const NS: &str = "k8s.io";

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

struct Setup {
    work: tempfile::TempDir,
    reg: Distribution,
    f: Fixture,
    busybox: BusyboxImage,
    profile: String,
    preload: String,
}

/// The registry holds the fixture set and busybox under `edge/library/`; the profile asks
/// for them as `registry.example.com/library/...` (the user data maps that prefix to the
/// registry), a provider image among them; the preload directory holds `pause:3.9`.
fn setup() -> Setup {
    let work = tempfile::tempdir().unwrap();
    let reg = Distribution::tls_htpasswd("edge", "edge-pass");
    let f = images::build_set(&work.path().join("set"));
    images::push_with_skopeo(&f, &reg, "edge/library");
    let busybox = busybox_layout(&work.path().join("busybox"), "busybox_1");
    let none = SkopeoOpts::insecure();
    skopeo::copy(
        &skopeo::oci_ref(&busybox.layout, &busybox.ref_name),
        &none,
        &format!("docker://{}/edge/library/busybox:1", reg.host()),
        &SkopeoOpts::for_registry(&reg),
        &[],
    );
    let mut text = String::from(
        "name: agent-test\nlayers:\n  - name: os\n    type: os\n    values:\n      pack:\n        content:\n          images:\n            - image: registry.example.com/library/base:1\n  - name: k8s\n    type: k8s\n    values:\n      pack:\n        content:\n          images:\n            - image: registry.k8s.io/pause:3.9\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n            - image: registry.example.com/library/busybox:1\n",
    );
    for r in f.refs.iter().filter(|r| r.name != "base" || r.tag != "1") {
        text.push_str(&format!(
            "            - image: registry.example.com/library/{}:{}\n",
            r.name, r.tag
        ));
    }
    let profile = work.path().join("profile.yaml");
    std::fs::write(&profile, text).unwrap();
    let pre = work.path().join("preload");
    std::fs::create_dir_all(&pre).unwrap();
    let tar = work.path().join("pause.tar");
    skopeo::copy(
        &skopeo::oci_ref(&busybox.layout, &busybox.ref_name),
        &none,
        &format!("oci-archive:{}:registry.k8s.io/pause:3.9", tar.display()),
        &none,
        &[],
    );
    let zst = zstd::encode_all(std::fs::File::open(&tar).unwrap(), 3).unwrap();
    std::fs::write(pre.join("pause.tar.zst"), zst).unwrap();
    Setup {
        profile: profile.display().to_string(),
        preload: pre.display().to_string(),
        work,
        reg,
        f,
        busybox,
    }
}

fn write_user_data(dir: &Path, reg: &Distribution, password: &str) -> String {
    let ca = &reg.certs().unwrap().ca_pem;
    let text = format!(
        "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {host}/edge\n        username: edge\n        password: {password}\n        certificates:\n          - |\n{ca}    registryMappingRules:\n      \"registry.example.com/library\": \"{host}/edge/library\"\n",
        host = reg.host(),
        ca = indent(ca, 12),
    );
    let p = dir.join(format!("user-data-{password}.yaml"));
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn apply(s: &Setup, c: &TestContainerd, ud: &str, extra: &[&str]) -> Output {
    let sock = c.socket.display().to_string();
    let mut args = vec![
        "agent",
        "apply",
        "--user-data",
        ud,
        "--profile",
        &s.profile,
        "--containerd-socket",
        &sock,
        "--snapshotter",
        "native",
        "--preload-dir",
        &s.preload,
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    berth(&args)
}

#[test]
fn agent_apply_imports_preloaded_and_registry_images_then_status_and_rerun() {
    let s = setup();
    let c = TestContainerd::start();
    let ud = write_user_data(s.work.path(), &s.reg, "edge-pass");
    let state = s.work.path().join("state");
    let state_s = state.display().to_string();

    let hosts = s.work.path().join("certs.d");
    let k3s = s.work.path().join("k3s/registries.yaml");
    let (hosts_s, k3s_s) = (hosts.display().to_string(), k3s.display().to_string());
    let o = apply(
        &s,
        &c,
        &ud,
        &[
            "--state-dir",
            &state_s,
            "--hosts-dir",
            &hosts_s,
            "--k3s-registries",
            &k3s_s,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // berth-node's files for the pulls the kubelet still makes: registries.yaml routes
    // registry.example.com/library to the external registry; hosts.toml cannot (containerd
    // mirrors whole hosts), and berth-node says so.
    assert!(
        !hosts.join("registry.example.com/hosts.toml").exists()
            && stderr(&o).contains("hosts.toml cannot route"),
        "{}",
        stderr(&o)
    );
    let yaml = std::fs::read_to_string(&k3s).unwrap();
    assert!(
        yaml.contains("registry.example.com") && yaml.contains(&s.reg.host()),
        "{yaml}"
    );
    let v = json(&o);
    let n = s.f.refs.len() + 2;
    assert_eq!(v["imported"], n, "{v:#}");
    assert_eq!(
        (v["present"].as_u64(), v["failed"].as_u64()),
        (Some(0), Some(0))
    );
    // The provider image first (after the preloaded ones).
    assert_eq!(v["images"][0]["name"], "registry.k8s.io/pause:3.9");
    assert!(
        v["images"][0]["from"]
            .as_str()
            .unwrap()
            .starts_with("oci-archive:")
    );
    assert_eq!(
        v["images"][1]["name"],
        "registry.example.com/library/base:1"
    );
    assert!(stderr(&o).contains("imported"), "{}", stderr(&o));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("agent-state.json")).unwrap())
            .unwrap();
    assert_eq!(saved["imported"], n);

    // ctr sees every image under the name the cluster asks for, with the right digest,
    // and the rewritten target name too.
    let listed: HashMap<String, String> = c.images(NS).into_iter().collect();
    for r in &s.f.refs {
        let name = format!("registry.example.com/library/{}:{}", r.name, r.tag);
        assert_eq!(listed.get(&name), Some(&r.digest), "{name}: {listed:?}");
        let target = format!("{}/edge/library/{}:{}", s.reg.host(), r.name, r.tag);
        assert_eq!(listed.get(&target), Some(&r.digest), "{target}");
    }
    assert_eq!(
        listed.get("registry.k8s.io/pause:3.9"),
        Some(&s.busybox.manifest_digest)
    );
    if let Some(out) = c.run(
        NS,
        "registry.example.com/library/busybox:1",
        "agent-t1",
        &[],
    ) {
        assert!(out.contains("hello from berth"), "{out}");
    }

    // status: every image in containerd, unpacked.
    let sock = c.socket.display().to_string();
    let o = berth(&[
        "agent",
        "status",
        "--user-data",
        &ud,
        "--profile",
        &s.profile,
        "--containerd-socket",
        &sock,
        "--snapshotter",
        "native",
        "--output",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let st = json(&o);
    let rows = st["images"].as_array().unwrap();
    assert_eq!(rows.len(), n);
    for r in rows {
        assert_eq!(
            (r["in_containerd"].as_bool(), r["unpacked"].as_bool()),
            (Some(true), Some(true)),
            "{r}"
        );
    }

    // Rerun: everything present, nothing transferred.
    let o = apply(&s, &c, &ud, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        (
            v["present"].as_u64(),
            v["imported"].as_u64(),
            v["bytes"].as_u64()
        ),
        (Some(n as u64), Some(0), Some(0)),
        "{v:#}"
    );

    // A removed image is missing in status (exit 1), and comes back with a rerun.
    c.ctr_ok(NS, &["images", "rm", "registry.example.com/library/app:1"]);
    c.ctr_ok(
        NS,
        &[
            "images",
            "rm",
            &format!("{}/edge/library/app:1", s.reg.host()),
        ],
    );
    let o = berth(&[
        "agent",
        "status",
        "--user-data",
        &ud,
        "--profile",
        &s.profile,
        "--containerd-socket",
        &sock,
        "--snapshotter",
        "native",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("no") && l.contains("app:1")),
        "{table}"
    );
    let o = apply(&s, &c, &ud, &[]);
    let v = json(&o);
    assert_eq!(
        (v["imported"].as_u64(), v["present"].as_u64()),
        (Some(1), Some(n as u64 - 1)),
        "{v:#}"
    );
}

#[test]
fn agent_apply_bad_inputs() {
    let s = setup();
    let c = TestContainerd::start();

    // No containerd: exit 2, the socket and the fix named.
    let ud = write_user_data(s.work.path(), &s.reg, "edge-pass");
    let o = berth(&[
        "agent",
        "apply",
        "--user-data",
        &ud,
        "--profile",
        &s.profile,
        "--containerd-socket",
        "/nonexistent/containerd.sock",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("/nonexistent/containerd.sock") && e.contains("--containerd-socket"),
        "{e}"
    );

    // Wrong password: registry images fail (exit 1) with the registry's answer, the
    // preloaded one is imported; no record of a failed image exists.
    let bad = write_user_data(s.work.path(), &s.reg, "wrong-pass");
    let o = apply(&s, &c, &bad, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        (v["imported"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(s.f.refs.len() as u64 + 1)),
        "{v:#}"
    );
    let err = v["images"][1]["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("401")
            || err.to_lowercase().contains("unauthorized")
            || err.contains("credentials"),
        "{err}"
    );
    let names: Vec<String> = c.images(NS).into_iter().map(|x| x.0).collect();
    assert_eq!(names, ["registry.k8s.io/pause:3.9"]);

    // A corrupt archive in the preload directory: reported with its path, exit 1.
    std::fs::write(
        Path::new(&s.preload).join("broken.tar"),
        b"not a tar at all",
    )
    .unwrap();
    let o = apply(&s, &c, &ud, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["failed"], 1, "{v:#}");
    let broken = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == "failed")
        .unwrap();
    assert!(
        broken["from"].as_str().unwrap().ends_with("broken.tar"),
        "{broken}"
    );
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .contains("neither an oci-archive"),
        "{broken}"
    );
    assert_eq!(
        v["imported"].as_u64(),
        Some(s.f.refs.len() as u64 + 1),
        "{v:#}"
    );
}

/// `cosign sign` (classic `.sig`, offline) of `image` (pinned) under the identity `identity`.
fn cosign_sign(c: &berth_testkit::cosign::Cosign, image: &str, identity: &str) {
    let id = format!("--sign-container-identity={identity}");
    let args = [
        "sign",
        "--key",
        "cosign.key",
        "--new-bundle-format=false",
        "--tlog-upload=false",
    ];
    c.ok(&[&args[..], &["--use-signing-config=false", &id, "-y", image]].concat());
}

#[test]
fn agent_apply_with_a_policy_imports_only_signed_images() {
    let s = setup();
    let c = TestContainerd::start();
    let ud = write_user_data(s.work.path(), &s.reg, "edge-pass");
    let ca = s.reg.certs().unwrap().ca_path.clone();
    let crane = berth_testkit::crane::Crane::new().with_ca(&ca);
    crane.login(&s.reg.host(), "edge", "edge-pass");
    let cfg = crane.docker_config();
    let signer = berth_testkit::cosign::Cosign::new()
        .with_ca(&ca)
        .with_docker_config(&cfg);
    let stranger = berth_testkit::cosign::Cosign::new()
        .with_ca(&ca)
        .with_docker_config(&cfg);
    let at = |n: &str, t: &str| {
        let d = &s.f.get(n, t).digest;
        format!("{}/edge/library/{n}@{d}", s.reg.host())
    };
    // Signed under the name the profile uses (the source), stored beside the mirrored copy.
    cosign_sign(
        &signer,
        &at("base", "1"),
        "registry.example.com/library/base",
    );
    cosign_sign(
        &stranger,
        &at("app", "1"),
        "registry.example.com/library/app",
    );
    std::fs::copy(signer.public_key(), s.work.path().join("team.pub")).unwrap();
    let policy = s.work.path().join("policy.yaml");
    let text = "default: accept\nimages:\n  - scope: registry.example.com/library\n    require: signed\n    keys: [team.pub]\n";
    std::fs::write(&policy, text).unwrap();
    let o = apply(&s, &c, &ud, &["--policy", policy.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let by_name = |n: &str| {
        let all = v["images"].as_array().unwrap();
        all.iter()
            .find(|i| i["name"] == n)
            .unwrap_or_else(|| panic!("{n}: {v:#}"))
            .clone()
    };
    assert_eq!(
        by_name("registry.example.com/library/base:1")["status"],
        "imported"
    );
    assert_eq!(by_name("registry.k8s.io/pause:3.9")["status"], "imported");
    let unsigned = by_name("registry.example.com/library/base:2");
    let err = unsigned["error"].as_str().unwrap();
    assert!(
        err.contains("refused by the signature policy") && err.contains("unsigned"),
        "{err}"
    );
    assert!(err.contains("registry.example.com/library/base:2"), "{err}");
    let wrong = by_name("registry.example.com/library/app:1");
    assert!(
        wrong["error"].as_str().unwrap().contains("wrong key"),
        "{wrong:#}"
    );
    let listed: HashMap<String, String> = c.images(NS).into_iter().collect();
    assert!(
        listed.contains_key("registry.example.com/library/base:1"),
        "{listed:?}"
    );
    for refused in ["base:2", "app:1"] {
        let (name, target) = (
            format!("registry.example.com/library/{refused}"),
            format!("{}/edge/library/{refused}", s.reg.host()),
        );
        assert!(
            !listed.contains_key(&name) && !listed.contains_key(&target),
            "{listed:?}"
        );
    }
}
