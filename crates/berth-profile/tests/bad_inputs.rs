//! A catalogue of bad inputs: each error names the culprit.

use berth_profile::*;

fn err(yaml: &str) -> (ProfileError, String) {
    let e = Profile::parse(yaml, "bad.yaml").unwrap_err();
    let m = e.to_string();
    (e, m)
}

#[test]
fn malformed_yaml() {
    let (e, m) = err("name: a\nlayers:\n  - name: x\n    type: os\n  values: [unclosed\n");
    assert!(matches!(e, ProfileError::Syntax { .. }), "{e:?}");
    assert!(m.starts_with("bad.yaml:"), "{m}");
    let (_, m) = err("name: \"unterminated\nlayers: []\n");
    assert!(m.starts_with("bad.yaml:"), "{m}");
}

#[test]
fn unknown_fields_have_line_and_column() {
    let (e, m) = err("name: a\nlayers:\n  - name: x\n    type: os\n    bogus: 1\n");
    match &e {
        ProfileError::Syntax { line, column, .. } => assert_eq!((*line, *column), (5, 5)),
        other => panic!("{other:?}"),
    }
    assert!(
        m.starts_with("bad.yaml:5:5: profile: unknown field `bogus`"),
        "{m}"
    );
    assert!(m.contains("layers.bogus"), "{m}");
    let (_, m) = err("name: a\nlabels: {}\n");
    assert!(m.starts_with("bad.yaml:2:1:"), "{m}");
    assert!(m.contains("unknown field `labels`"), "{m}");
    let (_, m) = err(
        "name: a\nlayers:\n  - name: x\n    type: addon\n    manifests:\n      - name: m\n        content: x\n        kind: y\n",
    );
    assert!(m.starts_with("bad.yaml:8:9:"), "{m}");
    assert!(m.contains("unknown field `kind`"), "{m}");
}

#[test]
fn unknown_field_in_json() {
    let (_, m) = err(r#"{"name": "a", "layers": [{"name": "x", "type": "os", "zzz": 1}]}"#);
    assert!(m.starts_with("bad.yaml:1:54:"), "{m}");
    assert!(m.contains("unknown field `zzz`"), "{m}");
    assert!(m.contains("(at `zzz`)"), "{m}");
}

#[test]
fn wrong_types_name_the_field() {
    let (_, m) = err("name: a\nlayers:\n  - name: [1]\n    type: os\n");
    assert!(m.starts_with("bad.yaml:3:11:"), "{m}");
    assert!(m.contains("layers.name"), "{m}");
    let (_, m) = err("name: a\nlayers: 5\n");
    assert!(m.starts_with("bad.yaml:2:9:"), "{m}");
    assert!(m.contains("`layers`"), "{m}");
    let (_, m) = err("name: a\nvariables: [1, 2]\n");
    assert!(m.contains("`variables`"), "{m}");
    let (_, m) = err("name: a\nsystem: 5\n");
    assert!(m.contains("`system` must be a mapping"), "{m}");
    let (_, m) = err("name: a\nlayers:\n  - name: x\n    type: os\n    values: [1, 2]\n");
    assert!(m.starts_with("bad.yaml:5:13: layer x: values:"), "{m}");
    assert!(m.contains("must be a YAML string"), "{m}");
    assert!(m.contains("found a list"), "{m}");
}

#[test]
fn missing_name() {
    let (_, m) = err("layers: []\n");
    assert!(m.contains("missing field `name`"), "{m}");
    let (_, m) = err("name: \"  \"\n");
    assert!(m.contains("profile name is empty"), "{m}");
}

#[test]
fn bad_layer_type() {
    let (_, m) = err("name: a\nlayers:\n  - name: x\n    type: network\n");
    assert!(m.starts_with("bad.yaml:4:11:"), "{m}");
    assert!(m.contains("network"), "{m}");
    assert!(m.contains("layers.type"), "{m}");
}

#[test]
fn duplicate_layers_and_variables() {
    let (_, m) = err("name: a\nlayers:\n  - {name: x, type: os}\n  - {name: x, type: addon}\n");
    assert!(m.contains("layer x") && m.contains("unique"), "{m}");
    let (_, m) = err("name: a\nvariables:\n  v: 1\n  v: 2\n");
    assert!(m.starts_with("bad.yaml:"), "{m}");
    let a = Profile::parse("name: a\nlayers:\n  - {name: x, type: os}\n", "a.yaml").unwrap();
    let b = Profile::parse("name: b\nlayers:\n  - {name: x, type: addon}\n", "b.yaml").unwrap();
    let m = extract_images(&[a, b]).unwrap_err().to_string();
    assert!(
        m.starts_with("b.yaml: layer x:") && m.contains("a.yaml"),
        "{m}"
    );
}

#[test]
fn malformed_values_and_manifests_are_errors_naming_the_layer() {
    let p = Profile::parse(
        "name: a\nlayers:\n  - name: x\n    type: addon\n    values: |\n      a: [1\n",
        "v.yaml",
    )
    .unwrap();
    let m = extract_images(&[p]).unwrap_err().to_string();
    assert!(
        m.starts_with("v.yaml:") && m.contains("layer x: values"),
        "{m}"
    );
    let p = Profile::parse(
        "name: a\nlayers:\n  - name: x\n    type: addon\n    manifests:\n      - name: dep\n        content: \"a: b: c\"\n",
        "v.yaml",
    )
    .unwrap();
    let m = lint(&[p]).unwrap_err().to_string();
    assert!(m.contains("layer x: manifest dep"), "{m}");
    let p = Profile::parse(
        "name: a\nlayers:\n  - name: k\n    type: k8s\n    values:\n      cluster:\n        config: \"a: [\"\n",
        "v.yaml",
    )
    .unwrap();
    let m = lint(&[p]).unwrap_err().to_string();
    assert!(m.contains("layer k: values cluster.config"), "{m}");
}

#[test]
fn scalars_keep_their_text() {
    let p = Profile::parse("name: a\nversion: 1.10\nvariables:\n  t: 1.20\n", "a.yaml").unwrap();
    assert_eq!(p.version.as_deref(), Some("1.10"));
    assert_eq!(p.variables, vec![("t".to_string(), "1.20".to_string())]);
}
