use super::*;
use berth_reference::ReferenceError;
use proptest::prelude::*;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn ud(text: &str) -> UserData {
    UserData::parse(&format!("#cloud-config\n{text}"), "user-data.yaml").unwrap()
}

fn prepend() -> UserData {
    ud(
        "stylus:\n  registryCredentials:\n    domain: 10.10.254.254:8000/spectro-images\n    username: ubuntu\n    password: pw\n    insecure: true\n",
    )
}

fn mapping() -> UserData {
    ud(concat!(
        "stylus:\n  externalRegistries:\n    registries:\n      - domain: example.registry.com/palette-images\n        username: admin\n        password: pw\n      - domain: targetdomain.com\n        username: t\n",
        "    registryMappingRules:\n",
        "      \"us-docker.pkg.dev/palette-images\": \"example.registry.com/palette-images\"\n",
        "      \"us-east1-docker.pkg.dev/spectro-images/daily\": \"example.registry.com/palette-images\"\n",
        "      \"gcr.io/spectro-images-public\": \"example.registry.com/palette-images\"\n",
        "      \"gcr.io/spectro\": \"example.registry.com/short\"\n",
        "      \"somedomain.com/somepath\": \"targetdomain.com/other/path\"\n",
        "      \"registry.local:5000/team\": \"targetdomain.com/team\"\n",
        "      \"docker.io\": \"example.registry.com/hub\"\n",
    ))
}

