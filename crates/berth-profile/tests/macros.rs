//! Macro rendering.

use berth_profile::*;

fn images(yaml: &str) -> Result<Vec<String>, ProfileError> {
    let p = Profile::parse(yaml, "p.yaml")?;
    let x = extract_images(&[p])?;
    assert!(x.findings.is_empty(), "{:?}", x.findings);
    Ok(x.images.iter().map(|i| i.source.to_string()).collect())
}

fn one_layer(values: &str) -> String {
    let indented: String = values.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "name: t\nvariables:\n  tag: \"1.20\"\n  base: \"{{{{.spectro.var.reg}}}}/base\"\n  reg: r.example.com\nlayers:\n  - name: k\n    type: k8s\n    version: 1.30.2\n  - name: os\n    type: os\n    values: |\n{indented}"
    )
}

#[test]
fn nested_macros_with_and_without_spaces() {
    let y = one_layer(
        "pack:\n  content:\n    images:\n      - image: \"{{.spectro.pack.os.options.uri}}\"\noptions:\n  uri: \"{{ .spectro.pack.os.options.registry }}/os:{{.spectro.pack.os.options.ver}}\"\n  registry: \"{{  .spectro.var.reg  }}\"\n  ver: v{{.spectro.system.kubernetes.version}}",
    );
    assert_eq!(images(&y).unwrap(), vec!["r.example.com/os:v1.30.2"]);
}

#[test]
fn variables_may_hold_macros_and_keep_their_text() {
    let y = one_layer(
        "pack:\n  content:\n    images:\n      - image: \"{{.spectro.var.base}}:{{.spectro.var.tag}}\"",
    );
    assert_eq!(images(&y).unwrap(), vec!["r.example.com/base:1.20"]);
}

#[test]
fn dotted_keys_nesting_and_literal_key_wins() {
    let y = one_layer(
        "pack:\n  content:\n    images:\n      - image: \"{{.spectro.pack.os.options.system.uri}}\"\n      - image: \"{{.spectro.pack.os.options.deep.a.b}}\"\noptions:\n  system.uri: literal.example.com/os:1\n  system:\n    uri: nested.example.com/os:1\n  deep:\n    a.b: dotted.example.com/x:2",
    );
    assert_eq!(
        images(&y).unwrap(),
        vec!["literal.example.com/os:1", "dotted.example.com/x:2"]
    );
    let y = one_layer(
        "pack:\n  content:\n    images:\n      - image: \"{{.spectro.pack.os.options.system.uri}}\"\noptions:\n  system:\n    uri: nested.example.com/os:1",
    );
    assert_eq!(images(&y).unwrap(), vec!["nested.example.com/os:1"]);
}

#[test]
fn system_version_defaults_to_k8s_layer_and_system_map_wins() {
    let y = one_layer(
        "pack:\n  content:\n    images:\n      - image: \"k8s.example.com/x:{{.spectro.system.kubernetes.version}}\"",
    );
    assert_eq!(images(&y).unwrap(), vec!["k8s.example.com/x:1.30.2"]);
    let y = y.replacen(
        "layers:",
        "system:\n  kubernetes:\n    version: 1.31.0\n  cluster:\n    uid: abc\nlayers:",
        1,
    );
    let y = y.replace(
        "x:{{.spectro.system.kubernetes.version}}",
        "x-{{.spectro.system.cluster.uid}}:{{.spectro.system.kubernetes.version}}",
    );
    assert_eq!(images(&y).unwrap(), vec!["k8s.example.com/x-abc:1.31.0"]);
}

#[test]
fn unquoted_macro_renders_before_yaml_parsing() {
    // `image: {{...}}` is a flow mapping to YAML; Palette renders first, so must we.
    let y = one_layer(
        "pack:\n  content:\n    images:\n      - image: {{.spectro.pack.os.options.uri}}\noptions:\n  uri: quay.io/a/b:1",
    );
    assert_eq!(images(&y).unwrap(), vec!["quay.io/a/b:1"]);
}

