//! Property tests (never panic) and scale.

use berth_profile::*;
use proptest::prelude::*;

const RETAIL: &str = include_str!("fixtures/retail-edge.yaml");

fn exercise(text: &str) {
    if let Ok(p) = Profile::parse(text, "fuzz.yaml") {
        let _ = extract_images(std::slice::from_ref(&p));
        let _ = lint(std::slice::from_ref(&p));
    }
    let _ = fix_always_pull_images(text, "fuzz.yaml");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
        exercise(&s);
    }

    #[test]
    fn yamlish_text_never_panics(s in "(name: a\nlayers:\n  - name: [a-z]{1,3}\n    type: (os|k8s|addon)\n    values: \\|\n      [ a-z:{}.\\-\\[\\],\"'#|\n]{0,120})") {
        exercise(&s);
    }

    #[test]
    fn mutated_fixture_never_panics(pos in 0usize..4000, len in 0usize..40, insert in "[ {}:.\\-\"'\n\\[\\]#a-zA-Z,|]{0,12}") {
        let mut t = RETAIL.to_string();
        let start = pos.min(t.len());
        let start = (0..=start).rev().find(|&i| t.is_char_boundary(i)).unwrap();
        let end = (start + len).min(t.len());
        let end = (end..=t.len()).find(|&i| t.is_char_boundary(i)).unwrap();
        t.replace_range(start..end, &insert);
        exercise(&t);
    }

    #[test]
    fn macro_soup_never_panics(vals in proptest::collection::vec("(\\{\\{ ?\\.spectro\\.(pack\\.os\\.options\\.[ab]|var\\.v|system\\.x)? ?\\}\\}|[a-z/:]{0,4}|\\{\\{|\\}\\})", 0..8)) {
        let a = vals.concat();
        let text = format!(
            "name: p\nvariables:\n  v: \"{}\"\nlayers:\n  - name: os\n    type: os\n    values:\n      options:\n        a: \"{}\"\n        b: \"{}\"\n      image: \"{}\"\n",
            a.replace('"', ""), a.replace('"', ""), a.replace('"', ""), a.replace('"', "")
        );
        exercise(&text);
    }
}

#[test]
fn large_generated_profile() {
    let text = generate_large_profile(200, 10);
    let p = Profile::parse(&text, "big.yaml").unwrap();
    assert_eq!(p.layers.len(), 200);
    let x = extract_images(std::slice::from_ref(&p)).unwrap();
    assert!(x.findings.is_empty(), "{:?}", &x.findings[..1]);
    assert_eq!(x.images.len(), 2000);
    assert!(x.images.iter().all(|i| i.listed && i.found_in.len() == 1));
    assert_eq!(x.images[0].role, Role::Provider);
    assert_eq!(x.images[10].role, Role::Core);
    assert_eq!(x.images[20].role, Role::Infra);
    assert_eq!(x.images[1999].role, Role::Addon);
    assert_eq!(x.images[1].source.to_string(), "quay.io/team-0/svc-1:1.0");
    assert_eq!(x.images[2].source.to_string(), "ghcr.io/org/l0-i2:1.30.1");
    let findings = lint(&[p]).unwrap();
    assert!(findings.is_empty(), "{:?}", &findings[..1]);
}