fn rw(r: &Rewriter, s: &str) -> String {
    r.rewrite_str(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .to_string()
}

/// palette.md §2 worked examples, and the cases §2.3 leaves to us.
#[test]
fn worked_examples() {
    let p = Rewriter::new(Some(&prepend()), None);
    let m = Rewriter::new(Some(&mapping()), None);
    let table: Vec<(&Rewriter, String, String)> = vec![
        // R1 prepend
        (&p, "quay.io/kairos/core:v1".into(), "10.10.254.254:8000/spectro-images/quay.io/kairos/core:v1".into()),
        (
            &p,
            "quay.io/kairos/core-ubuntu-20-lts-rke2:v1.25.2-rke2r1".into(),
            "10.10.254.254:8000/spectro-images/quay.io/kairos/core-ubuntu-20-lts-rke2:v1.25.2-rke2r1".into(),
        ),
        (&p, "nginx".into(), "10.10.254.254:8000/spectro-images/docker.io/library/nginx:latest".into()),
        (&p, "docker.io/library/nginx:1.25".into(), "10.10.254.254:8000/spectro-images/docker.io/library/nginx:1.25".into()),
        (&p, "bitnami/redis:7".into(), "10.10.254.254:8000/spectro-images/docker.io/bitnami/redis:7".into()),
        (&p, format!("quay.io/x/y@{D}"), format!("10.10.254.254:8000/spectro-images/quay.io/x/y@{D}")),
        (&p, format!("quay.io/x/y:1@{D}"), format!("10.10.254.254:8000/spectro-images/quay.io/x/y:1@{D}")),
        // a source registry with a port: encoded as host_port
        (&p, "registry.local:5000/team/app:1.0".into(), "10.10.254.254:8000/spectro-images/registry.local_5000/team/app:1.0".into()),
        (&p, "Registry.Local:5000/team/app:1.0".into(), "10.10.254.254:8000/spectro-images/registry.local_5000/team/app:1.0".into()),
        // already under the target: left as is
        (
            &p,
            "10.10.254.254:8000/spectro-images/quay.io/kairos/core:v1".into(),
            "10.10.254.254:8000/spectro-images/quay.io/kairos/core:v1".into(),
        ),
        // R2 mapping rules
        (
            &m,
            "somedomain.com/somepath/example-repo/alpine:latest".into(),
            "targetdomain.com/other/path/example-repo/alpine:latest".into(),
        ),
        (
            &m,
            "us-docker.pkg.dev/palette-images/packs/flannel/0.27.0/cni-plugins:v1.6.2".into(),
            "example.registry.com/palette-images/packs/flannel/0.27.0/cni-plugins:v1.6.2".into(),
        ),
        (
            &m,
            "us-east1-docker.pkg.dev/spectro-images/daily/x:1".into(),
            "example.registry.com/palette-images/x:1".into(),
        ),
        // longest rule wins, at a component boundary
        (&m, "gcr.io/spectro-images-public/a:1".into(), "example.registry.com/palette-images/a:1".into()),
        (&m, "gcr.io/spectro/a:1".into(), "example.registry.com/short/a:1".into()),
        (&m, "gcr.io/spectro-other/a:1".into(), "gcr.io/spectro-other/a:1".into()),
        // a rule for a registry with a port keeps only the path
        (&m, "registry.local:5000/team/app:1.0".into(), "targetdomain.com/team/app:1.0".into()),
        // Docker Hub names are normalized before matching
        (&m, "nginx:1.25".into(), "example.registry.com/hub/library/nginx:1.25".into()),
        // no rule matches: not redirected
        (&m, "quay.io/kairos/core:v1".into(), "quay.io/kairos/core:v1".into()),
        // no chaining, and already-rewritten names stay
        (
            &m,
            "example.registry.com/palette-images/packs/x:1".into(),
            "example.registry.com/palette-images/packs/x:1".into(),
        ),
        (&m, format!("gcr.io/spectro/a@{D}"), format!("example.registry.com/short/a@{D}")),
    ];
    for (r, input, want) in table {
        assert_eq!(rw(r, &input), want, "{input}");
    }
}

#[test]
fn local_registry_prefix() {
    let local = LocalRegistry::new("127.0.0.1:5000", None).unwrap();
    let none = Rewriter::new(None, Some(local.clone()));
    assert_eq!(
        rw(&none, "nginx:1.25"),
        "127.0.0.1:5000/spectro-images/docker.io/library/nginx:1.25"
    );
    let p = Rewriter::new(Some(&prepend()), Some(local.clone()));
    assert_eq!(
        rw(&p, "quay.io/kairos/core:v1"),
        "127.0.0.1:5000/spectro-images/10.10.254.254_8000/spectro-images/quay.io/kairos/core:v1"
    );
    let m = Rewriter::new(
        Some(&mapping()),
        Some(LocalRegistry::new("edge.local:30003", Some("cache")).unwrap()),
    );
    assert_eq!(
        rw(&m, "us-docker.pkg.dev/palette-images/a:1"),
        "edge.local:30003/cache/example.registry.com/palette-images/a:1"
    );
    // idempotent
    let once = rw(&p, "quay.io/kairos/core:v1");
    assert_eq!(rw(&p, &once), once);
    for bad in ["http://x:5000", "x:5000/p", "x:notaport", ""] {
        assert!(LocalRegistry::new(bad, None).is_err(), "{bad}");
    }
    assert!(LocalRegistry::new("x:5000", Some("Bad")).is_err());
}

#[test]
fn off_switches() {
    let disabled = ud(
        "stylus:\n  registryCredentials:\n    domain: reg.io/p\n  imageRedirectWebhook:\n    enable: false\n",
    );
    let r = Rewriter::new(Some(&disabled), None);
    assert!(!r.enabled());
    assert_eq!(rw(&r, "quay.io/a/b:1"), "quay.io/a/b:1");
    let p = Rewriter::new(Some(&prepend()), None);
    let img = Reference::parse("quay.io/a/b:1").unwrap();
    let mut labels = BTreeMap::new();
    labels.insert("team".to_string(), "x".to_string());
    assert_ne!(p.rewrite_in_namespace(&img, &labels).unwrap(), img);
    labels.insert(OPT_OUT_LABEL.to_string(), OPT_OUT_VALUE.to_string());
    assert_eq!(p.rewrite_in_namespace(&img, &labels).unwrap(), img);
    labels.insert(OPT_OUT_LABEL.to_string(), "enable".to_string());
    assert_ne!(p.rewrite_in_namespace(&img, &labels).unwrap(), img);
}

#[test]
fn ipv6_sources_are_refused_with_the_fix() {
    let p = Rewriter::new(Some(&prepend()), None);
    let err = p
        .rewrite_str("[::1]:5000/team/app:1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[::1]:5000"), "{err}");
    assert!(err.contains("registryMappingRules"), "{err}");
}

