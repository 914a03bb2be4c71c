//! Signatures made by the real cosign (v3, classic `sha256-<hex>.sig`, key pair, offline) in a
//! Distribution with TLS and htpasswd, read and decided by Berth; on every case Berth agrees
//! with `cosign verify`: signed, unsigned, wrong key, damaged signature, digest mismatch.
//! Then the webhook with the policy admits a pod of the signed image and denies the others.

use std::time::Duration;

use berth_client::{Client, Credentials, RegistryConfig, RegistryConfigs};
use berth_node::signatures::{Gate, load_policy};
use berth_node::webhook::{FailurePolicy, Mutator};
use berth_policy::Verdict;
use berth_reference::Reference;
use berth_rewrite::Rewriter;
use berth_testkit::Distribution;
use berth_testkit::cosign::Cosign;
use berth_testkit::crane::Crane;
use berth_testkit::images;
use serde_json::{Value, json};

const USER: &str = "signer";
const PASS: &str = "Signer-Pw-1";

fn client(reg: &Distribution) -> Client {
    let mut c = RegistryConfigs::new();
    let ca = std::fs::read_to_string(&reg.certs().unwrap().ca_path).unwrap();
    c.insert(
        &reg.host(),
        RegistryConfig {
            credentials: Some(Credentials::new(USER, PASS)),
            insecure: false,
            ca_pems: vec![ca],
        },
    );
    Client::new(c).unwrap()
}

fn write_policy(dir: &std::path::Path, key: &std::path::Path, host: &str) -> std::path::PathBuf {
    std::fs::copy(key, dir.join("trusted.pub")).unwrap();
    let p = dir.join("policy.json");
    let text = json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {host: [{
            "type": "sigstoreSigned", "keyPath": "trusted.pub",
            "signedIdentity": {"type": "matchRepository"}
        }]}}
    });
    std::fs::write(&p, text.to_string()).unwrap();
    p
}

fn review(image: &str) -> Vec<u8> {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps"},
        "spec": {"containers": [{"name": "c", "image": image}]}});
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "p", "namespace": "apps", "operation": "CREATE",
            "userInfo": {"username": "admin"}, "object": pod, "oldObject": null, "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn berth_agrees_with_cosign_on_every_case_and_the_webhook_denies() {
    let work = tempfile::tempdir().unwrap();
    let reg = Distribution::tls_htpasswd(USER, PASS);
    let ca = reg.certs().unwrap().ca_path.clone();
    let f = images::build_set(&work.path().join("set"));
    images::push_with_skopeo(&f, &reg, "library");
    let crane = Crane::new().with_ca(&ca);
    crane.login(&reg.host(), USER, PASS);
    let cosign = Cosign::new()
        .with_ca(&ca)
        .with_docker_config(&crane.docker_config());
    let stranger = Cosign::new();
    let repo = |n: &str| format!("{}/library/{n}", reg.host());
    let pinned = |n: &str, d: &str| format!("{}@{d}", repo(n));
    let (base1, base2, app) = (f.get("base", "1"), f.get("base", "2"), f.get("app", "1"));

    // signed (classic .sig); base:2 unsigned; app signed then its signature damaged.
    cosign.sign(&pinned("base", &base1.digest), false);
    cosign.sign(&pinned("app", &app.digest), false);
    let sig_tag = |d: &str| {
        let d = berth_reference::Digest::parse(d).unwrap();
        berth_oci::referrers::cosign_tag(&d, berth_oci::referrers::CosignKind::Signature)
    };
    let app_sig = format!("{}:{}", repo("app"), sig_tag(&app.digest));
    let mut m: Value = serde_json::from_slice(&crane.manifest(&app_sig)).unwrap();
    m["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = json!("damaged!");
    let reg_client = client(&reg);
    let r = reg_client.registry(&reg.host());
    let mt = m["mediaType"]
        .as_str()
        .unwrap_or(berth_client::OCI_MANIFEST)
        .to_string();
    r.put_manifest(
        "library/app",
        &sig_tag(&app.digest),
        serde_json::to_vec(&m).unwrap().into(),
        &mt,
    )
    .await
    .unwrap();
    // Digest mismatch: base:1's signature placed as base:2's... in a repository of its own.
    crane.ok(&[
        "copy",
        &format!("{}:1", repo("base")),
        &format!("{}:1", repo("moved")),
    ]);
    crane.ok(&[
        "copy",
        &format!("{}:2", repo("base")),
        &format!("{}:2", repo("moved")),
    ]);
    crane.ok(&[
        "copy",
        &format!("{}:{}", repo("base"), sig_tag(&base1.digest)),
        &format!("{}:{}", repo("moved"), sig_tag(&base2.digest)),
    ]);

    let policy = write_policy(work.path(), &cosign.public_key(), &reg.host());
    let gate = Gate::new(
        load_policy(&policy).unwrap(),
        reg_client.clone(),
        Duration::from_secs(60),
    );
    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong_policy = write_policy(wrong_dir.path(), &stranger.public_key(), &reg.host());
    let wrong = Gate::new(
        load_policy(&wrong_policy).unwrap(),
        reg_client.clone(),
        Duration::ZERO,
    );

    let cases: Vec<(&str, String, &Gate, &str)> = vec![
        ("signed", format!("{}:1", repo("base")), &gate, "signed"),
        ("unsigned", format!("{}:2", repo("base")), &gate, "unsigned"),
        (
            "wrong key",
            format!("{}:1", repo("base")),
            &wrong,
            "wrong-key",
        ),
        (
            "damaged",
            format!("{}:1", repo("app")),
            &gate,
            "payload-damaged",
        ),
        (
            "digest mismatch",
            format!("{}:2", repo("moved")),
            &gate,
            "digest-mismatch",
        ),
    ];
    for (what, image, g, want) in cases {
        let r = Reference::parse(&image).unwrap();
        let d = g.check(&r, &r).await.unwrap();
        assert_eq!(d.verdict.word(), want, "{what}: {d}");
        assert!(d.to_string().starts_with(&image), "{what}: {d}");
        let key = if std::ptr::eq(g, &wrong) {
            stranger.public_key()
        } else {
            cosign.public_key()
        };
        let o = cosign.verify(&key, &image, false);
        assert_eq!(
            o.status.success(),
            want == "signed",
            "{what}: cosign verify disagrees: {o:?}"
        );
    }
    let r = Reference::parse(&format!("{}:1", repo("base"))).unwrap();
    match &gate.check(&r, &r).await.unwrap().verdict {
        Verdict::SignedBy { key, identity, .. } => {
            assert!(key.starts_with("ecdsa-p256 key trusted.pub"), "{key}");
            assert_eq!(identity, &repo("base"));
        }
        v => panic!("{v}"),
    }

    // The webhook: no rewrite (identity), the policy's gate.
    let gate = std::sync::Arc::new(gate);
    let m = Mutator::new(Rewriter::new(None, None), FailurePolicy::Ignore).with_gate(gate.clone());
    let ok = m
        .review_checked(&review(&format!("{}:1", repo("base"))))
        .await
        .unwrap();
    let v = serde_json::to_value(&ok.review).unwrap();
    assert_eq!(v["response"]["allowed"], true, "{v:#}");
    let no = m
        .review_checked(&review(&format!("{}:2", repo("base"))))
        .await
        .unwrap();
    let v = serde_json::to_value(&no.review).unwrap();
    assert_eq!(v["response"]["allowed"], false, "{v:#}");
    let msg = v["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("image {}:2", repo("base"))) && msg.contains("unsigned"),
        "{msg}"
    );
    // The cached verdict is used: with the registry gone, the signed pod is still admitted.
    let body = review(&format!("{}:1", repo("base")));
    drop(reg);
    let again = m.review_checked(&body).await.unwrap();
    assert_eq!(
        serde_json::to_value(&again.review).unwrap()["response"]["allowed"],
        true
    );
}

