use super::*;
use proptest::prelude::*;

const CA1: &str = include_str!("../tests/fixtures/ca1.pem");
const CA2: &str = include_str!("../tests/fixtures/ca2.pem");

fn indent(s: &str, n: usize) -> String {
    s.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(n)))
        .collect()
}

fn parse(text: &str) -> Result<UserData, UserDataError> {
    UserData::parse(text, "user-data.yaml")
}

#[test]
fn single_registry_prepend() {
    let ud = parse(
        "#cloud-config\ninstall:\n  poweroff: true\nstylus:\n  site:\n    name: x\n  registryCredentials:\n    domain: 10.10.254.254:8000/spectro-images/\n    username: ubuntu\n    password: s3cret\n    insecure: true\n",
    )
    .unwrap();
    assert_eq!(
        ud.redirect,
        Redirect::Prepend {
            domain: "10.10.254.254:8000/spectro-images".into()
        }
    );
    let r = &ud.registries[0];
    assert_eq!(r.domain, "10.10.254.254:8000/spectro-images");
    assert_eq!(r.host(), "10.10.254.254:8000");
    assert_eq!(r.username, "ubuntu");
    assert_eq!(r.password.expose(), "s3cret");
    assert!(r.insecure);
    assert_eq!(
        ud.webhook,
        Webhook {
            enable: true,
            port: 0
        }
    );
}

#[test]
fn external_registries_with_rules_certs_and_encoded_password() {
    let text = format!(
        "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: \"registry.example.com/palette-images\"\n        username: admin\n        password: czNjcmV0\n        encodedPassword: true\n        repositoryName: example-repository-private\n        certificates:\n          - |\n{}          - |\n{}      - domain: other.example.com\n        certificates: |\n{}    registryMappingRules:\n      \"us-docker.pkg.dev/palette-images\": \"registry.example.com/palette-images\"\n      \"gcr.io/spectro-images-public/\": \"registry.example.com/palette-images\"\n  imageRedirectWebhook:\n    enable: false\n    port: 8443\n",
        indent(CA1, 12),
        indent(CA2, 12),
        indent(&format!("{CA1}{CA2}"), 10),
    );
    let ud = parse(&text).unwrap();
    assert_eq!(ud.registries.len(), 2);
    let r = &ud.registries[0];
    assert_eq!(r.password.expose(), "s3cret");
    assert_eq!(r.repository_name, "example-repository-private");
    assert_eq!(r.certificates.len(), 2);
    assert_eq!(
        ud.registries[1].certificates.len(),
        2,
        "a scalar bundle of two"
    );
    assert_eq!(
        ud.redirect,
        Redirect::Mapping {
            rules: vec![
                MappingRule {
                    source: "gcr.io/spectro-images-public".into(),
                    target: "registry.example.com/palette-images".into()
                },
                MappingRule {
                    source: "us-docker.pkg.dev/palette-images".into(),
                    target: "registry.example.com/palette-images".into()
                },
            ]
        }
    );
    assert_eq!(
        ud.webhook,
        Webhook {
            enable: false,
            port: 8443
        }
    );
    assert_eq!(
        ud.registry_for("registry.example.com/palette-images/x")
            .map(|r| r.field.as_str()),
        Some("stylus.externalRegistries.registries[0]")
    );
    assert!(
        ud.registry_for("registry.example.com/palette-imagesX/x")
            .is_none()
    );
    assert_eq!(
        ud.registry_for("other.example.com/a")
            .map(|r| r.domain.as_str()),
        Some("other.example.com")
    );
}

#[test]
fn longest_domain_prefix_wins() {
    let ud = parse("#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: reg.io\n        username: a\n      - domain: reg.io/team/sub\n        username: c\n      - domain: reg.io/team\n        username: b\n").unwrap();
    let who = |n: &str| ud.registry_for(n).map(|r| r.username.clone());
    assert_eq!(who("reg.io/team/sub/x").as_deref(), Some("c"));
    assert_eq!(who("reg.io/team/x").as_deref(), Some("b"));
    assert_eq!(who("reg.io/teamx/x").as_deref(), Some("a"));
    assert_eq!(who("other.io/x"), None);
    assert_eq!(
        ud.redirect,
        Redirect::None,
        "registries without rules redirect nothing"
    );
}

#[test]
fn no_stylus_section_means_no_redirect() {
    let ud = parse("#cloud-config\nusers:\n  - name: kairos\n").unwrap();
    assert_eq!(ud.redirect, Redirect::None);
    assert!(ud.registries.is_empty());
    assert!(ud.webhook.enable);
}

