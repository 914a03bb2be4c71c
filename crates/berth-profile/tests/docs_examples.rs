//! docs/profile-format.md, read as `berth images` and `berth lint` read profiles, so the
//! document cannot drift from the code: every profile example parses and renders, the complete
//! example is examples/retail-edge.yaml and yields the table under it, the AlwaysPullImages
//! forms are found and fixed, and every ```yaml refused block gives, word for word, the error
//! in the ```text block after it.

use berth_profile::{
    Finding, ImageUse, Profile, Severity, Value, extract_images, fix_always_pull_images, lint,
};

const DOC: &str = include_str!("../../../docs/profile-format.md");
const EXAMPLE: &str = include_str!("../../../examples/retail-edge.yaml");

/// A fenced block: its info string (`yaml`, `yaml refused`, `json`, `text`, ...), its text and
/// the line of the doc it starts on.
struct Block {
    info: String,
    text: String,
    line: usize,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        match &mut open {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    open = Some(Block {
                        info: info.trim().to_string(),
                        text: String::new(),
                        line: i + 1,
                    });
                } else {
                    assert!(
                        !line.trim_start().starts_with("```"),
                        "docs/profile-format.md:{}: indented fence",
                        i + 1
                    );
                }
            }
            Some(b) => {
                if line == "```" {
                    out.extend(open.take());
                } else {
                    b.text.push_str(line);
                    b.text.push('\n');
                }
            }
        }
    }
    assert!(
        open.is_none(),
        "docs/profile-format.md: a fence is not closed"
    );
    out
}

/// Whether a block is a whole profile: YAML whose first line that is not a comment is
/// `name: ...`, or JSON.
fn is_profile(b: &Block) -> bool {
    match b.info.as_str() {
        "json" => b.text.trim_start().starts_with('{'),
        "yaml" => b
            .text
            .lines()
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .is_some_and(|l| l.starts_with("name:")),
        _ => false,
    }
}

fn parse(b: &Block, file: &str) -> Profile {
    Profile::parse(&b.text, file).unwrap_or_else(|e| {
        panic!(
            "docs/profile-format.md:{}: the example does not parse:\n{e}",
            b.line
        )
    })
}

fn images(b: &Block) -> Vec<ImageUse> {
    extract_images(&[parse(b, "doc.yaml")])
        .unwrap_or_else(|e| {
            panic!(
                "docs/profile-format.md:{}: the example does not render:\n{e}",
                b.line
            )
        })
        .images
}

fn rules(findings: &[Finding]) -> Vec<(String, Severity, String)> {
    findings
        .iter()
        .map(|f| (f.rule.clone(), f.severity, f.layer.clone()))
        .collect()
}

fn profile_blocks() -> Vec<Block> {
    blocks(DOC).into_iter().filter(is_profile).collect()
}

#[test]
fn every_profile_example_parses_and_renders() {
    let examples = profile_blocks();
    assert!(
        examples.len() >= 3,
        "found {} profile examples",
        examples.len()
    );
    for b in &examples {
        let p = parse(b, "doc.yaml");
        assert!(!p.layers.is_empty());
        assert!(
            !images(b).is_empty(),
            "docs/profile-format.md:{}: no image found",
            b.line
        );
        let findings = lint(&[p]).unwrap();
        assert!(
            findings
                .iter()
                .all(|f| f.rule != "invalid-reference" && f.rule != "unrendered-template"),
            "docs/profile-format.md:{}: {findings:?}",
            b.line
        );
    }
}

#[test]
fn the_complete_example_is_examples_retail_edge() {
    let b = profile_blocks()
        .into_iter()
        .find(|b| b.text.contains("name: retail-edge"))
        .expect("the complete example");
    let doc = parse(&b, "retail-edge.yaml");
    let file = Profile::parse(EXAMPLE, "retail-edge.yaml").unwrap();
    let (doc_x, file_x) = (
        extract_images(std::slice::from_ref(&doc)).unwrap(),
        extract_images(std::slice::from_ref(&file)).unwrap(),
    );
    assert_eq!(
        doc_x, file_x,
        "the doc's example finds other images than examples/retail-edge.yaml"
    );
    assert_eq!(lint(&[doc]).unwrap(), lint(&[file]).unwrap());
}

