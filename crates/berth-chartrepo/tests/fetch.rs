//! Fetching charts from real peers: a chart repository made by `helm package` and `helm repo
//! index`, served over HTTPS with Basic auth on 127.0.0.1, and a CNCF Distribution (TLS +
//! htpasswd) the chart was `helm push`ed to. What Berth fetches must be the packaged file,
//! byte for byte; a wrong digest, an unknown version, missing credentials or an untrusted
//! certificate are refused with errors that say what to change.

use std::path::{Path, PathBuf};

use berth_chartrepo::{ChartRef, PullError, Puller, RepoAccess};
use berth_testkit::Distribution;
use berth_testkit::chart_repo::ChartRepo;
use berth_testkit::helm_cases::chart_dir;

const USER: &str = "charts";
const PASS: &str = "s3cret-pa55";

fn access(ca: &Path, creds: &[String]) -> RepoAccess {
    RepoAccess {
        creds: creds.to_vec(),
        ca: Some(ca.to_path_buf()),
        ..RepoAccess::default()
    }
}

fn chart(name: &str, version: &str, repo: &str) -> ChartRef {
    ChartRef {
        name: name.into(),
        version: version.into(),
        repo: repo.into(),
    }
}

fn puller(a: &RepoAccess, c: &ChartRef) -> Puller {
    Puller::new(a.configs([c]).unwrap()).unwrap()
}

/// podinfo at its own version and packaged again as 6.15.0.
fn podinfo_repo() -> ChartRepo {
    let dir = chart_dir("podinfo");
    ChartRepo::serve(&[(&dir, None), (&dir, Some("6.15.0"))], Some((USER, PASS)))
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_chart_repository_gives_the_packaged_file_byte_for_byte() {
    let repo = podinfo_repo();
    let a = access(repo.ca_path(), &[format!("{USER}:{PASS}")]);
    let c = chart("podinfo", "6.14.1", &repo.url());
    let p = puller(&a, &c);
    let f = p.fetch(&c).await.unwrap();
    assert_eq!(f.bytes.as_ref(), read(&repo.packages[0]).as_slice());
    assert_eq!(f.url, format!("{}/podinfo-6.14.1.tgz", repo.url()));
    assert_eq!(f.version, "6.14.1");
    // Every request carried the credentials (same origin), and was let in.
    let log = repo.server.requests();
    assert_eq!(
        log,
        ["GET /index.yaml auth ok", "GET /podinfo-6.14.1.tgz auth ok"]
    );

    // No version: the newest, as `helm pull` without --version.
    let latest = p.fetch(&chart("podinfo", "", &repo.url())).await.unwrap();
    assert_eq!(latest.version, "6.15.0");
    assert_eq!(latest.bytes.as_ref(), read(&repo.packages[1]).as_slice());
    // The index was read once.
    assert_eq!(repo.server.requests().len(), 3);

    // Saved as NAME-VERSION.tgz, and what berth-chart loads from the directory.
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("charts");
    let saved = p.pull_into(&c, &into).await.unwrap();
    assert_eq!(saved, into.join("podinfo-6.14.1.tgz"));
    assert_eq!(read(&saved), read(&repo.packages[0]));
    let found = berth_chart::fs::find_in(&into, "podinfo", "6.14.1").unwrap();
    assert_eq!(found.unwrap().version(), "6.14.1");
    let names: Vec<_> = std::fs::read_dir(&into)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["podinfo-6.14.1.tgz"], "no temporary file is left");
}

#[tokio::test(flavor = "current_thread")]
async fn absolute_urls_under_a_path_are_followed() {
    let repo = podinfo_repo();
    // index.yaml with absolute URLs (`helm repo index --url`), the repository under a path.
    let sub = repo.dir().join("sub");
    std::fs::create_dir(&sub).unwrap();
    repo.index(Some(&format!("{}/", repo.url())));
    std::fs::rename(repo.dir().join("index.yaml"), sub.join("index.yaml")).unwrap();
    let a = access(
        repo.ca_path(),
        &[format!("127.0.0.1:{}={USER}:{PASS}", repo.server.port())],
    );
    let c = chart("podinfo", "6.14.1", &format!("{}/sub", repo.url()));
    let f = puller(&a, &c).fetch(&c).await.unwrap();
    assert_eq!(f.url, format!("{}/podinfo-6.14.1.tgz", repo.url()));
    assert_eq!(f.bytes.as_ref(), read(&repo.packages[0]).as_slice());
}