/// Bad inputs: each message names the file and the culprit, and no secret.
#[test]
fn bad_inputs_name_the_culprit() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("stylus: {}\n".into(), vec!["user-data.yaml", "#cloud-config"]),
        (
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: x.io\n    insecre: true\n".into(),
            vec!["user-data.yaml:5:5", "unknown field `insecre`", "insecure"],
        ),
        (
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: x.io\n    insecure: maybe\n".into(),
            vec!["user-data.yaml:5:15", "boolean"],
        ),
        (
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: x.io\n    password: hunter2\n  externalRegistries:\n    registries: []\n".into(),
            vec!["mutually exclusive", "registryCredentials", "externalRegistries"],
        ),
        (
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: x.io\n    password: 'not base64!'\n    encodedPassword: true\n".into(),
            vec!["stylus.registryCredentials.password", "base64"],
        ),
        (
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: x.io\n        certificates: \"-----BEGIN CERTIFICATE-----\\nnope\\n-----END CERTIFICATE-----\\n\"\n".into(),
            vec!["stylus.externalRegistries.registries[0].certificates[0]", "certificate"],
        ),
        (
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: x.io\n        certificates: [\"just text\"]\n".into(),
            vec!["certificates[0]", "BEGIN CERTIFICATE"],
        ),
        (
            "#cloud-config\nstylus:\n  registryCredentials:\n    username: u\n".into(),
            vec!["stylus.registryCredentials.domain", "empty"],
        ),
        (
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: https://x.io\n".into(),
            vec!["stylus.registryCredentials.domain", "scheme"],
        ),
        (
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: x.io/Palette\n".into(),
            vec!["stylus.registryCredentials.domain", "Palette"],
        ),
        (
            "#cloud-config\nstylus:\n  externalRegistries:\n    registryMappingRules:\n      \"gcr.io/x\": \"bad host!/y\"\n".into(),
            vec!["registryMappingRules[\"gcr.io/x\"]", "target"],
        ),
        (
            "#cloud-config\nstylus:\n  externalRegistries:\n    registryMappingRules:\n      \"gcr.io/x\": a.io\n      \"gcr.io/x/\": b.io\n".into(),
            vec!["gcr.io/x", "twice"],
        ),
        (
            "#cloud-config\nstylus:\nexternalRegistries:\n  registries: []\n".into(),
            vec!["externalRegistries", "under `stylus:`"],
        ),
        (
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: x.io\n    password: [hunter2\n".into(),
            vec!["user-data.yaml:5"],
        ),
        (
            "#cloud-config\nstylus:\n  imageRedirectWebhook:\n    enable: true\n    port: 70000\n".into(),
            vec!["user-data.yaml:5"],
        ),
        (
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: a.io\n        usename: x\n".into(),
            vec!["user-data.yaml:6:9", "usename"],
        ),
        (
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: a.io\n    pasword: hunter2\n".into(),
            vec!["user-data.yaml:5:5", "pasword", "<redacted>"],
        ),
        (
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: a.io\n        passwd: hunter2\n".into(),
            vec!["passwd"],
        ),
    ];
    for (text, needles) in cases {
        let err = parse(&text).expect_err(&text).to_string();
        for n in needles {
            assert!(
                err.contains(n),
                "expected `{n}` in:\n{err}\n--- for ---\n{text}"
            );
        }
        assert!(!err.contains("hunter2"), "secret leaked:\n{err}");
    }
}

#[test]
fn secrets_never_show() {
    let ud = parse(
        "#cloud-config\nstylus:\n  registryCredentials:\n    domain: x.io\n    password: hunter2\n",
    )
    .unwrap();
    assert!(!format!("{ud:?}").contains("hunter2"));
    let json = serde_json::to_string(&ud).unwrap();
    assert!(!json.contains("hunter2"), "{json}");
    assert!(json.contains("<redacted>"));
}

#[test]
fn prefixes() {
    assert_eq!(prefix("index.docker.io/x/").unwrap(), "docker.io/x");
    assert_eq!(prefix("[::1]:5000/p").unwrap(), "[::1]:5000/p");
    assert!(prefix("a.io//b").is_err());
    assert!(is_under("a.io/b/c", "a.io/b"));
    assert!(is_under("a.io/b", "a.io/b"));
    assert!(!is_under("a.io/bc", "a.io/b"));
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = parse(&format!("#cloud-config\n{s}"));
        let _ = parse(&s);
    }

    #[test]
    fn arbitrary_yaml_like_text_never_panics(s in "[a-zA-Z:{}\\[\\] \\n\\-\"'|#&*!0-9]{0,200}") {
        let _ = parse(&format!("#cloud-config\nstylus:\n  {s}"));
    }
}

#[test]
fn misspelt_sections_are_errors_that_name_the_right_key() {
    let e =
        parse("#cloud-config\nstylys:\n  registryCredentials:\n    domain: a.io\n").unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("stylys") && m.contains("did you mean `stylus`"),
        "{m}"
    );
    let e = parse("#cloud-config\nstylus:\n  externalRegistry:\n    registries: []\n").unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("stylus.externalRegistry") && m.contains("did you mean `externalRegistries`"),
        "{m}"
    );
    let e =
        parse("#cloud-config\nstylus:\n  RegistryCredentials:\n    domain: a.io\n").unwrap_err();
    assert!(
        e.to_string().contains("did you mean `registryCredentials`"),
        "{e}"
    );
    let e = parse("#cloud-config\nexternalRegistry:\n  registries: []\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("did you mean `stylus.externalRegistries`"),
        "{e}"
    );
    // Other keys of a cloud-config, and of stylus, are left alone.
    let u = parse(
        "#cloud-config\nusers:\n  - name: kairos\nstatus: 1\nstylus:\n  site:\n    name: s\n  debug: true\n",
    )
    .unwrap();
    assert!(u.is_empty());
}

#[test]
fn certificates_under_registry_credentials_says_where_a_ca_goes() {
    let e = parse(
        "#cloud-config\nstylus:\n  registryCredentials:\n    domain: a.io\n    certificates: |\n      -----BEGIN CERTIFICATE-----\n",
    )
    .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("stylus.registryCredentials.certificates")
            && m.contains("stylus.externalRegistries.registries[]")
            && !m.contains("cert dir"),
        "{m}"
    );
}

#[test]
fn user_data_without_registry_settings_is_empty() {
    assert!(
        parse("#cloud-config\nstylus:\n  site: {}\n")
            .unwrap()
            .is_empty()
    );
    assert!(
        !parse("#cloud-config\nstylus:\n  registryCredentials:\n    domain: a.io/p\n")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_example_user_data_has_registry_settings() {
    let ud = UserData::example().unwrap();
    assert!(ud.why_empty().is_none());
    assert_eq!(ud.file, "<example user data>");
}