#[test]
fn mapping_values_and_manifests_are_rendered() {
    let y = r#"
name: t
variables: {tag: "7"}
layers:
  - name: a
    type: addon
    values:
      options: {reg: "quay.io"}
      charts:
        x:
          image: {registry: "{{.spectro.pack.a.options.reg}}", repository: "o/x", tag: "{{.spectro.var.tag}}"}
    manifests:
      - name: m
        content: |
          kind: Pod
          metadata: {name: p}
          spec: {containers: [{name: c, image: "{{.spectro.pack.a.options.reg}}/o/y:{{ .spectro.var.tag }}"}]}
"#;
    assert_eq!(images(y).unwrap(), vec!["quay.io/o/y:7", "quay.io/o/x:7"]);
}

#[test]
fn cycle_error_names_layer_key_and_chain() {
    let y = one_layer(
        "pack:\n  content:\n    images:\n      - image: \"{{.spectro.pack.os.options.a}}\"\noptions:\n  a: \"x{{.spectro.pack.os.options.b}}\"\n  b: \"{{.spectro.pack.os.options.a}}\"",
    );
    let e = images(&y).unwrap_err();
    assert!(matches!(e, ProfileError::Macro { .. }), "{e:?}");
    let m = e.to_string();
    assert!(
        m.starts_with("p.yaml: layer os: values: macro cycle:"),
        "{m}"
    );
    assert!(
        m.contains("layer os option `a` → layer os option `b` → layer os option `a`"),
        "{m}"
    );
}

#[test]
fn unknown_option_names_layer_and_key() {
    let y = one_layer(
        "pack:\n  content:\n    images:\n      - image: \"{{.spectro.pack.os.options.uri}}\"\noptions:\n  uri: \"{{.spectro.pack.os.options.missing.key}}/x\"",
    );
    let m = images(&y).unwrap_err().to_string();
    assert!(m.contains("layer os has no option `missing.key`"), "{m}");
    assert!(m.contains("under `options:`"), "{m}");
}

#[test]
fn unknown_layer_variable_system_and_form_errors() {
    let cases = [
        ("{{.spectro.pack.nope.options.k}}", "no layer named `nope`"),
        (
            "{{.spectro.var.undefined}}",
            "variable `undefined` is not defined",
        ),
        (
            "{{.spectro.system.cluster.name}}",
            "system `cluster.name` is not set",
        ),
        (
            "{{.spectro.cluster.uid}}",
            "unknown macro `{{.spectro.cluster.uid}}`",
        ),
        ("{{ .spectro.var.tag | quote }}", "unsupported macro"),
    ];
    for (mac, want) in cases {
        let y = one_layer(&format!(
            "pack:\n  content:\n    images:\n      - image: \"x/{mac}\""
        ));
        let m = images(&y).unwrap_err().to_string();
        assert!(m.starts_with("p.yaml: layer os: values:"), "{m}");
        assert!(m.contains(want), "{mac}: {m}");
    }
}

#[test]
fn non_scalar_option_is_an_error() {
    let y = one_layer(
        "pack:\n  content:\n    images:\n      - image: \"{{.spectro.pack.os.options.m}}\"\noptions:\n  m: {a: 1}",
    );
    let m = images(&y).unwrap_err().to_string();
    assert!(
        m.contains("option `m` of layer os is a mapping, not a scalar"),
        "{m}"
    );
}

#[test]
fn exponential_expansion_is_bounded() {
    let mut opts = String::from("options:\n  l0: \"aaaaaaaaaaaaaaaa\"\n");
    for i in 1..40 {
        let p = i - 1;
        opts.push_str(&format!(
            "  l{i}: \"{{{{.spectro.pack.os.options.l{p}}}}}{{{{.spectro.pack.os.options.l{p}}}}}\"\n"
        ));
    }
    let y = one_layer(&format!(
        "pack:\n  content:\n    images:\n      - image: \"{{{{.spectro.pack.os.options.l39}}}}\"\n{opts}"
    ));
    let m = images(&y).unwrap_err().to_string();
    assert!(m.contains("more than"), "{m}");
}

#[test]
fn helm_templates_are_left_alone() {
    let p = Profile::parse(
        "name: h\nlayers:\n  - name: a\n    type: addon\n    values:\n      note: \"{{ .Values.x }}\"\n      image: \"{{ .Values.img }}\"\n",
        "h.yaml",
    )
    .unwrap();
    let x = extract_images(&[p]).unwrap();
    assert!(x.images.is_empty());
    assert_eq!(x.findings.len(), 1);
    assert_eq!(x.findings[0].rule, "unrendered-template");
    assert_eq!(x.findings[0].path, "image");
}
