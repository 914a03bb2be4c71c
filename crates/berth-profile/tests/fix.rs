//! `fix_always_pull_images`: whole-file comparisons.

use berth_profile::*;

fn check(input: &str, expected: &str, file: &str, changes: &[(&str, &str)]) {
    let fix = fix_always_pull_images(input, file).unwrap();
    assert_eq!(fix.text, expected, "fixed text of {file}");
    let got: Vec<(&str, &str)> = fix
        .changes
        .iter()
        .map(|c| (c.layer.as_str(), c.path.as_str()))
        .collect();
    assert_eq!(got, changes);
    assert!(
        fix.changes
            .iter()
            .all(|c| c.rule == "always-pull-images" && c.file == file)
    );
    // The fixed file lints clean of always-pull-images, and fixing again changes nothing.
    let p = Profile::parse(&fix.text, file).unwrap();
    assert!(
        !lint(&[p])
            .unwrap()
            .iter()
            .any(|f| f.rule == "always-pull-images")
    );
    let again = fix_always_pull_images(&fix.text, file).unwrap();
    assert_eq!(again.text, fix.text);
    assert!(again.changes.is_empty());
}

const KUBEADM: &str =
    "cluster.config.clusterConfiguration.apiServer.extraArgs.enable-admission-plugins";

#[test]
fn kubeadm_string_form_keeps_comments_and_quotes() {
    check(
        include_str!("fixtures/fix-kubeadm.yaml"),
        include_str!("fixtures/fix-kubeadm.expected.yaml"),
        "store.yaml",
        &[("edge-k8s", KUBEADM)],
    );
}

#[test]
fn retail_example_first_token() {
    let input = include_str!("fixtures/retail-edge.yaml");
    let fix = fix_always_pull_images(input, "retail.yaml").unwrap();
    let want = input.replace(
        "enable-admission-plugins: AlwaysPullImages,NamespaceLifecycle,ServiceAccount,NodeRestriction",
        "enable-admission-plugins: NamespaceLifecycle,ServiceAccount,NodeRestriction",
    );
    assert_ne!(want, input);
    assert_eq!(fix.text, want);
    // The comment mentioning AlwaysPullImages is untouched.
    assert!(
        fix.text
            .contains("# AlwaysPullImages makes every pod start a remote pull")
    );
}

#[test]
fn mapping_form_last_token() {
    check(
        include_str!("fixtures/fix-mapping.yaml"),
        include_str!("fixtures/fix-mapping.expected.yaml"),
        "mapping.yaml",
        &[("k8s", KUBEADM)],
    );
}

#[test]
fn k3s_list_form() {
    check(
        include_str!("fixtures/fix-k3s.yaml"),
        include_str!("fixtures/fix-k3s.expected.yaml"),
        "k3s.yaml",
        &[("edge-k3s", "cluster.config.kube-apiserver-arg[1]")],
    );
}

#[test]
fn only_plugin_removes_the_line() {
    check(
        include_str!("fixtures/fix-only.yaml"),
        include_str!("fixtures/fix-only.expected.yaml"),
        "only.yaml",
        &[
            ("edge-k8s", KUBEADM),
            ("edge-rke2", "cluster.config.kube-apiserver-arg[0]"),
        ],
    );
}

#[test]
fn json_profiles() {
    check(
        include_str!("fixtures/fix-json.json"),
        include_str!("fixtures/fix-json.expected.json"),
        "p.json",
        &[
            ("edge-k8s", KUBEADM),
            ("edge-k8s-b", KUBEADM),
            ("edge-k8s-b", "cluster.config.kube-apiserver-arg[0]"),
            ("edge-k8s-c", "cluster.config.kube-apiserver-arg[1]"),
        ],
    );
}

#[test]
fn no_finding_leaves_bytes_unchanged() {
    for input in [
        include_str!("fixtures/fix-kubeadm.expected.yaml"),
        include_str!("fixtures/fix-only.expected.yaml"),
        include_str!("fixtures/fix-json.expected.json"),
        "name: x\r\nlayers: []\r\n",
    ] {
        let fix = fix_always_pull_images(input, "x.yaml").unwrap();
        assert_eq!(fix.text.as_bytes(), input.as_bytes());
        assert!(fix.changes.is_empty());
    }
}

#[test]
fn token_matching_is_exact_and_repeats_are_removed() {
    let input = "name: t\nlayers:\n  - name: k\n    type: k8s\n    values:\n      cluster:\n        config:\n          kube-apiserver-arg:\n            - enable-admission-plugins=AlwaysPullImagesX,AlwaysPullImages,A,AlwaysPullImages\n";
    let fix = fix_always_pull_images(input, "t.yaml").unwrap();
    assert_eq!(
        fix.text,
        input.replace(
            "=AlwaysPullImagesX,AlwaysPullImages,A,AlwaysPullImages",
            "=AlwaysPullImagesX,A"
        )
    );
}

#[test]
fn flow_form_only_plugin_is_refused_not_mangled() {
    let input = "name: t\nlayers:\n  - name: k\n    type: k8s\n    values:\n      cluster:\n        config: {kube-apiserver-arg: [enable-admission-plugins=AlwaysPullImages]}\n";
    let e = fix_always_pull_images(input, "t.yaml").unwrap_err();
    let m = e.to_string();
    assert!(
        m.starts_with("t.yaml: cannot fix AlwaysPullImages automatically:"),
        "{m}"
    );
    assert!(m.contains("by hand"), "{m}");
}

#[test]
fn invalid_profile_is_an_error() {
    let e = fix_always_pull_images("name: a\nbogus: 1\n", "a.yaml").unwrap_err();
    assert!(e.to_string().contains("unknown field `bogus`"));
}

#[test]
fn non_ascii_text_before_the_layer() {
    let input = "# Profil für die Filiale — ünïcödé\nname: t\nlayers:\n  - name: ös\n    type: os\n    values: {note: \"enable-admission-plugins=AlwaysPullImages,B — ü\"}\n  - name: k\n    type: k8s\n    values:\n      cluster:\n        config:\n          kube-apiserver-arg:\n            - enable-admission-plugins=A,AlwaysPullImages,B # ü\n";
    let fix = fix_always_pull_images(input, "t.yaml").unwrap();
    assert_eq!(
        fix.text,
        input.replace("=A,AlwaysPullImages,B # ü", "=A,B # ü")
    );
}
