//! The `berth` binary as a user runs it: exit codes, JSON contracts, messages, files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::berth;
use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn find<'a>(images: &'a [Value], source: &str) -> &'a Value {
    images
        .iter()
        .find(|i| i["source"] == source)
        .unwrap_or_else(|| panic!("{source} not in {images:#?}"))
}

#[test]
fn images_of_the_example_with_prepend() {
    let o = berth(&["images", "--example", "--output", "json"]);
    // The example keeps AlwaysPullImages-free extraction clean of error findings.
    let v = json(&o);
    let images = v["images"].as_array().unwrap();
    let provider = find(images, "ttl.sh/ubuntu:k3s-1.29.4-v4.4.4-demo");
    assert_eq!(provider["role"], "provider");
    assert_eq!(provider["layer_type"], "os");
    assert_eq!(provider["layer"], "edge-native-byoi");
    assert_eq!(
        provider["target"],
        "10.10.254.254:8000/spectro-images/ttl.sh/ubuntu:k3s-1.29.4-v4.4.4-demo"
    );
    let node = find(images, "docker.io/calico/node:v3.27.2");
    assert_eq!(node["role"], "infra");
    assert_eq!(
        node["target"],
        "10.10.254.254:8000/spectro-images/docker.io/calico/node:v3.27.2"
    );
    let op = find(images, "quay.io/tigera/operator:v1.32.5");
    assert!(
        op["found_in"].as_array().unwrap()[0]
            .as_str()
            .unwrap()
            .contains("charts")
    );
    let app = find(images, "ghcr.io/acme/pos-migrate:2.4.1");
    assert_eq!(app["role"], "addon");
    assert_eq!(
        find(images, "registry.k8s.io/etcd:3.5.12-0")["role"],
        "core"
    );
    for i in images {
        let (s, t) = (i["source"].as_str().unwrap(), i["target"].as_str().unwrap());
        assert_eq!(t, format!("10.10.254.254:8000/spectro-images/{s}"));
        let keys: Vec<&str> = i.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 7, "{keys:?}");
        assert!(i["provenance"].as_array().is_some_and(|p| !p.is_empty()));
    }
}

#[test]
fn images_with_mapping_rules_and_local_registry() {
    let profile = examples().join("retail-edge.yaml");
    let ud = examples().join("user-data-mapping.yaml");
    let o = berth(&[
        "images",
        "--profile",
        profile.to_str().unwrap(),
        "--user-data",
        ud.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}",
        stderr(&o)
    );
    let v = json(&o);
    let images = v["images"].as_array().unwrap();
    assert_eq!(
        find(images, "registry.k8s.io/etcd:3.5.12-0")["target"],
        "registry.example.com/palette-images/k8s/etcd:3.5.12-0"
    );
    assert_eq!(
        find(images, "docker.io/calico/cni:v3.27.2")["target"],
        "registry.example.com/palette-images/hub/calico/cni:v3.27.2"
    );
    let o = berth(&[
        "images",
        "--profile",
        profile.to_str().unwrap(),
        "--local-registry",
        "edge.local:5000",
        "--output",
        "json",
    ]);
    let v = json(&o);
    let images = v["images"].as_array().unwrap();
    assert_eq!(
        find(images, "quay.io/tigera/operator:v1.32.5")["target"],
        "edge.local:5000/spectro-images/quay.io/tigera/operator:v1.32.5"
    );
}

