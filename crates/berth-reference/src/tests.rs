use super::*;
use proptest::prelude::*;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn normalizes_like_docker() {
    let cases = [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
        (
            "index.docker.io/library/nginx",
            "docker.io/library/nginx:latest",
        ),
        ("index.docker.io/nginx", "docker.io/library/nginx:latest"),
        ("docker.io/nginx", "docker.io/library/nginx:latest"),
        ("quay.io/kairos/core:v1", "quay.io/kairos/core:v1"),
        ("localhost/foo", "localhost/foo:latest"),
        ("localhost:5000/foo/bar:1", "localhost:5000/foo/bar:1"),
        ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"),
        ("[::1]:5000/a/b:c", "[::1]:5000/a/b:c"),
        ("[2001:db8::1]/a", "[2001:db8::1]/a:latest"),
        ("Registry.Example.com/a", "Registry.Example.com/a:latest"),
        (
            "a__b/c-d---e/f.g_h:T_1.x-y",
            "docker.io/a__b/c-d---e/f.g_h:T_1.x-y",
        ),
    ];
    for (input, want) in cases {
        let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.to_string(), want, "{input}");
        // printing gives it back
        assert_eq!(Reference::parse(want).unwrap(), r, "{want}");
    }
}

#[test]
fn digests_are_kept_and_no_latest_is_added() {
    let r = Reference::parse(&format!("quay.io/x/y@{D}")).unwrap();
    assert_eq!(r.to_string(), format!("quay.io/x/y@{D}"));
    assert_eq!(r.tag(), None);
    assert_eq!(r.reference_part(), D);
    let r = Reference::parse(&format!("quay.io/x/y:1.0@{D}")).unwrap();
    assert_eq!(r.to_string(), format!("quay.io/x/y:1.0@{D}"));
    assert_eq!(r.tag(), Some("1.0"));
    assert_eq!(r.without_digest().to_string(), "quay.io/x/y:1.0");
}

#[test]
fn parts() {
    let r = Reference::parse("reg.local:5000/team/app:1.0").unwrap();
    assert_eq!(r.domain(), "reg.local:5000");
    assert_eq!(r.host(), "reg.local");
    assert_eq!(r.port(), Some(5000));
    assert_eq!(r.path(), "team/app");
    assert_eq!(r.name(), "reg.local:5000/team/app");
    assert_eq!(r.familiar(), "reg.local:5000/team/app:1.0");
    assert_eq!(
        Reference::parse("nginx").unwrap().familiar(),
        "nginx:latest"
    );
    let r = Reference::parse("[::1]:5000/a").unwrap();
    assert_eq!((r.host(), r.port()), ("[::1]", Some(5000)));
}

#[test]
fn rejects_bad_references_with_reasons() {
    let long = format!("example.com/{}", "a".repeat(250));
    let longtag = format!("a:{}", "t".repeat(129));
    let cases: Vec<(&str, &str)> = vec![
        ("", "empty"),
        ("Nginx", "must be lower case"),
        ("docker.io/Library/nginx", "must be lower case"),
        ("a b", "white space"),
        ("a//b", "empty component"),
        ("a/", "empty component"),
        ("/a", "empty component"),
        ("a:", "tag after `:` is empty"),
        ("a:-x", "must start with"),
        ("a:x/y", "not a number"),
        ("a@sha256:123", "64 hex digits"),
        (
            "a@md5:0123456789abcdef0123456789abcdef",
            "unsupported digest algorithm",
        ),
        ("-a", "not a valid repository path component"),
        ("a-", "not a valid repository path component"),
        ("a..b", "not a valid repository path component"),
        ("a___b", "not a valid repository path component"),
        ("host:99999/a", "not a number from 0 to 65535"),
        ("host:/a", "not a number"),
        ("[::g]/a", "not an IPv6 address"),
        ("[::1/a", "no closing"),
        ("-bad.com/a", "not a valid registry host"),
        ("bad..com/a", "not a valid registry host"),
        (&long, "at most 255"),
        (&longtag, "at most 128"),
    ];
    for (input, needle) in cases {
        let err = Reference::parse(input).expect_err(input).to_string();
        assert!(err.contains(needle), "{input:?}: {err}");
        if !input.is_empty() {
            assert!(
                err.contains(input) || err.contains("digest"),
                "{input:?} named: {err}"
            );
        }
    }
}

#[test]
fn upper_case_message_suggests_the_fix() {
    let err = Reference::parse("ghcr.io/Acme/app:1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("lower case"), "{err}");
    assert!(err.contains("ghcr.io/acme/app:1"), "{err}");
}

#[test]
fn with_name_keeps_tag_and_digest() {
    let r = Reference::parse(&format!("quay.io/x/y:1@{D}")).unwrap();
    let t = r.with_name("reg:5000/p/quay.io/x/y").unwrap();
    assert_eq!(t.to_string(), format!("reg:5000/p/quay.io/x/y:1@{D}"));
}

#[test]
fn serde_round_trip() {
    let r = Reference::parse("nginx").unwrap();
    let j = serde_json::to_string(&r).unwrap();
    assert_eq!(j, "\"docker.io/library/nginx:latest\"");
    let back: Reference = serde_json::from_str(&j).unwrap();
    assert_eq!(back, r);
}

/// A generator of valid references, built from the grammar.
pub fn valid_reference() -> impl Strategy<Value = String> {
    let comp = "[a-z0-9]{1,6}(([._]|__|-{1,2})[a-z0-9]{1,6}){0,2}";
    let path = proptest::collection::vec(comp, 1..4).prop_map(|v| v.join("/"));
    let domain = prop_oneof![
        Just(None),
        Just(Some("docker.io".to_string())),
        Just(Some("localhost".to_string())),
        "[a-z][a-z0-9-]{0,8}[a-z0-9]\\.[a-z]{2,5}".prop_map(Some),
        ("[a-z][a-z0-9]{0,8}\\.[a-z]{2,5}", 1u16..65535)
            .prop_map(|(h, p)| Some(format!("{h}:{p}"))),
        (0u8..=255, 0u8..=255, 1u16..65535).prop_map(|(a, b, p)| Some(format!("10.{a}.{b}.1:{p}"))),
        Just(Some("[::1]:5000".to_string())),
    ];
    let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}");
    let digest = proptest::option::of("[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}")));
    (domain, path, tag, digest).prop_map(|(d, p, t, g)| {
        let mut s = match d {
            Some(d) => format!("{d}/{p}"),
            // Without a domain, a first component with a `.` would be read as one (Docker's rule).
            None => match p.split_once('/') {
                Some((first, rest)) => format!("{}/{rest}", first.replace('.', "-")),
                None => p,
            },
        };
        if let Some(t) = t {
            s.push(':');
            s.push_str(&t);
        }
        if let Some(g) = g {
            s.push('@');
            s.push_str(&g);
        }
        s
    })
}

proptest! {
    #[test]
    fn valid_references_round_trip(s in valid_reference()) {
        let r = Reference::parse(&s).unwrap();
        let printed = r.to_string();
        prop_assert_eq!(Reference::parse(&printed).unwrap(), r.clone());
        prop_assert_eq!(Reference::parse(&printed).unwrap().to_string(), printed);
    }

    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,80}") {
        let _ = Reference::parse(&s);
    }

    #[test]
    fn arbitrary_reference_like_input_never_panics(s in "[a-zA-Z0-9:/@._\\[\\]-]{0,80}") {
        if let Ok(r) = Reference::parse(&s) {
            prop_assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        }
    }
}
