//! The first-hour walkthrough, docs/first-hour.md, run as written: every block of the doc
//! marked `sh first-hour`, in order, by bash, in one working directory, with the variables
//! the doc declares set to real peers the testkit starts on 127.0.0.1:
//!
//! - `SOURCE`: a plain-HTTP Distribution holding the testkit's images made from real files
//!   (an OCI manifest, a Docker schema 2 manifest, a two-platform OCI index) under `acme/`;
//! - `EXTERNAL*`: a Distribution with TLS (its own CA) and htpasswd, the external registry;
//! - `EDGE*`: `berth serve`, started from the doc's `serve` block by the testkit, pulling
//!   through to the external registry.
//!
//! A block marked `exit=N` must exit N; before the first `offline` block the external
//! registry is stopped. Then every image is read from the edge registry by skopeo, byte for
//! byte, and the doc's own offline pulls must have fetched every layer.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use berth_testkit::berth_serve::BerthServe;
use berth_testkit::images::{self, FixtureRef};
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, require_tool, sha256_digest};

const DOC: &str = include_str!("../../../docs/first-hour.md");
const EXT_USER: &str = "ext-mirror";
const EXT_PASS: &str = "Ext-First-Hour-7";
const EDGE_USER: &str = "edge";
const EDGE_PASS: &str = "Edge-First-Hour-9";

/// A fenced block of the doc marked `sh first-hour`, with the words after that.
struct Block {
    tags: Vec<String>,
    text: String,
}

impl Block {
    fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The exit status it must end with (`exit=N`, else 0).
    fn exit(&self) -> i32 {
        self.tags
            .iter()
            .find_map(|t| t.strip_prefix("exit=")?.parse().ok())
            .unwrap_or(0)
    }
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(l) = lines.next() {
        let Some(info) = l.strip_prefix("```sh first-hour") else {
            continue;
        };
        let text: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        out.push(Block {
            tags: info.split_whitespace().map(str::to_string).collect(),
            text: text.join("\n") + "\n",
        });
    }
    out
}

/// The variables of the doc's table: the first cell of each row, in backquotes.
fn declared(doc: &str) -> BTreeSet<String> {
    let (_, rest) = doc.split_once("| variable |").expect("the variables table");
    rest.lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('`').nth(1).expect("a `NAME` cell").to_string())
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout:\n{}\n--- stderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_doc_marks_its_blocks_and_declares_its_variables() {
    let b = blocks(DOC);
    assert!(b.len() >= 8, "{} blocks", b.len());
    assert_eq!(b.iter().filter(|b| b.has("serve")).count(), 1);
    assert!(b.iter().any(|b| b.has("offline")) && b.iter().any(|b| b.exit() == 1));
    assert!(declared(DOC).contains("EDGE") && declared(DOC).contains("SOURCE"));
    // Every variable a block uses is declared (or set by the blocks themselves).
    let own = ["i", "image"];
    for b in &b {
        for part in b.text.split('$').skip(1) {
            let name: String = part
                .trim_start_matches('{')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let positional = name.starts_with(|c: char| c.is_ascii_digit());
            if name.is_empty() || positional || own.contains(&name.as_str()) {
                continue;
            }
            assert!(declared(DOC).contains(&name), "${name} is not declared");
        }
    }
}

