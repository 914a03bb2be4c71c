//! Charts travel too (issue 13, item 4): `mirror` pushes a profile's Helm chart to the
//! external registry (a real Distribution with TLS and htpasswd) as a Helm OCI artifact,
//! which real `helm pull` fetches back byte for byte and `helm show chart` reads; the
//! manifest is the one `helm push` of the same `.tgz` writes; `verify` finds the chart, and
//! fails naming it where it is absent; `bundle build` carries it; a chart given as a
//! directory is refused with the fix.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use berth_testkit::Distribution;
use berth_testkit::helm::Helm;
use berth_testkit::images;
use berth_testkit::skopeo::{self, SkopeoOpts};
use common::berth;
use serde_json::Value;

const PODINFO: &str = "podinfo-6.14.1.tgz";

fn example_chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/charts/podinfo-6.14.1.tgz")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    berth_testkit::sha256_digest(bytes)
}

/// User data sending the podinfo image (from `src`) and the chart (from
/// `oci://ghcr.io/stefanprodan/charts`) to `dst` under `edge/`.
fn user_data(path: &Path, src: &Distribution, dst: &Distribution) {
    let (user, pass) = dst.credentials().unwrap();
    let ca = &dst.certs().unwrap().ca_pem;
    let text = format!(
        "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {d}/edge\n        username: {user}\n        password: {pass}\n        certificates:\n          - |\n{}    registryMappingRules:\n      \"{s}/stefanprodan\": \"{d}/edge/stefanprodan\"\n      \"ghcr.io/stefanprodan/charts\": \"{d}/edge/charts\"\n",
        common::indent(ca, 12),
        d = dst.host(),
        s = src.host(),
    );
    std::fs::write(path, text).unwrap();
}

/// A profile with one Helm pack: podinfo from an OCI chart repository, its image from `src`.
fn profile(path: &Path, src: &Distribution) {
    let text = format!(
        "name: podinfo-site\nlayers:\n  - name: podinfo\n    type: addon\n    values:\n      pack:\n        content:\n          charts:\n            - repo: oci://ghcr.io/stefanprodan/charts\n              name: podinfo\n              version: 6.14.1\n      charts:\n        podinfo:\n          image:\n            repository: {}/stefanprodan/podinfo\n            tag: 6.14.1\n",
        src.host()
    );
    std::fs::write(path, text).unwrap();
}

/// `helm ARGS` with the registry's CA and credentials appended; its output when it succeeds.
fn helm_ok(helm: &Helm, args: &[&str], reg: &Distribution) -> Output {
    let (user, pass) = reg.credentials().unwrap();
    let ca = reg.certs().unwrap().ca_path.to_str().unwrap().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--ca-file", &ca, "--username", &user, "--password", &pass]);
    let o = helm.run(&all);
    assert!(o.status.success(), "helm {args:?}: {}", stderr(&o));
    o
}

