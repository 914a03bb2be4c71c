use berth_ends::Source;
use std::io::Write;

use super::*;

/// A packaged chart: `top/NAME` entries with mtime `mtime`.
fn tgz(files: &[(&str, &str)], mtime: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_cksum();
        b.append_data(&mut h, name, text.as_bytes()).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

const CHART: &str = "apiVersion: v2\nname: demo\nversion: 1.2.3+build.1\ndescription: A demo\nhome: https://example.com\nsources: [https://github.com/x/demo]\nmaintainers:\n  - name: Ann\n    email: ann@example.com\n  - name: Bob\nannotations:\n  org.opencontainers.image.title: ignored\n  extra: \"yes\"\n";

#[test]
fn the_artifact_is_helms_config_layer_and_manifest() {
    let bytes = tgz(
        &[("demo/Chart.yaml", CHART), ("demo/values.yaml", "a: 1\n")],
        1_700_000_000,
    );
    let a = ChartArtifact::from_archive(&bytes, "demo.tgz").unwrap();
    assert_eq!(
        (a.name.as_str(), a.tag()),
        ("demo", "1.2.3_build.1".to_string())
    );
    assert_eq!(a.layer.as_ref(), bytes.as_slice());
    assert_eq!(a.created, "2023-11-14T22:13:20Z");
    assert_eq!(
        std::str::from_utf8(&a.config).unwrap(),
        r#"{"name":"demo","home":"https://example.com","sources":["https://github.com/x/demo"],"version":"1.2.3+build.1","description":"A demo","maintainers":[{"name":"Ann","email":"ann@example.com"},{"name":"Bob"}],"apiVersion":"v2","annotations":{"extra":"yes","org.opencontainers.image.title":"ignored"}}"#
    );
    let m = std::str::from_utf8(&a.manifest.bytes).unwrap();
    let want = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"{}","size":{}}}],"annotations":{{"extra":"yes","org.opencontainers.image.authors":"Ann (ann@example.com), Bob","org.opencontainers.image.created":"2023-11-14T22:13:20Z","org.opencontainers.image.description":"A demo","org.opencontainers.image.source":"https://github.com/x/demo","org.opencontainers.image.title":"demo","org.opencontainers.image.url":"https://example.com","org.opencontainers.image.version":"1.2.3+build.1"}}}}"#,
        a.config_digest(),
        a.config.len(),
        a.layer_digest(),
        bytes.len()
    );
    assert_eq!(m, want);
    assert_eq!(a.manifest.digest, sha256_of(want.as_bytes()));
    assert_eq!(chart_layer(&a.manifest).unwrap().digest, a.layer_digest());
    // The same bytes give the same artifact.
    assert_eq!(ChartArtifact::from_archive(&bytes, "again").unwrap(), a);
}

#[test]
fn archives_that_are_not_charts_are_refused_by_name() {
    let e = ChartArtifact::from_archive(b"not gzip", "x.tgz").unwrap_err();
    assert!(e.to_string().starts_with("chart x.tgz: "), "{e}");
    let e = ChartArtifact::from_archive(&tgz(&[("d/values.yaml", "a: 1\n")], 0), "d.tgz");
    assert!(e.unwrap_err().to_string().contains("no CHART/Chart.yaml"));
    let e = ChartArtifact::from_archive(&tgz(&[("d/Chart.yaml", "name: d\n")], 0), "d.tgz");
    assert!(e.unwrap_err().to_string().contains("`version` is required"));
}

#[test]
fn chart_references_from_oci_and_http_repos() {
    let r = |repo: &str| chart_reference(repo, "podinfo", "6.14.1").map(|r| r.to_string());
    assert_eq!(
        r("oci://ghcr.io/stefanprodan/charts").unwrap(),
        "ghcr.io/stefanprodan/charts/podinfo:6.14.1"
    );
    assert_eq!(
        r("https://stefanprodan.github.io/podinfo/").unwrap(),
        "stefanprodan.github.io/podinfo/podinfo:6.14.1"
    );
    assert_eq!(
        r("http://localhost:8080").unwrap(),
        "localhost:8080/podinfo:6.14.1"
    );
    let tagged = chart_reference("oci://r.example.com/c", "x", "1.0.0+b").unwrap();
    assert_eq!(tagged.tag(), Some("1.0.0_b"));
    for (repo, says) in [
        ("", "has no `repo`"),
        ("ftp://x.example.com", "expected oci://"),
        ("https://charts/x", "not a registry host name"),
        ("https://x.example.com/a?b=c", "query"),
    ] {
        let e = r(repo).unwrap_err().to_string();
        assert!(
            e.contains(says) && e.contains("podinfo 6.14.1"),
            "{repo}: {e}"
        );
    }
    let e = chart_reference("oci://r.example.com", "x", "").unwrap_err();
    assert!(e.to_string().contains("no version"), "{e}");
}

#[tokio::test]
async fn the_source_serves_the_manifest_and_blobs() {
    use futures_util::StreamExt;
    let bytes = tgz(&[("demo/Chart.yaml", CHART)], 5);
    let a = ChartArtifact::from_archive(&bytes, "demo").unwrap();
    let s = ArtifactSource::new("chart demo", a.clone());
    let m = s.get_manifest("1.2.3_build.1").await.unwrap().unwrap();
    assert_eq!(m, a.manifest);
    assert!(s.get_manifest("other").await.unwrap().is_none());
    let mut blob = s.open_blob(&a.layer_digest()).await.unwrap();
    let got = blob.next().await.unwrap().unwrap();
    assert_eq!(got.as_ref(), bytes.as_slice());
    assert!(s.open_blob(&sha256_of(b"x")).await.is_err());
}