/// The webhook's decision for a pod whose image's verdict is cached: p50 and p99 over many
/// reviews (`cargo test --release -p berth-node --test signatures -- --ignored --nocapture`;
/// the result goes in BENCHMARKS.md by hand).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn bench_cached_webhook_decision() {
    let work = tempfile::tempdir().unwrap();
    let reg = Distribution::tls_htpasswd(USER, PASS);
    let ca = reg.certs().unwrap().ca_path.clone();
    let f = images::build_set(&work.path().join("set"));
    images::push_with_skopeo(&f, &reg, "library");
    let crane = Crane::new().with_ca(&ca);
    crane.login(&reg.host(), USER, PASS);
    let cosign = Cosign::new()
        .with_ca(&ca)
        .with_docker_config(&crane.docker_config());
    let base = f.get("base", "1");
    cosign.sign(
        &format!("{}/library/base@{}", reg.host(), base.digest),
        false,
    );
    let policy = write_policy(work.path(), &cosign.public_key(), &reg.host());
    let gate = Gate::new(
        load_policy(&policy).unwrap(),
        client(&reg),
        Duration::from_secs(300),
    );
    let m = Mutator::new(Rewriter::new(None, None), FailurePolicy::Ignore).with_gate(gate.into());
    let body = review(&format!("{}/library/base:1", reg.host()));
    let first = m.review_checked(&body).await.unwrap();
    assert_eq!(
        serde_json::to_value(&first.review).unwrap()["response"]["allowed"],
        true
    );
    let n = berth_testkit::bench::env_usize("BERTH_BENCH_REVIEWS", 5000);
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let s = std::time::Instant::now();
        let d = m.review_checked(&body).await.unwrap();
        let _ = d.to_json().unwrap();
        t.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    t.sort_by(f64::total_cmp);
    let p = |q: f64| t[((t.len() - 1) as f64 * q) as usize];
    println!(
        "cached webhook decision over {n} reviews: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({})",
        p(0.5),
        p(0.99),
        t[t.len() - 1],
        berth_testkit::bench::machine()
    );
}