#[test]
fn too_long_results_are_errors_not_invalid_references() {
    let p = Rewriter::new(Some(&prepend()), None);
    let long = format!("quay.io/{}", "a".repeat(230));
    match p.rewrite_str(&long).unwrap_err() {
        RewriteErrorOrParse::Rewrite(RewriteError::InvalidTarget {
            source: ReferenceError::NameTooLong { .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn mapping_to_a_bare_host_is_an_error() {
    let u = ud(
        "stylus:\n  externalRegistries:\n    registryMappingRules:\n      \"gcr.io/a/b\": \"reg.io\"\n",
    );
    let r = Rewriter::new(Some(&u), None);
    assert_eq!(rw(&r, "gcr.io/a/b/c:1"), "reg.io/c:1");
    let err = r.rewrite_str("gcr.io/a/b:1").unwrap_err().to_string();
    assert!(err.contains("no repository path"), "{err}");
}

#[test]
fn credentials_come_from_the_longest_domain_prefix() {
    let m = Rewriter::new(Some(&mapping()), None);
    let t = m.rewrite_str("somedomain.com/somepath/x:1").unwrap();
    assert_eq!(m.registry_for(&t).unwrap().username, "t");
    let t = m.rewrite_str("gcr.io/spectro-images-public/x:1").unwrap();
    assert_eq!(m.registry_for(&t).unwrap().username, "admin");
    let t = m.rewrite_str("quay.io/x:1").unwrap();
    assert!(m.registry_for(&t).is_none());
    let p = Rewriter::new(Some(&prepend()), None);
    let t = p.rewrite_str("quay.io/x:1").unwrap();
    assert_eq!(p.registry_for(&t).unwrap().username, "ubuntu");
}

#[test]
fn host_components_round_trip() {
    for h in [
        "docker.io",
        "registry.local:5000",
        "127.0.0.1:15000",
        "localhost",
    ] {
        let e = encode_host_component(h).unwrap();
        berth_reference::validate_path_component(&e).unwrap();
        assert_eq!(decode_host_component(&e), h);
    }
    assert_eq!(encode_host_component("[::1]:5000"), None);
}

fn valid_reference() -> impl Strategy<Value = String> {
    let comp = "[a-z0-9]{1,6}(([._]|__|-{1,2})[a-z0-9]{1,6}){0,2}";
    let path = proptest::collection::vec(comp, 1..4).prop_map(|v| v.join("/"));
    let domain = prop_oneof![
        Just("docker.io".to_string()),
        Just("gcr.io".to_string()),
        Just("us-docker.pkg.dev".to_string()),
        Just("somedomain.com".to_string()),
        Just("example.registry.com".to_string()),
        Just("10.10.254.254:8000".to_string()),
        Just("127.0.0.1:5000".to_string()),
        "[a-zA-Z][a-z0-9-]{0,8}[a-z0-9]\\.[a-z]{2,5}(:[0-9]{1,5})?",
        Just("[::1]:5000".to_string()),
    ];
    let fixed_paths = prop_oneof![
        path.clone(),
        Just("palette-images/a".to_string()),
        Just("spectro-images/x/y".to_string()),
        Just("spectro".to_string()),
        Just("somepath/r".to_string()),
    ];
    let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}");
    let digest = proptest::option::of("[0-9a-f]{64}".prop_map(|h| format!("@sha256:{h}")));
    (domain, fixed_paths, tag, digest).prop_map(|(d, p, t, g)| {
        format!(
            "{d}/{p}{}{}",
            t.map(|t| format!(":{t}")).unwrap_or_default(),
            g.unwrap_or_default()
        )
    })
}

fn rewriters() -> Vec<Rewriter> {
    let local = LocalRegistry::new("edge.local:30003", None).unwrap();
    vec![
        Rewriter::new(None, None),
        Rewriter::new(Some(&prepend()), None),
        Rewriter::new(Some(&mapping()), None),
        Rewriter::new(None, Some(local.clone())),
        Rewriter::new(Some(&prepend()), Some(local.clone())),
        Rewriter::new(Some(&mapping()), Some(local)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// For any valid reference: the result parses as a valid reference (printing it and parsing
    /// it again gives it back), keeps the tag and digest, and rewriting twice equals rewriting once.
    #[test]
    fn results_are_valid_and_idempotent(s in valid_reference()) {
        let Ok(src) = Reference::parse(&s) else { return Ok(()); };
        for r in rewriters() {
            match r.rewrite(&src) {
                Ok(t) => {
                    let printed = t.to_string();
                    prop_assert_eq!(Reference::parse(&printed).unwrap(), t.clone());
                    prop_assert_eq!(t.tag(), src.tag());
                    prop_assert_eq!(t.digest(), src.digest());
                    prop_assert_eq!(r.rewrite(&t).unwrap(), t.clone(), "twice != once for {}", s);
                }
                Err(RewriteError::Ipv6Host { .. }) => prop_assert!(src.domain().starts_with('[') || r.local().is_some()),
                Err(RewriteError::InvalidTarget { source: ReferenceError::NameTooLong { .. }, .. }) => {}
                Err(e) => prop_assert!(false, "unexpected error for {}: {}", s, e),
            }
        }
    }
}
