//! `berth images --chart` on Longhorn: the thirteen images its workloads need (three in Pod
//! templates, ten named in `longhorn-manager`'s arguments and the driver deployer's
//! environment), `--images pod` for exactly what Helm renders, and `--explain` naming the
//! argument an image came from. The expectations are the chart's own files
//! (`runtime-images.txt`, `expected-images.txt`, from the shared charts). A profile with a
//! Longhorn pack then mirrors and verifies all thirteen between real registries, and the edge
//! agent imports all thirteen into a real containerd.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;

use berth_testkit::helm_cases::chart_dir;
use common::berth;
use serde_json::Value;

fn longhorn() -> PathBuf {
    chart_dir("longhorn")
}

fn listed(file: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(longhorn().join(file)).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

fn images(o: &Output) -> Vec<Value> {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    j["images"].as_array().unwrap().clone()
}

fn sources(list: &[Value]) -> BTreeSet<String> {
    let s = list
        .iter()
        .map(|i| i["source"].as_str().unwrap().to_string());
    s.collect()
}

#[test]
fn longhorn_needs_thirteen_and_helm_renders_three() {
    let chart = longhorn();
    let chart = chart.to_str().unwrap();
    let all = images(&berth(&["images", "--chart", chart, "-o", "json"]));
    assert_eq!(sources(&all), listed("runtime-images.txt"));
    assert_eq!(all.len(), 13);
    let pod = images(&berth(&[
        "images", "--chart", chart, "--images", "pod", "-o", "json",
    ]));
    assert_eq!(sources(&pod), listed("expected-images.txt"));
    // The ten extras carry their own provenance: arguments and environment variables.
    let extra: Vec<&Value> = all
        .iter()
        .filter(|i| !sources(&pod).contains(i["source"].as_str().unwrap()))
        .collect();
    assert_eq!(extra.len(), 10);
    let kinds: BTreeSet<String> = extra
        .iter()
        .flat_map(|i| i["provenance"].as_array().unwrap().clone())
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["rendered-arg".to_string(), "rendered-env".to_string()])
    );
    // The table shows the provenance and the first place of each image.
    let o = berth(&["images", "--chart", chart]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{table}");
    let head = table.lines().next().unwrap();
    let cols: Vec<&str> = head.split_whitespace().collect();
    assert_eq!(
        cols,
        ["ROLE", "LAYER", "SOURCE", "TARGET", "PROVENANCE", "FOUND"]
    );
    let engine = table
        .lines()
        .find(|l| l.contains("longhornio/longhorn-engine:"))
        .unwrap_or_else(|| panic!("no engine image in\n{table}"));
    let cells: Vec<&str> = engine.split_whitespace().collect();
    assert_eq!(cells[4], "rendered-arg", "{engine}");
    assert!(
        engine.contains("DaemonSet/longhorn-manager .spec.template.spec.containers[0]")
            && engine.contains("(--engine-image)"),
        "{engine}"
    );
}

#[test]
fn explain_names_the_argument_and_the_variable() {
    let chart = longhorn();
    let chart = chart.to_str().unwrap();
    let engine = listed("runtime-images.txt")
        .into_iter()
        .find(|r| r.contains("longhorn-engine"))
        .unwrap();
    let o = berth(&["images", "--chart", chart, "--explain", &engine]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("provenance: rendered-arg"), "{out}");
    assert!(
        out.contains("DaemonSet/longhorn-manager .spec.template.spec.containers[0]"),
        "{out}"
    );
    assert!(out.contains("(--engine-image)"), "{out}");
    let attacher = listed("runtime-images.txt")
        .into_iter()
        .find(|r| r.contains("csi-attacher"))
        .unwrap();
    let o = berth(&["images", "--chart", chart, "--explain", &attacher]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("provenance: rendered-env"), "{out}");
    assert!(out.contains("(CSI_ATTACHER_IMAGE)"), "{out}");
    // An image the chart does not name is an error naming it.
    let o = berth(&[
        "images",
        "--chart",
        chart,
        "--explain",
        "docker.io/library/nginx:1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not an image of the plan"));
}

