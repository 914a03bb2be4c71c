//! `--pull-charts`: a profile's Helm pack whose chart is missing from `--charts DIR` is fetched
//! from its `repo` (a real chart repository: `helm package`, `helm repo index`, served over
//! HTTPS with Basic auth) into DIR as NAME-VERSION.tgz, then rendered; without the flag
//! nothing touches the network.

mod common;

use berth_testkit::chart_repo::ChartRepo;
use berth_testkit::helm_cases::chart_dir;
use common::{berth, text};
use serde_json::Value;

fn profile(repo: &str) -> String {
    format!(
        "name: web\nlayers:\n  - name: podinfo\n    type: addon\n    values:\n      pack:\n        content:\n          charts:\n            - repo: {repo}\n              name: podinfo\n              version: 6.14.1\n"
    )
}

/// (source, provenance) of every image of `berth images -o json`.
fn images(o: &std::process::Output) -> Vec<(String, Vec<String>)> {
    assert_eq!(o.status.code(), Some(0), "{}", text(o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = j["images"].as_array().unwrap();
    list.iter()
        .map(|i| {
            let p = i["provenance"].as_array().unwrap();
            let p = p.iter().map(|x| x.as_str().unwrap().to_string());
            (i["source"].as_str().unwrap().to_string(), p.collect())
        })
        .collect()
}

#[test]
fn pull_charts_fetches_a_missing_chart_into_the_directory_and_renders_it() {
    let repo = ChartRepo::serve(&[(&chart_dir("podinfo"), None)], Some(("u", "pw-4-charts")));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile.yaml");
    std::fs::write(&p, profile(&repo.url())).unwrap();
    let charts = dir.path().join("charts");
    std::fs::create_dir(&charts).unwrap();
    let (p, charts_s) = (p.to_str().unwrap(), charts.to_str().unwrap());
    let ca = repo.ca_path().to_str().unwrap();

    // Without --pull-charts: the chart is not rendered, and the repository never asked.
    let o = berth(&["images", "--profile", p, "--charts", charts_s, "-o", "json"]);
    assert!(
        images(&o)
            .iter()
            .all(|(_, prov)| !prov.contains(&"rendered".to_string()))
    );
    assert!(
        repo.server.requests().is_empty(),
        "{:?}",
        repo.server.requests()
    );

    let pull = [
        "images",
        "--profile",
        p,
        "--charts",
        charts_s,
        "--pull-charts",
        "--chart-ca",
        ca,
        "--chart-creds",
        "u:pw-4-charts",
        "-o",
        "json",
    ];
    let o = berth(&pull);
    let want: Vec<String> =
        std::fs::read_to_string(chart_dir("podinfo").join("expected-images.txt"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    let rendered: Vec<String> = images(&o)
        .into_iter()
        .filter(|(_, prov)| prov.contains(&"rendered".to_string()))
        .map(|(s, _)| s)
        .collect();
    assert_eq!(rendered, want, "{}", text(&o));
    let saved = charts.join("podinfo-6.14.1.tgz");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&repo.packages[0]).unwrap()
    );
    let asked = repo.server.requests();
    assert_eq!(
        asked,
        ["GET /index.yaml auth ok", "GET /podinfo-6.14.1.tgz auth ok"]
    );

    // Once there, the chart is not fetched again.
    let o = berth(&pull);
    assert_eq!(images(&o).len(), want.len(), "{}", text(&o));
    assert_eq!(repo.server.requests(), asked);

    // Without credentials, into an empty directory: exit 2, the flag to give named.
    std::fs::remove_file(&saved).unwrap();
    let o = berth(&[
        "images",
        "--profile",
        p,
        "--charts",
        charts_s,
        "--pull-charts",
        "--chart-ca",
        ca,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("chart podinfo 6.14.1") && e.contains("--chart-creds"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(&charts).unwrap().count(),
        0,
        "nothing half-written"
    );
}
