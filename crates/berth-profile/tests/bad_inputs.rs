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

/// A syntax error inside YAML embedded as a string (a `values: |` block, a `cluster.config`
/// block inside it, a manifest's content) gives the line and column of the profile file,
/// not of the embedded text.
#[test]
fn an_error_inside_an_embedded_block_gives_the_files_line() {
    let at = |e: &ProfileError| match e {
        ProfileError::Syntax { line, column, .. } => (*line, *column),
        other => panic!("{other:?}"),
    };
    // Line 12 of the file is line 5 of the values block; columns shift by its indent (6).
    let values = "name: a\nvariables:\n  tag: \"1\"\nlayers:\n  - name: x\n    type: addon\n    values: |\n      pack:\n        content:\n          images:\n            - image: \"nginx:{{.spectro.var.tag}}\"\n      broken: a: b\n";
    let p = Profile::parse(values, "v.yaml").unwrap();
    let e = extract_images(std::slice::from_ref(&p)).unwrap_err();
    let m = e.to_string();
    assert_eq!(at(&e).0, 12, "{m}");
    assert!(at(&e).1 > 6, "{m}");
    assert!(
        m.starts_with("v.yaml:12:")
            && m.contains("layer x: values")
            && !m.contains("counted inside"),
        "{m}"
    );
    // The same error is met before rendering (lint, --fix): the same line.
    let e = lint(std::slice::from_ref(&p)).unwrap_err();
    assert_eq!(at(&e).0, 12, "{e}");
    let e = fix_always_pull_images(values, "v.yaml").unwrap_err();
    assert_eq!(at(&e).0, 12, "{e}");

    // A `cluster.config` block inside the values block: the file's line 11.
    let nested = "name: a\nlayers:\n  - name: k\n    type: k8s\n    values: |\n      cluster:\n        config: |\n          kubeletArgs:\n            - a\n          apiServer:\n            extraArgs: a: b\n";
    let p = Profile::parse(nested, "k.yaml").unwrap();
    let e = lint(&[p]).unwrap_err();
    let m = e.to_string();
    assert_eq!(at(&e).0, 11, "{m}");
    assert!(m.contains("cluster.config"), "{m}");

    // A manifest's content: the file's line 8.
    let manifest = "name: a\nlayers:\n  - name: x\n    type: addon\n    manifests:\n      - name: dep\n        content: |\n          kind: Deployment\n          spec: a: b\n";
    let p = Profile::parse(manifest, "m.yaml").unwrap();
    let e = lint(&[p]).unwrap_err();
    assert_eq!(at(&e).0, 9, "{e}");

    // Where the text cannot be found as a block (JSON, a quoted string), the message says
    // that the line is counted inside it, and from which line of the file it starts.
    let quoted =
        "name: a\nlayers:\n  - name: x\n    type: addon\n    values: \"a: [1\\nb: 2\\n\"\n";
    let p = Profile::parse(quoted, "q.yaml").unwrap();
    let m = extract_images(&[p]).unwrap_err().to_string();
    assert!(
        m.contains("(from line 5 of the file)") && m.contains("counted inside it"),
        "{m}"
    );
}