#[tokio::test(flavor = "current_thread")]
async fn a_wrong_digest_in_the_index_is_refused_and_nothing_is_saved() {
    let repo = podinfo_repo();
    let index = repo.dir().join("index.yaml");
    let text = std::fs::read_to_string(&index).unwrap();
    let good = berth_testkit::sha256_digest(&read(&repo.packages[0]));
    let good = good.trim_start_matches("sha256:");
    assert!(
        text.contains(good),
        "helm repo index writes the sha256: {text}"
    );
    let bad = "0".repeat(64);
    std::fs::write(&index, text.replace(good, &bad)).unwrap();

    let a = access(repo.ca_path(), &[format!("{USER}:{PASS}")]);
    let c = chart("podinfo", "6.14.1", &repo.url());
    let dir = tempfile::tempdir().unwrap();
    let e = puller(&a, &c).pull_into(&c, dir.path()).await.unwrap_err();
    assert!(matches!(e, PullError::DigestMismatch { .. }), "{e:?}");
    let m = e.to_string();
    for part in [
        "podinfo 6.14.1",
        &format!("{}/podinfo-6.14.1.tgz", repo.url()),
        good,
        &bad,
    ] {
        assert!(m.contains(part), "{m} should name {part}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was saved"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_unknown_version_or_chart_lists_what_there_is() {
    let repo = podinfo_repo();
    let a = access(repo.ca_path(), &[format!("{USER}:{PASS}")]);
    let c = chart("podinfo", "9.9.9", &repo.url());
    let p = puller(&a, &c);
    let e = p.fetch(&c).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "chart podinfo 9.9.9: {} has no such version (it has: 6.15.0, 6.14.1); fix the pack's chart `version`",
            repo.url()
        )
    );
    let e = p
        .fetch(&chart("nginx", "1.0.0", &repo.url()))
        .await
        .unwrap_err();
    assert!(matches!(e, PullError::NoSuchChart { .. }), "{e:?}");
    assert!(e.to_string().contains("(it has: podinfo)"), "{e}");
}

#[tokio::test(flavor = "current_thread")]
async fn credentials_and_trust_are_asked_for_by_their_flags() {
    let repo = podinfo_repo();
    let c = chart("podinfo", "6.14.1", &repo.url());
    // No credentials.
    let e = puller(&access(repo.ca_path(), &[]), &c)
        .fetch(&c)
        .await
        .unwrap_err();
    let m = berth_oci::error_chain(&e);
    assert!(
        m.contains("requires credentials") && m.contains("--chart-creds"),
        "{m}"
    );
    // Wrong ones: named by user, the password never shown.
    let wrong = access(repo.ca_path(), &["charts:wrong-password-77".to_string()]);
    let e = puller(&wrong, &c).fetch(&c).await.unwrap_err();
    let m = format!("{} {e:?}", berth_oci::error_chain(&e));
    assert!(
        m.contains("rejected the credentials of user `charts`"),
        "{m}"
    );
    assert!(!m.contains("wrong-password-77"), "{m}");
    // The CA not trusted.
    let untrusted = RepoAccess {
        creds: vec![format!("{USER}:{PASS}")],
        ..RepoAccess::default()
    };
    let e = puller(&untrusted, &c).fetch(&c).await.unwrap_err();
    let m = berth_oci::error_chain(&e);
    assert!(m.contains("TLS") && m.contains("--chart-ca"), "{m}");
    // --chart-insecure: nothing verified, as asked.
    let insecure = RepoAccess {
        insecure: true,
        ..untrusted
    };
    let f = puller(&insecure, &c).fetch(&c).await.unwrap();
    assert_eq!(f.bytes.as_ref(), read(&repo.packages[0]).as_slice());
}

/// `helm push` of `tgz` to `oci://HOST/charts` on `reg`.
fn helm_push(repo: &ChartRepo, reg: &Distribution, tgz: &Path) {
    let ca = reg.certs().unwrap().ca_path.to_str().unwrap().to_string();
    let remote = format!("oci://{}/charts", reg.host());
    let args = [
        "push",
        tgz.to_str().unwrap(),
        &remote,
        "--ca-file",
        &ca,
        "--username",
        USER,
        "--password",
        PASS,
    ];
    let out = repo.helm().run(&args);
    assert!(
        out.status.success(),
        "helm push: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_chart_pushed_with_helm_comes_back_through_oci() {
    let repo = podinfo_repo();
    let reg = Distribution::tls_htpasswd(USER, PASS);
    helm_push(&repo, &reg, &repo.packages[0]);
    helm_push(&repo, &reg, &repo.packages[1]);
    let ca: PathBuf = reg.certs().unwrap().ca_path.clone();
    let a = access(&ca, &[format!("{}={USER}:{PASS}", reg.host())]);
    let c = chart("podinfo", "6.14.1", &format!("oci://{}/charts", reg.host()));
    let p = puller(&a, &c);
    let f = p.fetch(&c).await.unwrap();
    assert_eq!(f.bytes.as_ref(), read(&repo.packages[0]).as_slice());
    assert_eq!(
        f.digest,
        berth_testkit::sha256_digest(&read(&repo.packages[0]))
    );
    assert_eq!(f.url, format!("oci://{}/charts/podinfo:6.14.1", reg.host()));
    // No version: the newest tag.
    let latest = p.fetch(&chart("podinfo", "", &c.repo)).await.unwrap();
    assert_eq!(latest.version, "6.15.0");
    assert_eq!(latest.bytes.as_ref(), read(&repo.packages[1]).as_slice());
    // `berth images --chart oci://HOST/PATH/NAME:VERSION`.
    let r = format!("oci://{}/charts/podinfo:6.14.1", reg.host());
    let loaded = berth_chartrepo::load(&r, &a).await.unwrap();
    assert_eq!(
        (loaded.name.as_str(), loaded.version()),
        ("podinfo", "6.14.1".to_string())
    );
    // A tag that is not there.
    let e = p
        .fetch(&chart("podinfo", "1.0.0", &c.repo))
        .await
        .unwrap_err();
    assert!(berth_oci::error_chain(&e).contains("not found"), "{e}");
    // Without credentials the registry's refusal names the flag.
    let anon = access(&ca, &[]);
    let e = puller(&anon, &c).fetch(&c).await.unwrap_err();
    let m = berth_oci::error_chain(&e);
    assert!(m.contains("--chart-creds"), "{m}");
}