#[test]
fn images_without_user_data_targets_equal_sources() {
    let profile = examples().join("retail-edge.yaml");
    let o = berth(&[
        "images",
        "--profile",
        profile.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let v = json(&o);
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 9, "the example profile's images: {v}");
    for i in images {
        assert_eq!(i["source"], i["target"]);
    }
    let o = berth(&["images", "--profile", profile.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.starts_with("ROLE"), "{out}");
    assert!(out.contains("ghcr.io/kube-vip/kube-vip:v0.7.2"), "{out}");
}

#[test]
fn rewrite_prints_one_target_per_line() {
    let ud = examples().join("user-data.yaml");
    let o = berth(&[
        "rewrite",
        "--user-data",
        ud.to_str().unwrap(),
        "quay.io/kairos/core:v1",
        "nginx",
        "registry.local:5000/team/app:1.0",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "10.10.254.254:8000/spectro-images/quay.io/kairos/core:v1\n\
         10.10.254.254:8000/spectro-images/docker.io/library/nginx:latest\n\
         10.10.254.254:8000/spectro-images/registry.local_5000/team/app:1.0\n"
    );
    // no user data: normalization only
    let o = berth(&["rewrite", "nginx"]);
    assert_eq!(stdout(&o), "docker.io/library/nginx:latest\n");
}

#[test]
fn bad_input_exits_2_and_names_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let bad_ud = dir.path().join("ud.yaml");
    std::fs::write(
        &bad_ud,
        "#cloud-config\nstylus:\n  registryCredentials:\n    domain: reg.io\n    pasword: hunter2\n",
    )
    .unwrap();
    let o = berth(&["rewrite", "--user-data", bad_ud.to_str().unwrap(), "nginx"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("ud.yaml:5:5") && e.contains("pasword"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    assert!(stdout(&o).is_empty());

    let o = berth(&["rewrite", "Nginx"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("lower case"), "{}", stderr(&o));

    let missing = dir.path().join("nope.yaml");
    let o = berth(&["images", "--profile", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.yaml"), "{}", stderr(&o));

    let o = berth(&["images"]);
    assert_eq!(o.status.code(), Some(2), "usage error");

    // A bad edge registry, in either spelling: exit 2, the value and the form named.
    for flag in ["--edge-registry", "--local-registry"] {
        let o = berth(&["rewrite", flag, "ftp://x", "nginx"]);
        assert_eq!(o.status.code(), Some(2));
        let e = stderr(&o);
        assert!(e.contains("ftp://x") && e.contains("https://"), "{e}");
        assert!(stdout(&o).is_empty());
    }
    let o = berth(&[
        "rewrite",
        "--edge-registry",
        "https://admin:hunter2@edge",
        "nginx",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("hunter2"), "{}", stderr(&o));
    let o = berth(&[
        "rewrite",
        "--edge-registry",
        "edge/a",
        "--edge-project",
        "b",
        "nginx",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`a`") && stderr(&o).contains("`b`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn lint_reports_and_fix_changes_only_always_pull_images() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile.yaml");
    let original = std::fs::read_to_string(examples().join("retail-edge.yaml")).unwrap();
    std::fs::write(&p, &original).unwrap();

    let o = berth(&["lint", "--profile", p.to_str().unwrap(), "--output", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    let f = v["findings"].as_array().unwrap();
    let apl = f
        .iter()
        .find(|x| x["rule"] == "always-pull-images")
        .expect("finding");
    assert_eq!(apl["severity"], "error");
    assert_eq!(apl["layer"], "edge-k8s");
    assert!(
        apl["path"]
            .as_str()
            .unwrap()
            .contains("enable-admission-plugins")
    );
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        original,
        "lint alone writes nothing"
    );

    let o = berth(&["lint", "--profile", p.to_str().unwrap(), "--fix"]);
    let fixed = std::fs::read_to_string(&p).unwrap();
    let expected = original.replace(
        "enable-admission-plugins: AlwaysPullImages,NamespaceLifecycle",
        "enable-admission-plugins: NamespaceLifecycle",
    );
    assert_ne!(expected, original);
    assert_eq!(fixed, expected, "only the token is removed");
    assert!(!stdout(&o).contains("always-pull-images"), "{}", stdout(&o));

    // A second fix is a no-op.
    let o = berth(&["lint", "--profile", p.to_str().unwrap(), "--fix"]);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), expected);
    assert!(!stdout(&o).contains("always-pull-images"));
}

#[test]
fn lint_fix_writes_nothing_when_any_file_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    let bad = dir.path().join("bad.yaml");
    let original = std::fs::read_to_string(examples().join("retail-edge.yaml")).unwrap();
    std::fs::write(&good, &original).unwrap();
    std::fs::write(&bad, "name: x\nlayers: [\n").unwrap();
    let o = berth(&[
        "lint",
        "--profile",
        good.to_str().unwrap(),
        "--profile",
        bad.to_str().unwrap(),
        "--fix",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.yaml"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&good).unwrap(), original);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left");
}

#[test]
fn help_explains_every_command() {
    let o = berth(&["--help"]);
    let h = stdout(&o);
    for c in ["images", "rewrite", "lint"] {
        assert!(h.contains(c), "{h}");
    }
    let o = berth(&["images", "--help"]);
    let h = stdout(&o);
    for f in [
        "--profile",
        "--user-data",
        "--edge-registry",
        "--edge-project",
        "--output",
        "--example",
    ] {
        assert!(h.contains(f), "{h}");
    }
    // The old spellings still work (below) but are not advertised.
    for old in ["--local-registry", "--project "] {
        assert!(!h.contains(old), "{old} in {h}");
    }
    let h = stdout(&berth(&["mirror", "--help"]));
    for f in [
        "--edge-registry",
        "--edge-project",
        "--edge-ca",
        "--edge-insecure",
        "--edge-creds",
    ] {
        assert!(h.contains(f), "{f} in {h}");
    }
    for old in [
        "--local-registry",
        "--dest-cert-dir",
        "--dest-tls-verify",
        "--dest-creds",
    ] {
        assert!(!h.contains(old), "{old} in {h}");
    }
}

/// `--edge-registry HOST --edge-project P`, `--edge-registry HOST/P` (with or without a
/// scheme) and the old `--local-registry HOST --project P` all put the edge registry in
/// front of the same targets.
#[test]
fn edge_registry_spellings_agree() {
    let ud = examples().join("user-data-mapping.yaml");
    let ud = ud.to_str().unwrap();
    let refs = [
        "quay.io/kairos/core:v1",
        "registry.k8s.io/etcd:3.5.12-0",
        "nginx",
    ];
    let run = |edge: &[&str]| {
        let mut args = vec!["rewrite", "--user-data", ud];
        args.extend_from_slice(edge);
        args.extend_from_slice(&refs);
        let o = berth(&args);
        assert_eq!(o.status.code(), Some(0), "{edge:?}: {}", stderr(&o));
        stdout(&o)
    };
    let want = run(&["--edge-registry", "10.0.0.5:5000", "--edge-project", "edge"]);
    assert_eq!(
        want.lines().next(),
        Some("10.0.0.5:5000/edge/registry.example.com/palette-images/quay/kairos/core:v1"),
        "{want}"
    );
    assert_eq!(want.lines().count(), refs.len());
    for edge in [
        &["--edge-registry", "10.0.0.5:5000/edge"][..],
        &["--edge-registry", "https://10.0.0.5:5000/edge/"],
        &[
            "--edge-registry",
            "http://10.0.0.5:5000",
            "--edge-project",
            "edge",
        ],
        &["--local-registry", "10.0.0.5:5000", "--project", "edge"],
        &["--local-registry", "10.0.0.5:5000/edge"],
    ] {
        assert_eq!(run(edge), want, "{edge:?}");
    }
    // The default project, and an IPv6 edge registry.
    let o = run(&["--edge-registry", "[fd00::5]:5000"]);
    assert!(
        o.starts_with("[fd00::5]:5000/spectro-images/registry.example.com/"),
        "{o}"
    );
    // `images` reads the same flags.
    let profile = examples().join("retail-edge.yaml");
    let o = berth(&[
        "images",
        "--profile",
        profile.to_str().unwrap(),
        "--local-registry",
        "edge.local:5000",
        "--project",
        "p",
        "--output",
        "json",
    ]);
    let v = json(&o);
    assert_eq!(
        find(
            v["images"].as_array().unwrap(),
            "quay.io/tigera/operator:v1.32.5"
        )["target"],
        "edge.local:5000/p/quay.io/tigera/operator:v1.32.5"
    );
}

/// The launcher every test uses gives berth nothing of the caller's environment: no CA or
/// auth settings (the sandbox exports SSL_CERT_FILE), and an empty HOME of its own.
#[test]
fn the_test_launcher_isolates_the_environment() {
    let home = common::Home::new();
    let o = common::isolate(&mut std::process::Command::new("env"), home.path())
        .output()
        .expect("run env");
    assert!(o.status.success());
    let text = stdout(&o);
    let vars: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let names: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
    for k in &names {
        assert!(
            ["PATH", "LANG", "HOME", "TMPDIR"].contains(k),
            "{k} leaked: {text}"
        );
    }
    assert!(names.contains(&"HOME") && names.contains(&"PATH"), "{text}");
    let home_var = vars.iter().find(|(k, _)| *k == "HOME").unwrap().1;
    assert_eq!(Path::new(home_var), home.path());
    assert_eq!(
        std::fs::read_dir(home.path()).unwrap().count(),
        0,
        "an empty home"
    );
    // And berth itself starts and runs in it.
    let o = berth(&["rewrite", "nginx"]);
    assert_eq!(stdout(&o), "docker.io/library/nginx:latest\n");
}

/// `berth serve` takes its pull-through flags (and starts with them), and refuses a bad
/// duration or `--anonymous-pull` without `--htpasswd` before it listens.
#[test]
fn serve_flags_are_checked_before_it_listens() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let o = berth(&["serve", "--data", data, "--tag-recheck", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--tag-recheck `soon`"),
        "{}",
        stderr(&o)
    );
    let o = berth(&["serve", "--data", data, "--anonymous-pull"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("htpasswd"), "{}", stderr(&o));
    assert!(!Path::new(data).exists(), "nothing created");

    let ud = examples().join("user-data.yaml");
    let home = common::Home::new();
    let mut child = common::command(home.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data,
            "--tag-recheck",
            "5m",
        ])
        .arg("--user-data")
        .arg(&ud)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.starts_with("berth: serving http://127.0.0.1:"),
        "{line}"
    );
}

/// A `berth serve` that cannot start (the port taken, a data directory it cannot create,
/// TLS files missing after the data directory was made) exits 2, says what to do, and
/// leaves no new directory behind.
#[test]
fn serve_that_cannot_start_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let fresh = dir.path().join("fresh");
    let data = fresh.join("data");
    let data = data.to_str().unwrap();
    let o = berth(&["serve", "--listen", &addr, "--data", data]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&format!("cannot listen on {addr}")), "{e}");
    assert!(e.contains("--listen HOST:PORT"), "{e}");
    assert!(!fresh.exists(), "nothing created");

    // TLS material is read after the data directory is made: that directory goes again.
    let missing = dir.path().join("missing.crt");
    let missing = missing.to_str().unwrap();
    let o = berth(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data,
        "--tls-cert",
        missing,
        "--tls-key",
        missing,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.crt"), "{}", stderr(&o));
    assert!(!fresh.exists(), "the new data directory is removed");

    // A data directory that cannot be created (under a file, or without permission).
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let ro = dir.path().join("read-only");
    std::fs::create_dir(&ro).unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&ro, perms).unwrap();
    // Root writes anyway: then only the case under a file says something.
    let privileged = std::fs::write(ro.join("probe"), "").is_ok();
    let mut cases = vec![file.join("data")];
    if !privileged {
        cases.push(ro.join("data"));
    }
    for data in cases {
        let o = berth(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        let named = format!("cannot use the data directory `{}`", data.display());
        assert!(e.contains(&named) && e.contains("--data DIR"), "{e}");
        assert!(!data.exists());
    }
}

/// `berth serve --config FILE`: every error names the file, a YAML error also its line.
#[test]
fn serve_config_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cases = [
        (
            "syntax.yaml",
            "listen: 127.0.0.1:0\nauth: [unclosed\n",
            "line 2",
        ),
        ("unknown.yaml", "listen: 127.0.0.1:0\nlistne: x\n", "listne"),
        (
            "duration.yaml",
            "proxy:\n  tag_recheck: soon\n",
            "proxy.tag_recheck `soon`",
        ),
        (
            "anonymous.yaml",
            "auth:\n  anonymous_pull: true\n",
            "htpasswd",
        ),
    ];
    for (name, text, says) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let o = berth(&[
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&format!("config file `{}`", file.display())),
            "{name}: {e}"
        );
        assert!(e.contains(says), "{name}: {e}");
        assert!(!data.exists(), "{name}: nothing created");
    }
    let absent = dir.path().join("absent.yaml");
    let o = berth(&["serve", "--config", absent.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&absent.display().to_string()),
        "{}",
        stderr(&o)
    );
}

/// The self-hosted example of docs/user-data.md, as the doc shows it.
fn doc_self_hosted_user_data() -> String {
    let doc = std::fs::read_to_string(examples().join("../docs/user-data.md")).unwrap();
    let (_, rest) = doc.split_once("## A complete self-hosted example").unwrap();
    let (_, rest) = rest.split_once("```yaml\n").unwrap();
    rest.split_once("```").unwrap().0.to_string()
}

/// `berth lint --user-data`: the examples' user data covers every image of the example
/// profile; with a rule missing and a rule whose target has no `registries[]` entry, each
/// case is a warning naming the rule, the image and the fix, and `images` and `mirror` warn
/// alike.
#[test]
fn lint_with_user_data_names_what_the_settings_do_not_cover() {
    let dir = tempfile::tempdir().unwrap();
    let profile = examples().join("retail-edge.yaml");
    let profile = profile.to_str().unwrap();
    let lint = |ud: &Path| {
        let o = berth(&[
            "lint",
            "--profile",
            profile,
            "--user-data",
            ud.to_str().unwrap(),
            "--output",
            "json",
        ]);
        // AlwaysPullImages in the example is an error: exit 1 either way.
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        json(&o)["findings"].as_array().unwrap().clone()
    };
    let coverage = |f: &[Value]| -> Vec<Value> {
        f.iter()
            .filter(|f| f["rule"] == "unmapped-image" || f["rule"] == "target-without-registry")
            .cloned()
            .collect()
    };
    let self_hosted = dir.path().join("self-hosted.yaml");
    std::fs::write(&self_hosted, doc_self_hosted_user_data()).unwrap();
    for ud in [examples().join("user-data-mapping.yaml"), self_hosted] {
        let f = lint(&ud);
        assert_eq!(coverage(&f), Vec::<Value>::new(), "{}", ud.display());
        assert!(
            f.iter().any(|f| f["rule"] == "always-pull-images"),
            "{f:#?}"
        );
    }

    // No rule for ghcr.io; quay.io sent to a registry without an entry.
    let text = std::fs::read_to_string(examples().join("user-data-mapping.yaml"))
        .unwrap()
        .replace(
            "      \"ghcr.io\": \"registry.example.com/palette-images/ghcr\"\n",
            "",
        )
        .replace(
            "registry.example.com/palette-images/quay",
            "mirror.example.net/quay",
        );
    let ud = dir.path().join("user-data.yaml");
    std::fs::write(&ud, text).unwrap();
    let f = coverage(&lint(&ud));
    let udn = ud.to_str().unwrap();
    let rules: Vec<(&str, &str, &str)> = f
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap();
            (s("rule"), s("layer"), s("path"))
        })
        .collect();
    let mapping = "stylus.externalRegistries.registryMappingRules";
    assert_eq!(
        rules,
        [
            ("unmapped-image", "edge-k8s", mapping),
            ("unmapped-image", "retail-app", mapping),
            ("unmapped-image", "retail-app", mapping),
            (
                "target-without-registry",
                "cni-calico",
                "stylus.externalRegistries.registryMappingRules[\"quay.io\"]"
            ),
        ],
        "{f:#?}"
    );
    assert!(
        f.iter()
            .all(|f| f["severity"] == "warning" && f["file"] == udn)
    );
    let m = |i: usize| f[i]["message"].as_str().unwrap().to_string();
    assert!(
        m(0).starts_with("image `ghcr.io/kube-vip/kube-vip:v0.7.2` matches no rule, so it is not redirected")
            && m(0).ends_with("add a rule for its registry, e.g. \"ghcr.io\": \"registry.example.com/palette-images/ghcr.io\""),
        "{}",
        m(0)
    );
    assert!(
        m(3).starts_with("the rule \"quay.io\": \"mirror.example.net/quay\" sends image `quay.io/tigera/operator:v1.32.5` to `mirror.example.net/quay/tigera/operator:v1.32.5`")
            && m(3).contains("outside every `stylus.externalRegistries.registries[].domain` (registry.example.com/palette-images)")
            && m(3).contains("add `- domain: mirror.example.net`"),
        "{}",
        m(3)
    );

    // The table form, and the same warnings from `images` and `mirror --dry-run`.
    let o = berth(&["lint", "--profile", profile, "--user-data", udn]);
    let line = format!(
        "{udn}: warning [unmapped-image] layer edge-k8s: {mapping}: image `ghcr.io/kube-vip/kube-vip:v0.7.2` matches no rule"
    );
    assert!(stdout(&o).contains(&line), "{}", stdout(&o));
    for cmd in [
        &["images", "--profile", profile, "--user-data", udn][..],
        &[
            "mirror",
            "--dry-run",
            "--profile",
            profile,
            "--user-data",
            udn,
        ],
    ] {
        let o = berth(cmd);
        assert_eq!(o.status.code(), Some(0), "{cmd:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(&line), "{cmd:?}: {e}");
        assert_eq!(e.matches("warning [unmapped-image]").count(), 3, "{e}");
        assert!(e.contains("warning [target-without-registry]"), "{e}");
    }
}

/// A Palette export is a profile: `images` reads it as it is, with each image's provenance,
/// and warns where the values and `pack.content.images` disagree.
#[test]
fn images_reads_a_palette_export_with_provenance() {
    let export = examples().join("palette-export.json");
    let o = berth(&[
        "images",
        "--profile",
        export.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let images = json["images"].as_array().unwrap();
    let find = |s: &str| images.iter().find(|i| i["source"] == s).cloned();
    let listed = find("docker.io/grafana/grafana:10.4.1").expect("the listed grafana");
    assert_eq!(listed["provenance"], serde_json::json!(["content-list"]));
    let deployed = find("docker.io/grafana/grafana:10.4.2").expect("the deployed grafana");
    assert_eq!(deployed["provenance"], serde_json::json!(["values"]));
    assert!(
        stderr(&o).contains("[content-list-disagrees]"),
        "{}",
        stderr(&o)
    );
    // A list of exports: one profile each.
    let list = tempfile::NamedTempFile::new().unwrap();
    let text = std::fs::read_to_string(&export).unwrap();
    let fixtures = examples().join("../crates/berth-profile/tests/fixtures");
    let mlops = std::fs::read_to_string(fixtures.join("mlops-export.json")).unwrap();
    std::fs::write(list.path(), format!("[{text}, {mlops}]")).unwrap();
    let args = ["images", "--profile", list.path().to_str().unwrap()];
    let o = berth(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("from 2 profile(s)"), "{all}");
}