/// A profile whose Longhorn pack points the chart at the site's source registry
/// (`global.imageRegistry`): `mirror` copies all thirteen to the external registry, `verify`
/// finds all thirteen there, and `--images pod` keeps the three Pod-template images.
#[test]
fn a_longhorn_pack_mirrors_and_verifies_all_thirteen() {
    use berth_testkit::Distribution;
    use berth_testkit::helm_cases::charts_dir;
    use berth_testkit::images;
    use berth_testkit::skopeo::{self, SkopeoOpts};

    let work = tempfile::tempdir().unwrap();
    let src = Distribution::plain();
    let dst = Distribution::tls_htpasswd("edge", "longhorn-pw");
    let f = images::build_set(&work.path().join("images"));
    let r = f.refs.iter().find(|r| !r.kind.is_index()).unwrap();
    let from = f.skopeo_source(r, &work.path().join("scratch"));
    let opts = SkopeoOpts::for_registry(&src);
    let wanted: BTreeSet<String> = listed("runtime-images.txt")
        .iter()
        .map(|i| i.replacen("docker.io", &src.host(), 1))
        .collect();
    for w in &wanted {
        skopeo::copy_all(&from, &format!("docker://{w}"), &opts);
    }
    let profile = work.path().join("profile.yaml");
    std::fs::write(
        &profile,
        format!(
            "name: longhorn-site\nlayers:\n  - name: longhorn\n    type: addon\n    values:\n      pack:\n        content:\n          charts:\n            - repo: https://charts.longhorn.io\n              name: longhorn\n              version: 1.12.0-dev\n      charts:\n        longhorn:\n          global:\n            imageRegistry: \"{}\"\n",
            src.host()
        ),
    )
    .unwrap();
    let (user, _) = dst.credentials().unwrap();
    let ca = &dst.certs().unwrap().ca_pem;
    let ud = work.path().join("user-data.yaml");
    std::fs::write(
        &ud,
        format!(
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {}/edge\n        username: {user}\n        password: longhorn-pw\n        certificates:\n          - |\n{}    registryMappingRules:\n      \"{}/longhornio\": \"{}/edge/longhornio\"\n",
            dst.host(),
            common::indent(ca, 12),
            src.host(),
            dst.host()
        ),
    )
    .unwrap();
    let (p, u) = (profile.to_str().unwrap(), ud.to_str().unwrap());
    let charts = charts_dir();
    let c = charts.to_str().unwrap();
    let plan = images(&berth(&[
        "images",
        "--profile",
        p,
        "--charts",
        c,
        "--user-data",
        u,
        "-o",
        "json",
    ]));
    assert_eq!(sources(&plan), wanted);
    let targets: BTreeSet<String> = plan
        .iter()
        .map(|i| i["target"].as_str().unwrap().to_string())
        .collect();
    let edge = format!("{}/edge/longhornio/", dst.host());
    assert!(targets.iter().all(|t| t.starts_with(&edge)), "{targets:#?}");
    let pod = images(&berth(&[
        "images",
        "--profile",
        p,
        "--charts",
        c,
        "--images",
        "pod",
        "-o",
        "json",
    ]));
    assert_eq!(pod.len(), 3);

    // `mirror` or `verify` of the profile, its JSON report.
    let run = |command: &str| -> Value {
        let args = [command, "--profile", p, "--charts", c, "--user-data", u];
        let o = berth(&[&args[..], &["--src-tls-verify=false", "-o", "json"]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let report = run("mirror");
    let moved = report["images"].as_array().unwrap();
    assert_eq!(moved.len(), 13, "{report:#}");
    let dst_opts = SkopeoOpts::for_registry(&dst);
    for t in &targets {
        let got = skopeo::digest_of(&format!("docker://{t}"), &dst_opts);
        assert_eq!(got, r.digest, "{t}");
    }
    let v = run("verify");
    let present = v["images"].as_array().unwrap();
    assert_eq!(present.len(), 13);
    assert!(present.iter().all(|i| i["status"] == "present"), "{v:#}");

    // The edge agent sees the same thirteen: it imports each from the external registry
    // into containerd under the name the cluster asks for (what Longhorn's manager passes to
    // the Pods it starts), with the image's digest.
    let cd = berth_testkit::containerd::Containerd::start();
    let sock = cd.socket.display().to_string();
    let agent = [
        "agent",
        "apply",
        "--profile",
        p,
        "--charts",
        c,
        "--user-data",
        u,
        "--containerd-socket",
        &sock,
        "--snapshotter",
        "native",
        "-o",
        "json",
    ];
    let o = berth(&agent);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let applied: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(applied["imported"], 13, "{applied:#}");
    let listed: std::collections::HashMap<String, String> =
        cd.images("k8s.io").into_iter().collect();
    for w in &wanted {
        assert_eq!(listed.get(w), Some(&r.digest), "{w}: {listed:?}");
    }
}
