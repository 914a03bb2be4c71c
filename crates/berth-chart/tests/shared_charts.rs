//! Every real chart in `<repo>/../shared/charts/` rendered by Berth's renderer with its
//! default values (release `rel`, namespace `default`, kube v1.34.0): the Pod-template images
//! (`ImageScope::Pod`) must be exactly the chart's `expected-images.txt` (what `helm template`
//! renders). The runtime set (arguments, env, ConfigMaps, custom resources) is in
//! `runtime_images.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_chart::{ImageScope, Options, discover, fs::load_path, images_of, render};
use berth_testkit::helm::{
    Helm, Template, documents, documents_by_source, normalize_image, pod_images,
};
use berth_testkit::helm_cases::{CHARTS, KUBE_VERSION, NAMESPACE, RELEASE, cases, chart_dir};

fn options() -> Options {
    Options {
        release_name: RELEASE.into(),
        namespace: NAMESPACE.into(),
        kube_version: KUBE_VERSION.into(),
        images: ImageScope::Pod,
        ..Options::default()
    }
}

fn expected(dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join("expected-images.txt"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn rendered(dir: &Path, opts: &Options) -> Result<BTreeSet<String>, String> {
    let chart = load_path(dir).map_err(|e| e.to_string())?;
    let images = discover(&chart, opts).map_err(|e| e.to_string())?;
    Ok(images
        .iter()
        .map(|i| normalize_image(&i.reference))
        .collect())
}

/// Every chart with its folder.
fn chart_dirs() -> Vec<(String, PathBuf)> {
    CHARTS
        .iter()
        .map(|n| (n.to_string(), chart_dir(n)))
        .collect()
}

#[test]
fn every_chart_gives_its_expected_images() {
    let dirs = chart_dirs();
    for name in CHARTS {
        let (_, dir) = dirs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let got = rendered(dir, &options()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            got,
            expected(dir),
            "{name}: rendered images vs expected-images.txt"
        );
    }
}

/// Renders every chart and prints exact / differs / error and the time each took (the
/// assertions are in `every_chart_gives_its_expected_images`), then the time of reading the
/// images from the rendered manifests: the Pod-template set and the full (runtime) set.
#[test]
fn report_all_charts() {
    let start = Instant::now();
    let (mut pod_us, mut all_us) = (0, 0);
    for (name, dir) in chart_dirs() {
        let t = Instant::now();
        let r = rendered(&dir, &options());
        let ms = t.elapsed().as_millis();
        match r {
            Ok(got) if got == expected(&dir) => eprintln!("{name}: exact ({ms} ms)"),
            Ok(got) => {
                let want = expected(&dir);
                eprintln!(
                    "{name}: differs ({ms} ms): missing {:?}, extra {:?}",
                    want.difference(&got).collect::<Vec<_>>(),
                    got.difference(&want).collect::<Vec<_>>()
                );
            }
            Err(e) => eprintln!("{name}: error ({ms} ms): {e}"),
        }
        let Ok(chart) = load_path(&dir) else { continue };
        let Ok(manifests) = render(&chart, &options()) else {
            continue;
        };
        let t = Instant::now();
        let pod = images_of(&chart.origin, &manifests, ImageScope::Pod).unwrap();
        let p = t.elapsed().as_micros();
        let t = Instant::now();
        let all = images_of(&chart.origin, &manifests, ImageScope::All).unwrap();
        let a = t.elapsed().as_micros();
        (pod_us, all_us) = (pod_us + p, all_us + a);
        eprintln!(
            "  {name}: images from {} manifests: pod {} in {p} us, all {} in {a} us",
            manifests.len(),
            pod.len(),
            all.len()
        );
    }
    eprintln!(
        "all charts: {} ms; reading images: pod {pod_us} us, all {all_us} us",
        start.elapsed().as_millis()
    );
}

#[test]
fn unrenderable_template_names_file_and_line() {
    let mut files = std::collections::BTreeMap::new();
    files.insert(
        "Chart.yaml".to_string(),
        b"apiVersion: v2\nname: broken\nversion: 0.1.0\n".to_vec(),
    );
    files.insert(
        "templates/pod.yaml".to_string(),
        b"kind: Pod\n\n{{ required \"image is required\" .Values.image }}\n".to_vec(),
    );
    let chart = berth_chart::load_files(files, "broken").unwrap();
    let e = discover(&chart, &options()).unwrap_err().to_string();
    assert!(
        e.contains("broken/templates/pod.yaml")
            && e.contains("line 3")
            && e.contains("image is required"),
        "{e}"
    );
}

#[test]
fn overrides_change_the_images() {
    let dirs = chart_dirs();
    let (_, dir) = dirs.iter().find(|(n, _)| n == "podinfo").unwrap();
    let mut o = options();
    o.set = vec!["image.repository=mirror.example.test/podinfo,image.tag=1.2.3".into()];
    let got = rendered(dir, &o).unwrap();
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        ["mirror.example.test/podinfo:1.2.3"]
    );
}

/// `helm template` of the chart with `values` (a values file's text).
fn helm_text(helm: &Helm, dir: &Path, scratch: &Path, case: &str, values: &str) -> String {
    let f = scratch.join(format!("{case}.yaml"));
    std::fs::write(&f, values).unwrap();
    let files = if values.is_empty() { vec![] } else { vec![f] };
    helm.template(&Template {
        chart: dir,
        release: RELEASE,
        namespace: NAMESPACE,
        kube_version: KUBE_VERSION,
        values_files: &files,
        set: &[],
        skip_tests: true,
    })
    .unwrap_or_else(|e| panic!("{case}: {e}"))
}

fn images_in(text: &str) -> BTreeSet<String> {
    pod_images(&documents(text).unwrap())
        .iter()
        .map(|i| normalize_image(i))
        .collect()
}

type BySource = BTreeMap<String, Vec<serde_json::Value>>;

/// Documents by template, each template's documents in a canonical order (Helm sorts them by
/// kind), strings without trailing newlines (Helm prints a document's last newline before
/// `---`, which a `|+` block scalar then keeps).
fn canonical(by: BySource) -> BySource {
    fn strip(v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value as V;
        match v {
            V::String(s) => V::String(s.trim_end_matches('\n').to_string()),
            V::Array(a) => V::Array(a.into_iter().map(strip).collect()),
            V::Object(m) => V::Object(m.into_iter().map(|(k, v)| (k, strip(v))).collect()),
            v => v,
        }
    }
    by.into_iter()
        .map(|(k, docs)| {
            let mut docs: Vec<serde_json::Value> = docs.into_iter().map(strip).collect();
            docs.sort_by_key(|d| d.to_string());
            (k, docs)
        })
        .collect()
}

/// Berth's rendering of the chart, as documents by template (test hooks left out, as
/// `--skip-tests` does).
fn berth_documents(dir: &Path, opts: &Options) -> BySource {
    let chart = load_path(dir).unwrap();
    let mut text = String::new();
    for m in render(&chart, opts).unwrap() {
        for doc in m.text.split("\n---") {
            let doc = doc.trim_start_matches("---");
            if !doc.trim().is_empty() {
                text.push_str(&format!("---\n# Source: {}\n{doc}\n", m.source));
            }
        }
    }
    let by = documents_by_source(&text).unwrap();
    let by = by
        .into_iter()
        .map(|(k, docs)| {
            let docs: Vec<serde_json::Value> = docs
                .into_iter()
                .filter(|d| {
                    !d["metadata"]["annotations"]["helm.sh/hook"]
                        .as_str()
                        .is_some_and(|h| h.split(',').any(|x| x.trim().starts_with("test")))
                })
                .collect();
            (k, docs)
        })
        .filter(|(_, docs)| !docs.is_empty())
        .collect();
    canonical(by)
}

/// Every document Helm renders the same way twice (random passwords, keys and the checksums
/// of them aside) must be what Berth renders, template by template.
fn same_documents(name: &str, case: &str, berth: &BySource, helm1: &str, helm2: &str) -> usize {
    let h1 = canonical(documents_by_source(helm1).unwrap());
    let h2 = canonical(documents_by_source(helm2).unwrap());
    assert_eq!(
        h1.keys().collect::<Vec<_>>(),
        berth.keys().collect::<Vec<_>>(),
        "{name} / {case}: the templates that render documents"
    );
    let mut compared = 0;
    for (source, docs) in &h1 {
        if h2.get(source) != Some(docs) {
            continue;
        }
        assert_eq!(
            berth.get(source),
            Some(docs),
            "{name} / {case}: {source}, Berth vs helm"
        );
        compared += 1;
    }
    compared
}

/// The value sets of `berth_testkit::helm_cases` (optional parts on, a registry override, a
/// digest pin) give what each case asks; when the Go peer `helm` is built, exactly the images
/// `helm template` renders with the same values.
#[test]
fn value_sets_give_what_helm_gives() {
    let helm = berth_testkit::tools::go_peer("helm").map(|_| Helm::new());
    let scratch = tempfile::tempdir().unwrap();
    let dirs = chart_dirs();
    let (mut compared, mut documents) = (0, 0);
    for name in CHARTS {
        let (_, dir) = dirs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let defaults = rendered(dir, &options()).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(helm) = &helm {
            let (t1, t2) = (
                helm_text(helm, dir, scratch.path(), &format!("{name}-defaults"), ""),
                helm_text(helm, dir, scratch.path(), &format!("{name}-defaults"), ""),
            );
            assert_eq!(
                defaults,
                images_in(&t1),
                "{name} / defaults: Berth vs helm template"
            );
            let berth = berth_documents(dir, &options());
            documents += same_documents(name, "defaults", &berth, &t1, &t2);
            compared += 1;
        }
        for case in cases(name) {
            let mut o = options();
            o.values = vec![(format!("{}.yaml", case.name), case.values.clone())];
            let got = rendered(dir, &o).unwrap_or_else(|e| panic!("{name} / {}: {e}", case.name));
            if let Err(e) = case.check(&defaults, &got) {
                panic!("{name} / {}: {e}", case.name);
            }
            if let Some(helm) = &helm {
                let label = format!("{name}-{}", case.name);
                let (t1, t2) = (
                    helm_text(helm, dir, scratch.path(), &label, &case.values),
                    helm_text(helm, dir, scratch.path(), &label, &case.values),
                );
                assert_eq!(
                    got,
                    images_in(&t1),
                    "{name} / {}: Berth vs helm template",
                    case.name
                );
                documents += same_documents(name, case.name, &berth_documents(dir, &o), &t1, &t2);
                compared += 1;
            }
        }
    }
    eprintln!(
        "value sets compared with helm template: {compared}; templates with the same documents: {documents}"
    );
}

/// A subchart's `exports` reach the parent through `import-values`, under the parent's own
/// values; a dependency switched off by its `condition` renders nothing; a library chart
/// renders nothing.
#[test]
fn import_values_and_conditions() {
    let mut files = std::collections::BTreeMap::new();
    let put = |f: &mut std::collections::BTreeMap<String, Vec<u8>>, p: &str, t: &str| {
        f.insert(p.to_string(), t.as_bytes().to_vec());
    };
    put(
        &mut files,
        "Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - name: lib\n    version: 1.0.0\n    import-values: [defaults]\n  - name: extra\n    version: 1.0.0\n    condition: extra.enabled\n",
    );
    put(
        &mut files,
        "values.yaml",
        "image: {tag: \"2\"}\nextra: {enabled: false}\n",
    );
    put(
        &mut files,
        "templates/pod.yaml",
        "kind: Pod\nspec:\n  containers:\n    - name: a\n      image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n",
    );
    put(
        &mut files,
        "charts/lib/Chart.yaml",
        "apiVersion: v2\nname: lib\nversion: 1.0.0\n",
    );
    put(
        &mut files,
        "charts/lib/values.yaml",
        "exports:\n  defaults:\n    image: {repository: example.test/app, tag: \"1\"}\n",
    );
    put(
        &mut files,
        "charts/extra/Chart.yaml",
        "apiVersion: v2\nname: extra\nversion: 1.0.0\n",
    );
    put(
        &mut files,
        "charts/extra/templates/pod.yaml",
        "kind: Pod\nspec:\n  containers: [{name: b, image: example.test/extra:1}]\n",
    );
    // A library chart's files only define templates: its Pod is not rendered.
    put(
        &mut files,
        "charts/common/Chart.yaml",
        "apiVersion: v2\nname: common\nversion: 1.0.0\ntype: library\n",
    );
    put(
        &mut files,
        "charts/common/templates/pod.yaml",
        "kind: Pod\nspec:\n  containers: [{name: c, image: example.test/library-pod:1}]\n",
    );
    let chart = berth_chart::load_files(files, "app").unwrap();
    let got: Vec<String> = discover(&chart, &options())
        .unwrap()
        .into_iter()
        .map(|i| i.reference)
        .collect();
    assert_eq!(got, ["example.test/app:2"]);
    let mut o = options();
    o.set = vec!["extra.enabled=true".into()];
    let got: Vec<String> = discover(&chart, &o)
        .unwrap()
        .into_iter()
        .map(|i| i.reference)
        .collect();
    assert_eq!(got, ["example.test/app:2", "example.test/extra:1"]);
}

/// Values as Helm coalesces them, on a chart made for it: chart defaults' `null`s dropped, a
/// user `null` deleting a default, a parent's `sub: {drop: null}` deleting the subchart's
/// default, lists replaced, `global` copied down with the parent winning, YAML 1.1 keys
/// (`y` is `true`), numbers as float64 (`1000000` prints `1e+06`). The expected strings are
/// what Helm v4.3.2 renders; with the Go peer `helm` built, its output is compared too.
#[test]
fn values_coalesce_as_helm_does() {
    let files: &[(&str, &str)] = &[
        (
            "Chart.yaml",
            "apiVersion: v2\nname: p\nversion: 0.1.0\ndependencies:\n  - name: sub\n    version: 0.1.0\n",
        ),
        (
            "values.yaml",
            "global: {registry: r.example, list: [1, 2]}\na: {x: null, y: 1, keep: k}\nbig: 1000000\nsub: {image: {tag: \"2\"}, drop: null}\n",
        ),
        (
            "templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: p}\ndata:\n  values: {{ toJson .Values | quote }}\n  big: {{ .Values.big | quote }}\n  yaml: |\n{{ toYaml .Values | indent 4 }}\n",
        ),
        (
            "charts/sub/Chart.yaml",
            "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
        ),
        (
            "charts/sub/values.yaml",
            "image: {repository: img, tag: \"1\"}\ndrop: {z: 1}\nglobal: {registry: sub-default, own: o}\nlist: [a, b]\n",
        ),
        (
            "charts/sub/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sub}\ndata:\n  values: {{ toJson .Values | quote }}\n",
        ),
    ];
    let user = "a: {keep: null, new: 1}\nsub: {list: [c]}\nglobal: {registry: user.example}\n";
    let chart = berth_chart::load_files(
        files
            .iter()
            .map(|(p, t)| (p.to_string(), t.as_bytes().to_vec()))
            .collect(),
        "p",
    )
    .unwrap();
    let mut o = options();
    o.values = vec![("user.yaml".into(), user.into())];
    let out = render(&chart, &o).unwrap();
    let data = |source: &str| -> serde_json::Value {
        let m = out.iter().find(|m| m.source == source).unwrap();
        documents(&m.text).unwrap()[0]["data"].clone()
    };
    let sub = r#"{"global":{"list":[1,2],"own":"o","registry":"user.example"},"image":{"repository":"img","tag":"2"},"list":["c"]}"#;
    assert_eq!(data("p/charts/sub/templates/cm.yaml")["values"], sub);
    let top = data("p/templates/cm.yaml");
    assert_eq!(
        top["values"],
        format!(
            r#"{{"a":{{"new":1,"true":1}},"big":1000000,"global":{{"list":[1,2],"registry":"user.example"}},"sub":{sub}}}"#
        )
    );
    assert_eq!(top["big"], "1e+06");
    if berth_testkit::tools::go_peer("helm").is_some() {
        let dir = tempfile::tempdir().unwrap();
        for (p, t) in files {
            let f = dir.path().join("p").join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, t).unwrap();
        }
        let helm = Helm::new();
        for values in [user, ""] {
            let text = helm_text(&helm, &dir.path().join("p"), dir.path(), "user", values);
            let theirs = canonical(documents_by_source(&text).unwrap());
            let mut o = options();
            if !values.is_empty() {
                o.values = vec![("user.yaml".into(), values.into())];
            }
            assert_eq!(
                berth_documents(&dir.path().join("p"), &o),
                theirs,
                "values {values:?}"
            );
        }
    }
}

