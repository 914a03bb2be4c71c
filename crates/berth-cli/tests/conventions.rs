//! What users of skopeo, crane and Helm expect of a command line: completion scripts, a man
//! page from the same definitions, `--version` with the commit, `BERTH_*` variables for the
//! common options, `--quiet`, `-v`/`--log-level`, `-o` as the output format everywhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Home, berth, command, isolate};
use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example(name: &str) -> String {
    examples().join(name).display().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));
    text(&o.stdout)
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\nstderr: {}", text(&o.stdout), text(&o.stderr)))
}

/// `berth ARGS` with `vars` set in its (otherwise isolated) environment.
fn berth_env(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let home = Home::new();
    let mut c = command(home.path());
    c.args(args).envs(vars.iter().copied()).stdin(Stdio::null());
    c.output().expect("run berth")
}

#[test]
fn the_bash_completion_script_loads_and_zsh_fish_scripts_are_generated() {
    let home = Home::new();
    let mut bash = Command::new("bash");
    isolate(&mut bash, home.path())
        .env("BERTH", env!("CARGO_BIN_EXE_berth"))
        .args([
            "-c",
            "source <(\"$BERTH\" completion bash) && complete -p berth",
        ]);
    let o = bash.output().expect("run bash");
    let out = ok(&o);
    assert!(
        out.contains("complete") && out.trim_end().ends_with(" berth"),
        "{out}"
    );
    let script = ok(&berth(&["completion", "bash"]));
    for word in ["mirror", "verify", "--edge-registry", "--profile"] {
        assert!(script.contains(word), "{word} not completed");
    }
    let zsh = ok(&berth(&["completion", "zsh"]));
    assert!(zsh.starts_with("#compdef berth"), "{zsh}");
    let fish = ok(&berth(&["completion", "fish"]));
    assert!(fish.contains("complete -c berth") && fish.contains("mirror"));
    let o = berth(&["completion", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("bash"), "{}", text(&o.stderr));
}

#[test]
fn the_man_pages_render() {
    let page = ok(&berth(&["man"]));
    assert!(page.contains(".TH berth 1"), "{page}");
    assert!(page.contains("mirror") && page.contains("BERTH_USER_DATA"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    ok(&berth(&["man", "--dir", out.to_str().unwrap()]));
    for p in [
        "berth.1",
        "berth-mirror.1",
        "berth-bundle-build.1",
        "berth-completion.1",
    ] {
        assert!(out.join(p).is_file(), "{p} not written");
    }
    // man(1) formats the page of a subcommand: its flags, env variables included.
    let home = Home::new();
    let mut man = Command::new("man");
    isolate(&mut man, home.path())
        .env("MANWIDTH", "100")
        .arg("-l")
        .arg(out.join("berth-mirror.1"));
    let o = man.output().expect("run man");
    let shown = ok(&o);
    for word in [
        "--profile",
        "--edge-registry",
        "BERTH_EDGE_REGISTRY",
        "--output",
        "-q",
    ] {
        assert!(shown.contains(word), "{word} not in\n{shown}");
    }
    // Nothing half-written where it cannot write.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let o = berth(&["man", "--dir", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("a-file"), "{}", text(&o.stderr));
}

#[test]
fn version_names_the_commit() {
    let v = ok(&berth(&["--version"]));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string());
    let want = head.unwrap_or_else(|| "unknown".to_string());
    let expected = format!("berth {} (commit {want})", env!("CARGO_PKG_VERSION"));
    assert_eq!(v.trim(), expected);
}

#[test]
fn berth_variables_stand_for_their_flags_and_a_flag_wins() {
    let ud = example("user-data-mapping.yaml");
    let with_flag = ok(&berth(&[
        "rewrite",
        "docker.io/library/nginx:1",
        "--user-data",
        &ud,
    ]));
    let with_env = berth_env(
        &["rewrite", "docker.io/library/nginx:1"],
        &[("BERTH_USER_DATA", &ud)],
    );
    assert_eq!(ok(&with_env), with_flag);
    assert_ne!(with_flag.trim(), "docker.io/library/nginx:1");

    let edge = [
        ("BERTH_EDGE_REGISTRY", "edge.local:5000"),
        ("BERTH_EDGE_PROJECT", "site"),
    ];
    let o = berth_env(&["rewrite", "nginx:1"], &edge);
    assert_eq!(
        ok(&o).trim(),
        "edge.local:5000/site/docker.io/library/nginx:1"
    );
    let o = berth_env(
        &["rewrite", "nginx:1", "--edge-registry", "other:5000"],
        &edge,
    );
    assert_eq!(ok(&o).trim(), "other:5000/site/docker.io/library/nginx:1");

    let profile = example("retail-edge.yaml");
    let vars = [
        ("BERTH_PROFILE", profile.as_str()),
        ("BERTH_USER_DATA", &ud),
    ];
    let from_env = json(&berth_env(&["images", "-o", "json"], &vars));
    let from_flags = json(&berth(&[
        "images",
        "--profile",
        &profile,
        "--user-data",
        &ud,
        "-o",
        "json",
    ]));
    assert_eq!(from_env, from_flags);
    assert!(!from_env["images"].as_array().unwrap().is_empty());

    // --help names each variable.
    let help = ok(&berth(&["mirror", "--help"]));
    for v in [
        "BERTH_PROFILE",
        "BERTH_USER_DATA",
        "BERTH_EDGE_REGISTRY",
        "BERTH_EDGE_CA",
        "BERTH_LOG_LEVEL",
    ] {
        assert!(help.contains(v), "{v} not in mirror --help");
    }
    // A password in the environment is never shown by --help.
    let o = berth_env(
        &["mirror", "--help"],
        &[("BERTH_EDGE_CREDS", "edge:hunter2")],
    );
    assert!(!ok(&o).contains("hunter2"));
    // BERTH_LOG_LEVEL is checked like the flag.
    let o = berth_env(&["rewrite", "nginx"], &[("BERTH_LOG_LEVEL", "loud")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("debug"), "{}", text(&o.stderr));
}

#[test]
fn several_profiles_after_one_flag() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.yaml");
    std::fs::write(
        &extra,
        "name: extra\nlayers:\n  - name: tools\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n            - image: ghcr.io/acme/extra-tool:1.0\n",
    )
    .unwrap();
    let profile = example("retail-edge.yaml");
    let extra = extra.display().to_string();
    let one_flag = json(&berth(&[
        "images",
        "--profile",
        &profile,
        &extra,
        "-o",
        "json",
    ]));
    let two_flags = json(&berth(&[
        "images",
        "--profile",
        &profile,
        "--profile",
        &extra,
        "-o",
        "json",
    ]));
    assert_eq!(one_flag, two_flags);
    let sources: Vec<&str> = one_flag["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.contains(&"ghcr.io/acme/extra-tool:1.0"),
        "{sources:?}"
    );
    assert!(
        sources.contains(&"docker.io/calico/node:v3.27.2"),
        "{sources:?}"
    );
    assert!(ok(&berth(&["images", "--help"])).contains("Repeatable"));
}

#[test]
fn quiet_prints_nothing_on_success() {
    let ud = example("user-data.yaml");
    let o = berth(&["rewrite", "nginx", "--user-data", &ud, "--quiet"]);
    assert_eq!((ok(&o), text(&o.stderr)), (String::new(), String::new()));
    let o = berth(&["-q", "images", "--example"]);
    assert_eq!(ok(&o), "");
    assert!(
        !text(&o.stderr).contains("image(s) from"),
        "{}",
        text(&o.stderr)
    );
    // Without --quiet the same commands print.
    let o = berth(&["images", "--example"]);
    assert!(ok(&o).contains("SOURCE") && text(&o.stderr).contains("image(s) from"));
    // -o json is still printed: it was asked for.
    let o = berth_env(&["rewrite", "nginx", "-o", "json"], &[("BERTH_QUIET", "1")]);
    assert!(json(&o)["images"].is_array());
    // An error still says what is wrong.
    let o = berth(&["rewrite", "Not A Reference", "-q"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("error"), "{}", text(&o.stderr));
}

#[test]
fn log_level_and_verbose_are_accepted_by_every_command() {
    for args in [
        vec!["-v", "rewrite", "nginx"],
        vec!["rewrite", "nginx", "-vvv"],
        vec!["rewrite", "nginx", "--log-level", "debug"],
        vec!["--log-level", "off", "images", "--example", "-o", "json"],
    ] {
        assert_eq!(berth(&args).status.code(), Some(0), "{args:?}");
    }
    let o = berth(&["gc", "--log-level", "chatty"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("trace"), "{}", text(&o.stderr));
}

#[test]
fn dash_o_is_the_output_format_and_json_parses_everywhere() {
    let ud = example("user-data.yaml");
    let profile = example("retail-edge.yaml");
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("blobs")).unwrap();
    let d = data.path().to_str().unwrap();
    let p = profile.as_str();
    let commands: Vec<Vec<&str>> = vec![
        vec!["images", "--example", "-o", "json"],
        vec![
            "rewrite",
            "nginx",
            "quay.io/a/b:1",
            "--user-data",
            &ud,
            "-o",
            "json",
        ],
        vec!["lint", "--profile", p, "-o", "json"],
        vec![
            "mirror",
            "--profile",
            p,
            "--user-data",
            &ud,
            "--dry-run",
            "-o",
            "json",
        ],
        vec!["gc", "--data", d, "--dry-run", "-o", "json"],
        vec!["fsck", "--data", d, "--output", "json"],
    ];
    for args in &commands {
        let o = berth(args);
        assert!(
            o.status.code().is_some_and(|c| c < 2),
            "{args:?}: {}",
            text(&o.stderr)
        );
        let v = json(&o);
        assert!(v.is_object(), "{args:?}: {v}");
    }
    let v = json(&berth(&commands[1]));
    assert_eq!(v["images"][1]["source"], "quay.io/a/b:1");
    assert_eq!(
        v["images"][1]["target"],
        "10.10.254.254:8000/spectro-images/quay.io/a/b:1"
    );
    let gc = json(&berth(&commands[4]));
    assert_eq!(gc["blobs_removed"], 0, "{gc}");
    assert_eq!(
        json(&berth(&commands[5]))["findings"],
        serde_json::json!([])
    );
    // `text` is the table's other name.
    assert_eq!(
        ok(&berth(&["images", "--example", "-o", "text"])),
        ok(&berth(&["images", "--example"]))
    );

    // bundle build took -o for its file: now --out, and the old use says so.
    let bundle = data.path().join("b.tar.zst");
    let o = berth(&[
        "bundle",
        "build",
        "--profile",
        p,
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("is not an output format") && err.contains("--out"),
        "{err}"
    );
    assert!(!bundle.exists());
}

#[test]
fn one_duration_syntax_also_for_kubelet() {
    let ud = example("user-data.yaml");
    let o = berth(&[
        "credential-provider",
        "config",
        "--user-data",
        &ud,
        "--cache-duration",
        "1d",
    ]);
    let config = ok(&o);
    assert!(
        config.contains("defaultCacheDuration: \"24h\"")
            || config.contains("defaultCacheDuration: 24h"),
        "{config}"
    );
    let o = berth(&[
        "credential-provider",
        "config",
        "--user-data",
        &ud,
        "--cache-duration",
        "soon",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("30s"), "{}", text(&o.stderr));
}
