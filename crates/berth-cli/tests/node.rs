//! `berth credential-provider`, `berth webhook manifest` and `berth node-config` as kubelet,
//! an operator and the agent run them.

mod common;

use std::path::{Path, PathBuf};

use common::{berth, berth_stdin};
use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn request(image: &str) -> String {
    format!(
        r#"{{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"{image}"}}"#
    )
}

#[test]
fn credential_provider_answers_kubelet() {
    let ud = examples().join("user-data.yaml");
    let ud = ud.to_str().unwrap();
    let o = berth_stdin(
        &["credential-provider", "--user-data", ud],
        &request("10.10.254.254:8000/spectro-images/quay.io/kairos/core:v1"),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "CredentialProviderResponse");
    assert_eq!(v["apiVersion"], "credentialprovider.kubelet.k8s.io/v1");
    let auth = &v["auth"]["10.10.254.254:8000/spectro-images"];
    assert_eq!(auth["username"], "ubuntu");
    assert_eq!(auth["password"], "s3cret");
    assert!(v["cacheDuration"].is_string());

    // an image of another registry gets no credentials
    let o = berth_stdin(
        &["credential-provider", "--user-data", ud],
        &request("quay.io/kairos/core:v1"),
    );
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["auth"].as_object().is_none_or(|a| a.is_empty()), "{v}");

    // bad JSON: exit 1, a message, no password anywhere
    let o = berth_stdin(&["credential-provider", "--user-data", ud], "{not json");
    assert_eq!(o.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        all.contains("CredentialProviderRequest") || all.contains("JSON"),
        "{all}"
    );
    assert!(!all.contains("s3cret"), "{all}");
}

#[test]
fn webhook_manifest_excludes_opted_out_namespaces() {
    let o = berth(&["webhook", "manifest"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let y = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "kind: MutatingWebhookConfiguration",
        "sideEffects: None",
        "\"stylus.io/imageswap\"",
        "operator: NotIn",
        "values: [\"disable\"]",
        "path: \"/mutate\"",
        "kind: Service",
    ] {
        assert!(y.contains(needle), "{needle} missing in:\n{y}");
    }
}

#[test]
fn node_config_writes_hosts_toml_and_registries_yaml_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("certs.d");
    let k3s = dir.path().join("registries.yaml");
    let o = berth(&[
        "node-config",
        "--user-data",
        examples().join("user-data-mapping.yaml").to_str().unwrap(),
        "--profile",
        examples().join("retail-edge.yaml").to_str().unwrap(),
        "--hosts-dir",
        hosts.to_str().unwrap(),
        "--k3s-registries",
        k3s.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let quay = std::fs::read_to_string(hosts.join("quay.io/hosts.toml")).unwrap();
    assert!(
        quay.contains("registry.example.com/v2/palette-images/quay"),
        "{quay}"
    );
    let reg = std::fs::read_to_string(&k3s).unwrap();
    assert!(
        reg.contains("mirrors:") && reg.contains("configs:"),
        "{reg}"
    );
    assert!(reg.contains("registry.example.com"), "{reg}");
    // credentials file is private
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&k3s).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "registries.yaml holds a password");
    // no temporary files left
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `node-config` takes the edge registry as every command does: the project in the address,
/// or apart (`--edge-project`, or the old `--project`), renders the same files.
#[test]
fn node_config_edge_registry_spellings_agree() {
    let ud = examples().join("user-data-mapping.yaml");
    let profile = examples().join("retail-edge.yaml");
    let run = |edge: &[&str]| {
        let mut args = vec![
            "node-config",
            "--user-data",
            ud.to_str().unwrap(),
            "--profile",
            profile.to_str().unwrap(),
            "--hosts-dir",
            "/etc/containerd/certs.d",
            "--dry-run",
        ];
        args.extend_from_slice(edge);
        let o = berth(&args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{edge:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let want = run(&[
        "--edge-registry",
        "http://10.0.0.5:30003",
        "--edge-project",
        "edge",
    ]);
    assert!(
        want.contains("[host.\"http://10.0.0.5:30003/v2/edge/"),
        "the edge registry first, with its project:\n{want}"
    );
    assert_eq!(
        run(&["--edge-registry", "http://10.0.0.5:30003/edge"]),
        want
    );
    assert_eq!(
        run(&[
            "--edge-registry",
            "http://10.0.0.5:30003",
            "--project",
            "edge"
        ]),
        want
    );
    assert_ne!(run(&["--edge-registry", "http://10.0.0.5:30003"]), want);
}