/// MetalLB guards option combinations with `fail`: Berth refuses them as Helm does, naming
/// the chart, the template, the line and the chart's own message (and helm, when built,
/// refuses the same values).
#[test]
fn a_fail_guard_is_an_error_with_file_and_line() {
    let dir = chart_dir("metallb");
    let values = "speaker: {frr: {enabled: true}}\nfrrk8s: {enabled: true}\n";
    let mut o = options();
    o.values = vec![("guard.yaml".into(), values.into())];
    let chart = load_path(&dir).unwrap();
    let e = discover(&chart, &o).unwrap_err().to_string();
    assert!(
        e.contains("metallb/templates/speaker.yaml line 3")
            && e.contains(
                "speaker.frr.enabled and frrk8s.enabled / external are mutually exclusive!"
            ),
        "{e}"
    );
    if berth_testkit::tools::go_peer("helm").is_some() {
        let scratch = tempfile::tempdir().unwrap();
        let f = scratch.path().join("guard.yaml");
        std::fs::write(&f, values).unwrap();
        let r = Helm::new().template(&Template {
            chart: &dir,
            release: RELEASE,
            namespace: NAMESPACE,
            kube_version: KUBE_VERSION,
            values_files: &[f],
            set: &[],
            skip_tests: true,
        });
        assert!(r.unwrap_err().contains("mutually exclusive"));
    }
}
