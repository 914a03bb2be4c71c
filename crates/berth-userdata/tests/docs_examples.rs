//! docs/user-data.md, read as Berth reads user data, so the document cannot drift from the
//! parser: every ```yaml block that starts with `#cloud-config` parses, the complete example
//! says what the text around it says, and every ```yaml refused block gives, word for word,
//! the error in the ```text block after it.

use berth_userdata::{MappingRule, Redirect, UserData};

const DOC: &str = include_str!("../../../docs/user-data.md");
const FILE: &str = "user-data.yaml";

/// A fenced block: its info string (`yaml`, `yaml refused`, `text`, ...), its text and the
/// line of the doc it starts on.
struct Block {
    info: String,
    text: String,
    line: usize,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (i, line) in doc.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let indent = line.len() - trimmed.len();
                    open = Some((info.trim().to_string(), i + 1, String::new()));
                    assert_eq!(indent, 0, "docs/user-data.md:{}: indented fence", i + 1);
                }
            }
            Some((info, start, text)) => {
                if trimmed == "```" {
                    out.push(Block {
                        info: std::mem::take(info),
                        text: std::mem::take(text),
                        line: *start,
                    });
                    open = None;
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "docs/user-data.md: a fence is not closed");
    out
}

fn parse(b: &Block) -> UserData {
    UserData::parse(&b.text, FILE).unwrap_or_else(|e| {
        panic!(
            "docs/user-data.md:{}: the example does not parse:\n{e}",
            b.line
        )
    })
}

#[test]
fn every_cloud_config_example_parses() {
    let examples: Vec<Block> = blocks(DOC)
        .into_iter()
        .filter(|b| b.info == "yaml" && b.text.starts_with("#cloud-config"))
        .collect();
    assert!(
        examples.len() >= 2,
        "found {} #cloud-config examples",
        examples.len()
    );
    for b in &examples {
        let ud = parse(b);
        assert!(
            !ud.is_empty(),
            "docs/user-data.md:{}: the example sets no registry",
            b.line
        );
    }
}

#[test]
fn the_single_registry_example_is_examples_user_data() {
    let example = include_str!("../../../examples/user-data.yaml");
    let from_doc = blocks(DOC)
        .into_iter()
        .find(|b| b.info == "yaml" && b.text.contains("registryCredentials:"))
        .expect("a registryCredentials example");
    assert_eq!(
        parse(&from_doc),
        UserData::parse(example, FILE).unwrap(),
        "the doc says its registryCredentials example is examples/user-data.yaml"
    );
    let ud = parse(&from_doc);
    assert_eq!(
        ud.redirect,
        Redirect::Prepend {
            domain: "10.10.254.254:8000/spectro-images".into()
        }
    );
    assert!(ud.registries[0].insecure);
}

#[test]
fn the_self_hosted_example() {
    let b = blocks(DOC)
        .into_iter()
        .find(|b| b.info == "yaml" && b.text.contains("encodedPassword: true"))
        .expect("the complete self-hosted example");
    let ud = parse(&b);
    assert_eq!(ud.registries.len(), 2);
    let (main, acme) = (&ud.registries[0], &ud.registries[1]);
    assert_eq!(main.domain, "registry.internal.example:5000/palette-images");
    assert_eq!(main.username, "edge-mirror");
    assert_eq!(
        main.password.expose(),
        "edge-S3cret!",
        "the doc says ZWRnZS1TM2NyZXQh is the base64 of edge-S3cret!"
    );
    assert_eq!(main.repository_name, "palette-images");
    assert!(!main.insecure);
    assert_eq!(main.certificates.len(), 1, "the list form: one PEM");
    assert_eq!(acme.domain, "registry.internal.example:5000/acme");
    assert_eq!(acme.username, "acme-ci");
    assert_eq!(acme.password.expose(), "acme-ci-token");
    assert_eq!(
        acme.certificates, main.certificates,
        "the scalar form holds the same CA"
    );
    let Redirect::Mapping { rules } = &ud.redirect else {
        panic!("mapping rules expected, got {:?}", ud.redirect);
    };
    assert_eq!(rules.len(), 7);
    assert!(rules.contains(&MappingRule {
        source: "ghcr.io/acme".into(),
        target: "registry.internal.example:5000/acme".into(),
    }));
    assert!(ud.webhook.enable);
    // The table's last column: which entry logs in for each target.
    let who = |name: &str| ud.registry_for(name).map(|r| r.field.clone());
    assert_eq!(
        who("registry.internal.example:5000/palette-images/k8s/kube-apiserver").as_deref(),
        Some("stylus.externalRegistries.registries[0]")
    );
    assert_eq!(
        who("registry.internal.example:5000/acme/pos-migrate").as_deref(),
        Some("stylus.externalRegistries.registries[1]")
    );
    assert_eq!(who("registry.internal.example:5000/other/x"), None);
    // The password is not in the parsed settings' Debug output.
    assert!(!format!("{ud:?}").contains("edge-S3cret!"));
}

#[test]
fn refused_examples_give_the_documented_error() {
    let all = blocks(DOC);
    let mut checked = 0;
    let mut differ = Vec::new();
    for (i, b) in all.iter().enumerate() {
        if b.info != "yaml refused" {
            continue;
        }
        let expected = all
            .get(i + 1)
            .filter(|n| n.info == "text")
            .unwrap_or_else(|| {
                panic!(
                    "docs/user-data.md:{}: a refused example needs a ```text block with its error right after it",
                    b.line
                )
            });
        let err = match UserData::parse(&b.text, FILE) {
            Ok(_) => panic!(
                "docs/user-data.md:{}: the doc says this is refused, but it parses",
                b.line
            ),
            Err(e) => e.to_string(),
        };
        assert!(
            !err.contains("edge-S3cret!"),
            "docs/user-data.md:{}: the error shows the password:\n{err}",
            b.line
        );
        if err.trim_end() != expected.text.trim_end() {
            differ.push(format!(
                "docs/user-data.md:{}: the doc says\n{}\nBerth says\n{}\n",
                expected.line,
                expected.text.trim_end(),
                err.trim_end()
            ));
        }
        checked += 1;
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(checked >= 5, "found {checked} refused examples");
}