#[test]
fn the_first_hour_walkthrough_runs_as_written() {
    let bash = require_tool("bash", "bash");
    require_tool("skopeo", "skopeo");
    require_tool("htpasswd", "apache2-utils");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let site = w.join("site");
    let bin = w.join("bin");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_berth"), bin.join("berth")).unwrap();

    let source = Distribution::plain();
    let f = images::build_set(&w.join("set"));
    images::push_with_skopeo(&f, &source, "acme");
    let mut ext = Distribution::tls_htpasswd(EXT_USER, EXT_PASS);
    let refs: Vec<&FixtureRef> = [("base", "2"), ("app", "1"), ("multi", "1")]
        .iter()
        .map(|(n, t)| f.get(n, t))
        .collect();

    let home = common::Home::new();
    let ca = ext.certs().unwrap().ca_path.display().to_string();
    let mut env: Vec<(String, String)> = [
        ("PATH", format!("{}:{}", bin.display(), common::PATH)),
        ("HOME", home.path().display().to_string()),
        ("LANG", "C.UTF-8".into()),
        ("SOURCE", source.host()),
        ("EXTERNAL", ext.host()),
        ("EXTERNAL_USER", EXT_USER.into()),
        ("EXTERNAL_PASSWORD", EXT_PASS.into()),
        ("EXTERNAL_CA", ca),
        ("EDGE_LISTEN", "127.0.0.1:0".into()),
        ("EDGE_USER", EDGE_USER.into()),
        ("EDGE_PASSWORD", EDGE_PASS.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(t) = std::env::var_os("TMPDIR") {
        env.push(("TMPDIR".into(), t.to_string_lossy().into_owned()));
    }
    let mut given: BTreeSet<String> = env.iter().map(|(k, _)| k.clone()).collect();
    for k in ["PATH", "HOME", "LANG", "TMPDIR"] {
        given.remove(k);
    }
    given.insert("EDGE".into());
    assert_eq!(
        declared(DOC),
        given,
        "the doc's variables are the ones set here"
    );

    let mut serve: Option<BerthServe> = None;
    let mut upstream_only = false;
    for b in blocks(DOC) {
        if b.has("serve") {
            let s =
                BerthServe::from_shell(&b.text, &site, &env, &w.join("serve"), "edge-data", true);
            env.push(("EDGE".into(), s.host.clone()));
            serve = Some(s);
            continue;
        }
        if b.has("offline") && ext.is_running() {
            // What `mirror` put into the external registry, before it goes away.
            let opts = SkopeoOpts::for_registry(&ext);
            for r in &refs {
                let at = format!(
                    "docker://{}/palette-images/acme/{}:{}",
                    ext.host(),
                    r.name,
                    r.tag
                );
                assert_eq!(skopeo::digest_of(&at, &opts), r.digest, "{at}");
            }
            ext.stop();
            assert!(!ext.is_running());
        }
        let o = Command::new(&bash)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&site)
            .args(["-euo", "pipefail", "-c", &b.text])
            .output()
            .unwrap();
        let log = serve.as_ref().map(|s| s.log_text()).unwrap_or_default();
        assert_eq!(
            o.status.code(),
            Some(b.exit()),
            "the block\n{}\n{}\n--- berth serve's log:\n{log}",
            b.text,
            text(&o)
        );
        if b.exit() == 1 {
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(
                out.matches("upstream-only").count(),
                refs.len(),
                "{}",
                text(&o)
            );
            upstream_only = true;
        }
    }
    assert!(upstream_only && !ext.is_running());
    let serve = serve.expect("the doc starts berth serve");

    // With the external registry gone, every image is served by the edge, byte for byte.
    let cert_dir = w.join("edge-certs");
    std::fs::create_dir_all(&cert_dir).unwrap();
    std::fs::copy(serve.ca(), cert_dir.join("ca.crt")).unwrap();
    let opts = SkopeoOpts {
        tls_verify: true,
        cert_dir: Some(cert_dir),
        creds: Some((EDGE_USER.into(), EDGE_PASS.into())),
    };
    let ext_component = ext.host().replace(':', "_");
    for r in &refs {
        let at = format!(
            "docker://{}/spectro-images/{ext_component}/palette-images/acme/{}:{}",
            serve.host, r.name, r.tag
        );
        assert_eq!(
            sha256_digest(&skopeo::inspect_raw(&at, &opts)),
            r.digest,
            "{at}"
        );
    }
    // The doc's own pulls fetched every layer of every platform.
    let pulled: Vec<_> = (1..=refs.len())
        .map(|i| site.join(format!("pulled-{i}")))
        .collect();
    for r in &refs {
        for m in &r.manifests {
            for l in &m.layers {
                let hex = l.digest.trim_start_matches("sha256:");
                assert!(
                    pulled.iter().any(|p| blob_exists(p, hex)),
                    "{}:{} {}: layer {} not pulled",
                    r.name,
                    r.tag,
                    m.platform,
                    l.digest
                );
            }
        }
    }
    assert!(!serve.log_text().contains(EXT_PASS));
}

fn blob_exists(layout: &Path, hex: &str) -> bool {
    layout.join("blobs/sha256").join(hex).is_file()
}