/// The table under the complete example: role, layer and image of each row, in order.
#[test]
fn the_table_of_the_complete_example() {
    let b = profile_blocks()
        .into_iter()
        .find(|b| b.text.contains("name: retail-edge"))
        .unwrap();
    let found = images(&b);
    let start = DOC
        .find("Berth finds nine images in it:")
        .expect("the sentence before the table");
    let rows: Vec<Vec<String>> = DOC[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect();
    assert_eq!(found.len(), 9, "the doc says nine");
    assert_eq!(rows.len(), found.len(), "one row per image");
    for (row, img) in rows.iter().zip(&found) {
        let role = serde_json::to_value(img.role).unwrap();
        assert_eq!(row[0], role.as_str().unwrap(), "{row:?}");
        assert_eq!(row[1], img.layer, "{row:?}");
        let source = img.source.to_string();
        match row[2].split_once('…') {
            Some((head, tail)) => assert!(
                source.starts_with(head) && source.ends_with(tail),
                "{row:?} vs {source}"
            ),
            None => assert_eq!(row[2], source),
        }
        let place = img.found_in[0]
            .split(": layer ")
            .nth(1)
            .and_then(|s| s.split_once(": "))
            .map(|(_, p)| p)
            .unwrap();
        assert!(row[3].starts_with(place), "{row:?}: found in {place}");
    }
    // The sentence after the table: one error, three warnings.
    let findings = lint(&[parse(&b, "retail-edge.yaml")]).unwrap();
    assert_eq!(
        rules(&findings),
        vec![
            (
                "always-pull-images".into(),
                Severity::Error,
                "edge-k8s".into()
            ),
            (
                "image-not-listed".into(),
                Severity::Warning,
                "retail-app".into()
            ),
            (
                "image-not-listed".into(),
                Severity::Warning,
                "retail-app".into()
            ),
            (
                "image-not-listed".into(),
                Severity::Warning,
                "cni-calico".into()
            ),
        ]
    );
}

#[test]
fn the_add_on_and_json_examples() {
    let all = profile_blocks();
    let monitoring = all
        .iter()
        .find(|b| b.text.contains("name: monitoring"))
        .expect("the add-on example");
    let names: Vec<String> = images(monitoring)
        .iter()
        .map(|i| i.source.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "quay.io/prometheus/prometheus:v2.53.0",
            "quay.io/prometheus/node-exporter:v1.8.1",
            "quay.io/prometheus-operator/prometheus-config-reloader:v0.74.0",
        ]
    );
    let json = all
        .iter()
        .find(|b| b.info == "json")
        .expect("the JSON example");
    let names: Vec<String> = images(json).iter().map(|i| i.source.to_string()).collect();
    assert_eq!(
        names,
        [
            "registry.k8s.io/kube-apiserver:v1.29.4",
            "docker.io/flannel/flannel:v0.25.1"
        ]
    );
    // Given together: the listed images of every layer in order, first file first, then the
    // images of manifests, then those of values.
    let retail = all
        .iter()
        .find(|b| b.text.contains("name: retail-edge"))
        .unwrap();
    let both = extract_images(&[
        parse(retail, "infra.yaml"),
        parse(monitoring, "monitoring.yaml"),
    ])
    .unwrap();
    assert_eq!(both.images.len(), 12);
    let order: Vec<String> = both.images.iter().map(|i| i.source.to_string()).collect();
    assert_eq!(order[5], "docker.io/calico/node:v3.27.2");
    assert_eq!(order[6], "quay.io/prometheus/prometheus:v2.53.0");
    assert_eq!(order[8], "ghcr.io/acme/pos-migrate:2.4.1");
    assert_eq!(
        order[11],
        "quay.io/prometheus-operator/prometheus-config-reloader:v0.74.0"
    );
}

/// The `cluster:` fragments of the AlwaysPullImages section: each, as the values of a k8s
/// layer, is an `always-pull-images` error that `--fix` removes.
#[test]
fn always_pull_images_forms_are_found_and_fixed() {
    let fragments: Vec<Block> = blocks(DOC)
        .into_iter()
        .filter(|b| b.info == "yaml" && b.text.starts_with("cluster:"))
        .collect();
    assert_eq!(fragments.len(), 2, "the kubeadm and the k3s form");
    for b in &fragments {
        let indented: String = b.text.lines().map(|l| format!("      {l}\n")).collect();
        let text = format!(
            "name: fragment\nlayers:\n  - name: k8s\n    type: k8s\n    version: 1.29.4\n    values: |\n{indented}"
        );
        let p = Profile::parse(&text, "fragment.yaml").unwrap();
        assert_eq!(
            rules(&lint(&[p]).unwrap()),
            vec![("always-pull-images".into(), Severity::Error, "k8s".into())],
            "docs/profile-format.md:{}",
            b.line
        );
        let fixed = fix_always_pull_images(&text, "fragment.yaml").unwrap();
        assert_eq!(fixed.changes.len(), 1);
        assert!(!fixed.text.contains("AlwaysPullImages"));
        assert!(
            lint(&[Profile::parse(&fixed.text, "fragment.yaml").unwrap()])
                .unwrap()
                .is_empty()
        );
    }
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
        let expected = all.get(i + 1).filter(|n| n.info == "text").unwrap_or_else(|| {
            panic!(
                "docs/profile-format.md:{}: a refused example needs a ```text block with its error right after it",
                b.line
            )
        });
        let err = match Profile::parse(&b.text, "profile.yaml").and_then(|p| extract_images(&[p])) {
            Ok(_) => panic!(
                "docs/profile-format.md:{}: the doc says this is refused, but it is read",
                b.line
            ),
            Err(e) => e.to_string(),
        };
        if err.trim_end() != expected.text.trim_end() {
            differ.push(format!(
                "docs/profile-format.md:{}: the doc says\n{}\nBerth says\n{}\n",
                expected.line,
                expected.text.trim_end(),
                err.trim_end()
            ));
        }
        checked += 1;
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(checked >= 3, "found {checked} refused examples");
}

/// `Value` is public: the doc's JSON example holds `values` as an object, which stays a mapping.
#[test]
fn json_values_may_be_an_object() {
    let json = profile_blocks()
        .into_iter()
        .find(|b| b.info == "json")
        .unwrap();
    let p = parse(&json, "p.json");
    match &p.layers[1].values {
        Some(berth_profile::Values::Mapping(Value::Map(_))) => {}
        other => panic!("{other:?}"),
    }
}