#[test]
fn mirror_pushes_the_chart_as_helm_does_and_verify_checks_it() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = Distribution::plain();
    let dst = Distribution::tls_htpasswd("edge", "chart-pw");
    let f = images::build_set(&w.join("images"));
    let r = f.refs.iter().find(|r| !r.kind.is_index()).unwrap();
    let from = f.skopeo_source(r, &w.join("scratch"));
    let image = format!("{}/stefanprodan/podinfo:6.14.1", src.host());
    skopeo::copy_all(&from, &format!("docker://{image}"), &SkopeoOpts::insecure());

    let charts = w.join("charts");
    std::fs::create_dir(&charts).unwrap();
    let tgz = std::fs::read(example_chart()).unwrap();
    std::fs::write(charts.join(PODINFO), &tgz).unwrap();
    let (p, u) = (w.join("profile.yaml"), w.join("user-data.yaml"));
    profile(&p, &src);
    user_data(&u, &src, &dst);
    let (p, u, c) = (
        p.to_str().unwrap(),
        u.to_str().unwrap(),
        charts.to_str().unwrap(),
    );
    let base = ["--profile", p, "--charts", c, "--user-data", u];
    let run = |command: &str, extra: &[&str]| {
        let args = [&[command][..], &base, &["--src-tls-verify=false"], extra].concat();
        berth(&args)
    };

    // The dry run names the chart with its target.
    let dry = json(&run("mirror", &["--dry-run", "-o", "json"]));
    let target = format!("{}/edge/charts/podinfo:6.14.1", dst.host());
    let targets: Vec<&str> = dry["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["target"].as_str().unwrap())
        .collect();
    assert!(targets.contains(&target.as_str()), "{dry:#}");

    // mirror: the image, and the chart as an artifact.
    let report = json(&run("mirror", &["-o", "json"]));
    assert_eq!(report["images"].as_array().unwrap().len(), 1, "{report:#}");
    let pushed = report["charts"].as_array().unwrap();
    assert_eq!(pushed.len(), 1, "{report:#}");
    assert_eq!(pushed[0]["status"], "copied", "{report:#}");
    assert_eq!(
        pushed[0]["source"],
        "ghcr.io/stefanprodan/charts/podinfo:6.14.1"
    );
    assert_eq!(pushed[0]["target"], target.as_str());

    // The artifact: Helm's media types, the .tgz as its layer.
    let dst_opts = SkopeoOpts::for_registry(&dst);
    let berth_manifest = skopeo::inspect_raw(&format!("docker://{target}"), &dst_opts);
    assert_eq!(
        sha256(&berth_manifest),
        pushed[0]["digest"].as_str().unwrap()
    );
    let m: Value = serde_json::from_slice(&berth_manifest).unwrap();
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.cncf.helm.config.v1+json"
    );
    let layer = &m["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    );
    assert_eq!(layer["digest"], sha256(&tgz).as_str());
    assert_eq!(
        m["annotations"]["org.opencontainers.image.title"],
        "podinfo"
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.version"],
        "6.14.1"
    );

    // Real helm pulls it back byte for byte and reads it.
    let helm = Helm::new();
    let out = w.join("pulled");
    std::fs::create_dir(&out).unwrap();
    let oci = format!("oci://{}/edge/charts/podinfo", dst.host());
    let d = out.to_str().unwrap();
    helm_ok(&helm, &["pull", &oci, "--version", "6.14.1", "-d", d], &dst);
    let pulled = std::fs::read(out.join(PODINFO)).unwrap();
    assert_eq!(sha256(&pulled), sha256(&tgz));
    let shown = helm_ok(&helm, &["show", "chart", &oci, "--version", "6.14.1"], &dst);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("name: podinfo") && shown.contains("version: 6.14.1"),
        "{shown}"
    );

    // `helm push` of the same .tgz, its file time set to Berth's `created`, writes the same
    // manifest: same config, same layer, same bytes.
    let created = m["annotations"]["org.opencontainers.image.created"]
        .as_str()
        .unwrap();
    let again = w.join("helm-push");
    std::fs::create_dir(&again).unwrap();
    let copy = again.join(PODINFO);
    std::fs::write(&copy, &tgz).unwrap();
    let touched = std::process::Command::new("touch")
        .args(["-d", created])
        .arg(&copy)
        .status()
        .unwrap();
    assert!(touched.success());
    let helm_repo = format!("oci://{}/edge/helm-pushed", dst.host());
    helm_ok(&helm, &["push", copy.to_str().unwrap(), &helm_repo], &dst);
    let helm_manifest = skopeo::inspect_raw(
        &format!("docker://{}/edge/helm-pushed/podinfo:6.14.1", dst.host()),
        &dst_opts,
    );
    let h: Value = serde_json::from_slice(&helm_manifest).unwrap();
    assert_eq!(h["config"], m["config"]);
    assert_eq!(h["layers"], m["layers"]);
    assert_eq!(
        String::from_utf8_lossy(&helm_manifest),
        String::from_utf8_lossy(&berth_manifest)
    );

    // A second mirror finds it present; verify finds it at its target.
    let again = json(&run("mirror", &["-o", "json"]));
    assert_eq!(again["charts"][0]["status"], "present", "{again:#}");
    let v = json(&run("verify", &["-o", "json"]));
    let checked = v["charts"].as_array().unwrap();
    assert_eq!(checked.len(), 1, "{v:#}");
    assert_eq!(checked[0]["status"], "present", "{v:#}");
    assert_eq!(checked[0]["found"], sha256(&tgz).as_str());

    // Another registry holding the image but not the chart: verify fails, naming the chart.
    let other = Distribution::tls_htpasswd("edge", "other-pw");
    let u2 = w.join("user-data-other.yaml");
    user_data(&u2, &src, &other);
    let u2 = u2.to_str().unwrap();
    let images_only = [
        "mirror",
        "--profile",
        p,
        "--user-data",
        u2,
        "--src-tls-verify=false",
    ];
    let o = berth(&images_only);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let args = ["verify", "--profile", p, "--charts", c, "--user-data", u2];
    let o = berth(&[&args[..], &["--src-tls-verify=false"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("chart ghcr.io/stefanprodan/charts/podinfo:6.14.1: missing"),
        "{err}"
    );
    assert!(err.contains("0 of 1 chart(s) present"), "{err}");
    assert!(err.contains("1 of 1 image(s) present"), "{err}");
    let o = berth(&[&args[..], &["--src-tls-verify=false", "-o", "json"]].concat());
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["charts"][0]["status"], "missing", "{v:#}");

    // The same chart packaged again (other gzip bytes) pushed there by helm: it differs.
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&tgz[..]), &mut tar).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let repacked = gz.finish().unwrap();
    assert_ne!(sha256(&repacked), sha256(&tgz));
    let dir = w.join("repacked");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join(PODINFO), &repacked).unwrap();
    let repo = format!("oci://{}/edge/charts", other.host());
    let file = dir.join(PODINFO);
    helm_ok(&helm, &["push", file.to_str().unwrap(), &repo], &other);
    let o = berth(&[&args[..], &["--src-tls-verify=false", "-o", "json"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let checked = &v["charts"][0];
    assert_eq!(checked["status"], "differs", "{v:#}");
    assert_eq!(checked["found"], sha256(&repacked).as_str());
    assert_eq!(checked["expected"], sha256(&tgz).as_str());

    // bundle build carries the chart, named by its source reference, with its digest.
    let bundle = w.join("site.tar.zst");
    let b = bundle.to_str().unwrap();
    let args = ["bundle", "build", "--profile", p, "--charts", c, "--out", b];
    let built = json(&berth(
        &[&args[..], &["--src-tls-verify=false", "-o", "json"]].concat(),
    ));
    let entries = built["manifest"]["images"].as_array().unwrap();
    let chart = entries
        .iter()
        .find(|i| i["source"] == "ghcr.io/stefanprodan/charts/podinfo:6.14.1")
        .unwrap_or_else(|| panic!("{built:#}"));
    assert_eq!(chart["digest"], sha256(&berth_manifest).as_str());
    assert_eq!(entries.len(), 2, "{built:#}");
    let head = json(&berth(&["bundle", "inspect", b, "-o", "json"]));
    assert_eq!(head["images"], built["manifest"]["images"]);
}

#[test]
fn a_chart_given_as_a_directory_is_refused_with_the_fix() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = Distribution::plain();
    let dst = Distribution::tls_htpasswd("edge", "dir-pw");
    let charts = w.join("charts");
    std::fs::create_dir(&charts).unwrap();
    // `helm pull --untar`: the chart as a directory.
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(example_chart()).unwrap());
    tar::Archive::new(gz).unpack(&charts).unwrap();
    assert!(charts.join("podinfo/Chart.yaml").is_file());
    let (p, u) = (w.join("profile.yaml"), w.join("user-data.yaml"));
    profile(&p, &src);
    user_data(&u, &src, &dst);
    let (p, u, c) = (
        p.to_str().unwrap(),
        u.to_str().unwrap(),
        charts.to_str().unwrap(),
    );
    let args = ["mirror", "--profile", p, "--charts", c, "--user-data", u];
    let o = berth(&[&args[..], &["--src-tls-verify=false", "--keep-going"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("was given as a directory") && err.contains("helm package"),
        "{err}"
    );
    let args = ["bundle", "build", "--profile", p, "--charts", c, "--out"];
    let out = w.join("b.tar.zst");
    let o = berth(
        &[
            &args[..],
            &[out.to_str().unwrap(), "--src-tls-verify=false"],
        ]
        .concat(),
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("helm package"), "{}", stderr(&o));
    assert!(!out.exists());
}
