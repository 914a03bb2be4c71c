//! The plan's charts: a Helm pack's chart, loaded from its `.tgz`, becomes the Helm OCI
//! artifact `mirror` pushes, at the rewritten target of its reference; a chart given as a
//! directory has no artifact (the reason names the fix); a chart entry with no `repo` is a
//! finding naming the pack.

use berth_chart::Chart;
use berth_plan::{Charts, Plan};
use berth_profile::Profile;
use berth_rewrite::Rewriter;
use berth_testkit::helm_cases::chart_dir;
use berth_userdata::UserData;

const TGZ: &[u8] = include_bytes!("../../../examples/charts/podinfo-6.14.1.tgz");

fn profile(repo: &str) -> Vec<Profile> {
    let text = format!(
        "name: p\nlayers:\n  - name: web\n    type: addon\n    values:\n      pack:\n        content:\n          charts:\n            - repo: {repo}\n              name: podinfo\n              version: 6.14.1\n"
    );
    vec![Profile::parse(&text, "p.yaml").unwrap()]
}

fn rewriter() -> Rewriter {
    let ud = "#cloud-config\nstylus:\n  registryCredentials:\n    domain: ext.example.com/mirror\n";
    Rewriter::new(Some(&UserData::parse(ud, "ud.yaml").unwrap()), None)
}

fn plan(repo: &str, chart: impl Fn() -> Chart) -> Plan {
    let p = profile(repo);
    let charts = Charts::collect(&p, "v1.34.0", |_| Ok(Some(chart()))).unwrap();
    Plan::build_with(&p, &charts, &rewriter()).unwrap()
}

#[test]
fn a_packaged_chart_is_an_artifact_at_its_rewritten_target() {
    let p = plan("oci://ghcr.io/stefanprodan/charts", || {
        Chart::from_tgz(TGZ, "podinfo-6.14.1.tgz").unwrap()
    });
    assert_eq!(p.charts.len(), 1);
    let c = &p.charts[0];
    assert_eq!(
        c.source.to_string(),
        "ghcr.io/stefanprodan/charts/podinfo:6.14.1"
    );
    assert_eq!(
        c.target.to_string(),
        "ext.example.com/mirror/ghcr.io/stefanprodan/charts/podinfo:6.14.1"
    );
    assert_eq!(
        (c.chart.as_str(), c.layer.as_str()),
        ("podinfo 6.14.1", "web")
    );
    let a = c.artifact.as_ref().unwrap();
    assert_eq!(a.layer.as_ref(), TGZ);
    assert_eq!(c.digest.as_ref(), Some(&a.layer_digest()));
    assert_eq!(p.moved_charts().len(), 1);
    let moves = p.moves();
    assert!(
        moves.contains(&(c.source.to_string(), c.target.to_string())),
        "{moves:?}"
    );
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(
        json["charts"][0]["source"],
        "ghcr.io/stefanprodan/charts/podinfo:6.14.1"
    );
    // A chart repository's URL reads as a registry of the same name.
    let p = plan("https://stefanprodan.github.io/podinfo", || {
        Chart::from_tgz(TGZ, "podinfo-6.14.1.tgz").unwrap()
    });
    assert_eq!(
        p.charts[0].source.to_string(),
        "stefanprodan.github.io/podinfo/podinfo:6.14.1"
    );
}

#[test]
fn a_directory_has_no_artifact_and_no_repo_is_a_finding() {
    let p = plan("oci://ghcr.io/stefanprodan/charts", || {
        berth_chart::fs::load_path(&chart_dir("podinfo")).unwrap()
    });
    let why = p.charts[0].artifact.as_ref().unwrap_err();
    assert!(
        why.contains("given as a directory") && why.contains("helm package"),
        "{why}"
    );
    assert_eq!(p.charts[0].digest, None);
    let p = plan("", || Chart::from_tgz(TGZ, "podinfo-6.14.1.tgz").unwrap());
    assert!(p.charts.is_empty());
    let f = p
        .findings
        .iter()
        .find(|f| f.rule == "chart-not-mirrored")
        .unwrap();
    assert_eq!(
        (f.layer.as_str(), f.path.as_str()),
        ("web", "pack.content.charts[0]")
    );
    assert!(f.message.contains("no `repo`"), "{}", f.message);
}
