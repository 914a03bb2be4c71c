//! Real clients of `berth serve` and of the registry configuration Berth writes for the node:
//!
//! - podman pushing to and pulling from `berth serve` over TLS (its generated CA) with
//!   htpasswd, in an isolated podman (testkit);
//! - `ctr` of a private containerd 1.6 pulling `<external-registry>/<repo>` and an upstream
//!   host's images through `berth serve --user-data` (a pull-through cache of a Distribution
//!   with TLS + htpasswd) with the hosts.toml files `berth node-config` writes, and still
//!   pulling them from its cache once the external registry is gone;
//! - `ctr` pulling straight from the external registry with the hosts.toml `berth
//!   node-config` writes for a mapping rule (a path-prefixed mirror: `override_path`), its CA
//!   and its credentials.

mod common;
#[path = "../../berth-containerd/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use berth_testkit::images::{self, FixtureRef};
use berth_testkit::podman::Podman;
use berth_testkit::skopeo::{self, SkopeoOpts};
use berth_testkit::{Distribution, require_tool, sha256_digest};
use common::{berth, indent, text};
use support::TestContainerd;

const NS: &str = "k8s.io";
const EDGE_USER: &str = "edge";
const EDGE_PASS: &str = "Edge-Serve-Pw9";
const EXT_USER: &str = "ext";
const EXT_PASS: &str = "Ext-Registry-Pw7";

/// `berth serve` as a child process: TLS with its generated CA, htpasswd, on a port it picks
/// (`--listen 127.0.0.1:0`; the address is read from its first line). Dropping it kills
/// exactly that process.
struct Serve {
    child: Child,
    _home: common::Home,
    _stdout: BufReader<ChildStdout>,
    host: String,
    data: PathBuf,
    log: PathBuf,
    /// A containers cert dir holding the generated CA.
    cert_dir: PathBuf,
}

impl Serve {
    fn start(dir: &Path, extra: &[&str]) -> Serve {
        std::fs::create_dir_all(dir).unwrap();
        let htpasswd = require_tool("htpasswd", "apache2-utils");
        let line = Command::new(htpasswd)
            .args(["-Bbn", EDGE_USER, EDGE_PASS])
            .output()
            .unwrap();
        assert!(line.status.success(), "{}", text(&line));
        let ht = dir.join("htpasswd");
        std::fs::write(&ht, &line.stdout).unwrap();
        let data = dir.join("data");
        let log = dir.join("serve.log");
        let home = common::Home::new();
        let mut child = common::command(home.path())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--tls-self-signed", "--data"])
            .arg(&data)
            .arg("--htpasswd")
            .arg(&ht)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start berth serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let Some(host) = first.trim().strip_prefix("berth: serving https://") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "berth serve did not start: {first:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let cert_dir = dir.join("certs");
        std::fs::create_dir_all(&cert_dir).unwrap();
        std::fs::copy(data.join("tls/ca.crt"), cert_dir.join("ca.crt")).unwrap();
        Serve {
            host: host.to_string(),
            child,
            _home: home,
            _stdout: stdout,
            data,
            log,
            cert_dir,
        }
    }

    fn ca(&self) -> PathBuf {
        self.cert_dir.join("ca.crt")
    }

    fn opts(&self) -> SkopeoOpts {
        SkopeoOpts {
            tls_verify: true,
            cert_dir: Some(self.cert_dir.clone()),
            creds: Some((EDGE_USER.into(), EDGE_PASS.into())),
        }
    }

    /// `GET path` with curl (verifying the CA, as the edge user): (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        let curl = require_tool("curl", "curl");
        let o = Command::new(curl)
            .args(["-sS", "-w", "\n%{http_code}", "--cacert"])
            .arg(self.ca())
            .arg("-u")
            .arg(format!("{EDGE_USER}:{EDGE_PASS}"))
            .arg(format!("https://{}{path}", self.host))
            .output()
            .unwrap();
        assert!(o.status.success(), "curl {path}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let (body, code) = out.rsplit_once('\n').unwrap();
        (code.trim().parse().unwrap(), body.to_string())
    }

    /// A counter of `/metrics` (summed over its labels).
    fn metric(&self, name: &str) -> f64 {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200, "{body}");
        body.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

// ---------------------------------------------------------------------------------------
// podman

/// podman loads an image from the testkit layout (real files), pushes it to `berth serve`
/// (TLS with the generated CA via `--cert-dir`, htpasswd via `--creds`), removes it, pulls
/// it back; the manifest podman pushed is the one berth serves, the pulled image has the
/// fixture's config (image ID) and layers (diff IDs). A wrong password is refused.
#[test]
fn podman_pushes_to_and_pulls_from_berth_serve_over_tls_with_htpasswd() {
    let work = tempfile::tempdir().unwrap();
    let podman = Podman::new();
    let f = images::build_set(&podman.scratch().join("set"));
    let serve = Serve::start(&work.path().join("serve"), &[]);
    let cert_dir = serve.cert_dir.display().to_string();
    let policy = podman.policy().display().to_string();
    let authfile = podman.authfile().display().to_string();
    let creds = format!("{EDGE_USER}:{EDGE_PASS}");
    let tls = [
        "--tls-verify=true",
        "--cert-dir",
        &cert_dir,
        "--authfile",
        &authfile,
        "--signature-policy",
        &policy,
    ];

    // base:2 is an OCI manifest, app:1 Docker schema 2 (loaded from a dir: export).
    for r in [f.get("base", "2"), f.get("app", "1")] {
        let src = f.skopeo_source(r, &podman.scratch().join(&r.ref_name));
        let mut args = vec!["pull", "-q", "--signature-policy", &policy, &src];
        let id = podman.ok(&args);
        let config = &r.manifests[0].config.digest;
        assert_eq!(id, hex(config), "podman's image ID is the config digest");

        let dest = format!("docker://{}/library/{}:{}", serve.host, r.name, r.tag);
        let digestfile = work.path().join(format!("{}.digest", r.ref_name));
        let digestfile_s = digestfile.display().to_string();
        args = vec![
            "push",
            "-q",
            "--creds",
            &creds,
            "--digestfile",
            &digestfile_s,
        ];
        args.extend_from_slice(&tls);
        args.extend_from_slice(&[&id, &dest]);
        podman.ok(&args);
        let pushed = std::fs::read_to_string(&digestfile).unwrap();
        // What berth serves under the tag is exactly what podman pushed.
        let raw = skopeo::inspect_raw(&dest, &serve.opts());
        assert_eq!(sha256_digest(&raw), pushed.trim(), "{dest}");
        let cfg = skopeo::inspect_config_raw(&dest, &serve.opts());
        assert_eq!(&sha256_digest(&cfg), config, "{dest}: config");

        // Gone locally, then pulled back from berth serve.
        podman.ok(&["rmi", "-f", &id]);
        assert!(podman.image_ids().is_empty(), "{:?}", podman.image_ids());
        let name = format!("{}/library/{}:{}", serve.host, r.name, r.tag);
        args = vec!["pull", "-q", "--creds", &creds];
        args.extend_from_slice(&tls);
        args.push(&name);
        let pulled = podman.ok(&args);
        assert_eq!(pulled, hex(config), "{name}");
        let digest = podman.ok(&["inspect", "--format", "{{.Digest}}", &name]);
        assert_eq!(digest, pushed.trim(), "{name}");
        let layers = podman.ok(&["inspect", "--format", "{{json .RootFS.Layers}}", &name]);
        let layers: Vec<String> = serde_json::from_str(&layers).unwrap();
        assert_eq!(layers, r.manifests[0].diff_ids, "{name}: diff IDs");
        podman.ok(&["rmi", "-f", &name]);
    }

    // A wrong password: the push is refused and nothing is stored under that name.
    let src = f.oci_reference(f.get("base", "1"));
    let id = podman.ok(&["pull", "-q", "--signature-policy", &policy, &src]);
    let dest = format!("docker://{}/library/denied:1", serve.host);
    let wrong = format!("{EDGE_USER}:not-the-password");
    let mut args = vec!["push", "--creds", &wrong];
    args.extend_from_slice(&tls);
    args.extend_from_slice(&[&id, &dest]);
    let o = podman.run(&args);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("401") || err.contains("authentication"),
        "{}",
        text(&o)
    );
    assert!(!err.contains("not-the-password"), "{err}");
    let (code, body) = serve.get("/v2/library/denied/tags/list");
    assert_eq!(code, 404, "{body}");
    assert!(
        !serve.log().contains("not-the-password") && !serve.log().contains(EDGE_PASS),
        "{}",
        serve.log()
    );
    // podman wrote nothing outside its own directory.
    assert!(podman.root().join("vfs").is_dir());
}

// ---------------------------------------------------------------------------------------
// ctr with the hosts.toml Berth writes

/// User data naming `ext` (Distribution, TLS + htpasswd) as the external registry
/// `EXT/<prefix>` with its credentials and CA, and mapping rules.
fn user_data(dir: &Path, ext: &Distribution, prefix: &str, rules: &[(&str, String)]) -> PathBuf {
    let ca = &ext.certs().unwrap().ca_pem;
    let mut t = format!(
        "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {host}/{prefix}\n        username: {EXT_USER}\n        password: {EXT_PASS}\n        certificates:\n          - |\n{ca}    registryMappingRules:\n",
        host = ext.host(),
        ca = indent(ca, 12),
    );
    for (from, to) in rules {
        t.push_str(&format!("      \"{from}\": \"{to}\"\n"));
    }
    let p = dir.join("user-data.yaml");
    std::fs::write(&p, t).unwrap();
    p
}

/// Every file under `dir` with its size, sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            } else {
                out.push((e.path(), meta.len()));
            }
        }
    }
    out.sort();
    out
}

fn profile(dir: &Path, images: &[String]) -> PathBuf {
    let mut t = String::from(
        "name: clients\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n",
    );
    for i in images {
        t.push_str(&format!("            - image: {i}\n"));
    }
    let p = dir.join("profile.yaml");
    std::fs::write(&p, t).unwrap();
    p
}

fn node_config(ud: &Path, profile: &Path, hosts: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "node-config",
        "--user-data",
        ud.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        "--hosts-dir",
        hosts.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = berth(&args);
    assert!(o.status.success(), "{}", text(&o));
    o
}

/// `ctr images pull --hosts-dir DIR --snapshotter native REF` (never `--user`: credentials
/// come from hosts.toml or not at all).
fn ctr_pull(c: &TestContainerd, hosts: &Path, reference: &str) -> Output {
    c.ctr(
        NS,
        &[
            "images",
            "pull",
            "--snapshotter",
            "native",
            "--hosts-dir",
            hosts.to_str().unwrap(),
            reference,
        ],
    )
}

fn ctr_pull_ok(c: &TestContainerd, hosts: &Path, reference: &str) {
    let o = ctr_pull(c, hosts, reference);
    assert!(
        o.status.success(),
        "ctr pull {reference}: {}\n--- containerd log:\n{}",
        text(&o),
        c.log()
    );
}

fn digest_in_containerd(c: &TestContainerd, name: &str) -> Option<String> {
    let listed: HashMap<String, String> = c.images(NS).into_iter().collect();
    listed.get(name).cloned()
}

/// Remove images from containerd and wait for its garbage collection (`--sync`), so a
/// later pull fetches everything again.
fn ctr_rm(c: &TestContainerd, names: &[&str]) {
    let mut args = vec!["images", "rm", "--sync"];
    args.extend_from_slice(names);
    c.ctr_ok(NS, &args);
}

fn file(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The external registry holds the fixture under `spectro-images/quay.io/berth/`; the user
/// data maps `quay.io` there. `berth serve --user-data` is the edge registry, and `berth
/// node-config --edge-registry` writes hosts.toml for `quay.io` and for the external
/// registry itself, both trying the edge registry first. ctr pulls both kinds of names
/// through it; once the external registry is stopped, the cached images still come.
#[test]
fn ctr_pulls_through_berth_serve_with_the_hosts_toml_berth_writes() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut ext = Distribution::tls_htpasswd(EXT_USER, EXT_PASS);
    let f = images::build_set(&w.join("set"));
    images::push_with_skopeo(&f, &ext, "spectro-images/quay.io/berth");
    let ud = user_data(
        w,
        &ext,
        "spectro-images",
        &[("quay.io", format!("{}/spectro-images/quay.io", ext.host()))],
    );
    let serve = Serve::start(
        &w.join("serve"),
        &["--anonymous-pull", "--user-data", ud.to_str().unwrap()],
    );
    let names = |r: &FixtureRef| format!("quay.io/berth/{}:{}", r.name, r.tag);
    let refs: Vec<&FixtureRef> = f.refs.iter().collect();
    let profile = profile(w, &refs.iter().map(|r| names(r)).collect::<Vec<_>>());
    let hosts = w.join("certs.d");
    let edge_url = format!("https://{}", serve.host);
    let o = node_config(
        &ud,
        &profile,
        &hosts,
        &[
            "--edge-registry",
            &edge_url,
            "--edge-ca",
            serve.ca().to_str().unwrap(),
            "--hosts-credentials",
        ],
    );
    let eh = ext.host();
    let ehp = eh.replace(':', "_");
    let quay = file(&hosts.join("quay.io/hosts.toml"));
    assert!(
        quay.contains(&format!(
            "[host.\"https://{}/v2/spectro-images/{ehp}/spectro-images/quay.io\"]",
            serve.host
        )) && quay.contains(&format!(
            "server = \"https://{eh}/v2/spectro-images/quay.io\""
        )),
        "{quay}"
    );
    let direct = file(&hosts.join(&eh).join("hosts.toml"));
    assert!(
        direct.contains(&format!(
            "[host.\"https://{}/v2/spectro-images/{ehp}\"]",
            serve.host
        )) && direct.contains(&format!("server = \"https://{eh}/v2\"")),
        "{direct}\n{}",
        text(&o)
    );
    // The edge registry gets no credentials (anonymous pulls); the external registry's are
    // in the files and those are private.
    use std::os::unix::fs::PermissionsExt;
    for p in [
        hosts.join("quay.io/hosts.toml"),
        hosts.join(&eh).join("hosts.toml"),
    ] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }

    let c = TestContainerd::start();
    let base2 = f.get("base", "2");
    let app = f.get("app", "1");
    let multi = f.get("multi", "1");
    // An upstream name, and the external registry's own name, both through the edge.
    let via_upstream = names(base2);
    let via_ext = format!("{eh}/spectro-images/quay.io/berth/app:1");
    let misses0 = serve.metric("berth_cache_misses_total");
    for (name, r) in [
        (&via_upstream, base2),
        (&via_ext, app),
        (&names(multi), multi),
    ] {
        ctr_pull_ok(&c, &hosts, name);
        assert_eq!(
            digest_in_containerd(&c, name).as_ref(),
            Some(&r.digest),
            "{name}"
        );
    }
    assert!(
        serve.metric("berth_cache_misses_total") > misses0,
        "{}",
        serve.get("/metrics").1
    );
    // berth serve stored them in its pull-through repositories.
    let cached = serve
        .data
        .join("repos/spectro-images")
        .join(&ehp)
        .join("spectro-images/quay.io/berth");
    let tree = || {
        let o = Command::new("find")
            .arg(serve.data.join("repos"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    for r in [base2, app, multi] {
        let p = cached.join(&r.name).join("_tags").join(&r.tag);
        assert!(p.exists(), "{}\n{}\n{}", p.display(), tree(), serve.log());
        let tag = file(&p);
        assert!(tag.contains(hex(&r.digest)), "{}: {tag}", r.name);
        // Every layer went through it (containerd fetched a layer shared by two images
        // once, so it is linked in the first repository only).
        for b in &r.manifests[0].layers {
            let h = hex(&b.digest);
            let blob = serve.data.join("blobs/sha256").join(&h[..2]).join(h);
            assert!(blob.exists(), "{} {}", r.name, b.digest);
        }
    }

    // The external registry goes away: what berth serve holds still comes, under both kinds
    // of names, and an image it never fetched does not.
    ext.stop();
    ctr_rm(&c, &[&via_upstream, &via_ext]);
    assert!(!c.content(NS).contains(&base2.digest));
    let hits0 = serve.metric("berth_cache_hits_total");
    let via_ext2 = format!("{eh}/spectro-images/quay.io/berth/base:2");
    for (name, r) in [
        (&via_upstream, base2),
        (&names(app), app),
        (&via_ext2, base2),
    ] {
        ctr_pull_ok(&c, &hosts, name);
        assert_eq!(
            digest_in_containerd(&c, name).as_ref(),
            Some(&r.digest),
            "{name}"
        );
    }
    assert!(serve.metric("berth_cache_hits_total") > hits0);
    let never = names(f.get("base", "1"));
    let o = ctr_pull(&c, &hosts, &never);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(digest_in_containerd(&c, &never).is_none());
    assert!(!serve.log().contains(EXT_PASS), "{}", serve.log());
}

/// No edge registry: the user data maps `registry.example.com` to a path of the external
/// registry, so `berth node-config` writes a path-prefixed server (`override_path`), its CA
/// and, with `--hosts-credentials`, its credentials. ctr (containerd 1.6) pulls through it
/// and from the external registry by its own name; without the credentials it is refused.
#[test]
fn ctr_pulls_from_the_external_registry_with_the_hosts_toml_berth_writes() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let ext = Distribution::tls_htpasswd(EXT_USER, EXT_PASS);
    let f = images::build_set(&w.join("set"));
    images::push_with_skopeo(&f, &ext, "mapped/example/library");
    let eh = ext.host();
    let ud = user_data(
        w,
        &ext,
        "mapped",
        &[("registry.example.com", format!("{eh}/mapped/example"))],
    );
    let name = |r: &FixtureRef| format!("registry.example.com/library/{}:{}", r.name, r.tag);
    let profile = profile(w, &f.refs.iter().map(name).collect::<Vec<_>>());

    // Without credentials in hosts.toml: TLS works (the CA), the registry says 401.
    let bare = w.join("certs.d-bare");
    node_config(&ud, &profile, &bare, &[]);
    let c = TestContainerd::start();
    let base = f.get("base", "1");
    let o = ctr_pull(&c, &bare, &name(base));
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(
        err.contains("401") || err.contains("unauthorized"),
        "{}",
        text(&o)
    );

    let hosts = w.join("certs.d");
    node_config(&ud, &profile, &hosts, &["--hosts-credentials"]);
    let toml = file(&hosts.join("registry.example.com/hosts.toml"));
    assert!(
        toml.contains(&format!("server = \"https://{eh}/v2/mapped/example\""))
            && toml.contains("override_path = true")
            && toml.contains(&format!("ca = \"{}.crt\"", eh.replace(':', "_")))
            && toml.contains("Authorization = \"Basic "),
        "{toml}"
    );
    for r in [base, f.get("app", "1"), f.get("multi", "1-docker")] {
        ctr_pull_ok(&c, &hosts, &name(r));
        assert_eq!(
            digest_in_containerd(&c, &name(r)).as_ref(),
            Some(&r.digest),
            "{}",
            name(r)
        );
    }
    // The external registry by its own name: its hosts.toml carries CA and credentials.
    let own = format!("{eh}/mapped/example/library/base:2");
    ctr_pull_ok(&c, &hosts, &own);
    assert_eq!(
        digest_in_containerd(&c, &own),
        Some(f.get("base", "2").digest.clone())
    );
    // Distribution saw the prefixed paths: override_path made containerd 1.6 use them.
    let log = file(ext.log_path());
    assert!(
        log.contains("mapped/example/library/base"),
        "{}",
        &log[log.len().saturating_sub(4000)..]
    );
}

// ---------------------------------------------------------------------------------------
// seeding the edge registry before the site goes offline (docs/serve.md)

/// `berth serve` pulls through to the external registry. Before seeding, `verify` says the
/// images are only reachable through that upstream (exit 1), and stores nothing in the edge
/// registry by asking; `mirror --edge-registry`
/// copies them into the edge (it asks with `Cache-Control: only-if-cached`, so the
/// pull-through does not answer for them), `verify` then says present; with the external
/// registry stopped, skopeo still pulls every image from the edge, byte for byte.
#[test]
fn seeding_the_edge_stores_the_images_and_survives_the_upstream_going_away() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut ext = Distribution::tls_htpasswd(EXT_USER, EXT_PASS);
    let f = images::build_set(&w.join("set"));
    images::push_with_skopeo(&f, &ext, "spectro-images/quay.io/berth");
    let ud = user_data(
        w,
        &ext,
        "spectro-images",
        &[("quay.io", format!("{}/spectro-images/quay.io", ext.host()))],
    );
    let serve = Serve::start(&w.join("serve"), &["--user-data", ud.to_str().unwrap()]);
    let eh = ext.host();
    // The profile names the images as the external registry holds them.
    let refs = [f.get("base", "2"), f.get("app", "1"), f.get("multi", "1")];
    let name = |r: &FixtureRef| format!("{eh}/spectro-images/quay.io/berth/{}:{}", r.name, r.tag);
    let profile = profile(w, &refs.iter().map(|r| name(r)).collect::<Vec<_>>());
    let src_certs = w.join("src-certs");
    std::fs::create_dir_all(&src_certs).unwrap();
    std::fs::copy(&ext.certs().unwrap().ca_path, src_certs.join("ca.crt")).unwrap();
    let src_creds = format!("{EXT_USER}:{EXT_PASS}");
    let edge_creds = format!("{EDGE_USER}:{EDGE_PASS}");
    let args = |cmd: &str| -> Vec<String> {
        [
            cmd,
            "--profile",
            profile.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "--src-creds",
            &src_creds,
            "--src-cert-dir",
            src_certs.to_str().unwrap(),
            "--edge-registry",
            &serve.host,
            "--edge-ca",
            serve.ca().to_str().unwrap(),
            "--edge-creds",
            &edge_creds,
            "--output",
            "json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |cmd: &str| {
        let a = args(cmd);
        berth(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let statuses = |o: &Output| -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)));
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["status"].as_str().unwrap().to_string())
            .collect()
    };

    let before = tree(&serve.data);
    let o = run("verify");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(statuses(&o), ["upstream-only"; 3], "{}", text(&o));
    // Asking the edge whether its upstream has them (`Cache-Control: no-store`) stored
    // nothing: verify leaves what it verifies as it was (a pull-through answer is stored
    // behind the response, so give it the time to land).
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(
        tree(&serve.data),
        before,
        "verify changed the edge registry's store"
    );

    let o = run("mirror");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(statuses(&o), ["copied"; 3], "{}", text(&o));
    let o = run("verify");
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(statuses(&o), ["present"; 3], "{}", text(&o));

    // The site goes offline: every image still comes from the edge, whole.
    ext.stop();
    let ehp = eh.replace(':', "_");
    for r in refs {
        let at_edge = format!(
            "docker://{}/spectro-images/{ehp}/spectro-images/quay.io/berth/{}:{}",
            serve.host, r.name, r.tag
        );
        let raw = skopeo::inspect_raw(&at_edge, &serve.opts());
        assert_eq!(sha256_digest(&raw), r.digest, "{at_edge}");
        let out = w.join("pulled").join(&r.ref_name);
        std::fs::create_dir_all(&out).unwrap();
        skopeo::copy(
            &at_edge,
            &serve.opts(),
            &format!("oci:{}:x", out.display()),
            &SkopeoOpts::insecure(),
            &[],
        );
    }
    // And containerd pulls each from the edge alone (its CA in hosts.toml, its login).
    let hosts = w.join("edge-certs.d");
    let dir = hosts.join(&serve.host);
    std::fs::create_dir_all(&dir).unwrap();
    let toml = format!(
        "server = \"https://{0}\"\n\n[host.\"https://{0}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{1}\"\n",
        serve.host,
        serve.ca().display()
    );
    std::fs::write(dir.join("hosts.toml"), toml).unwrap();
    let c = TestContainerd::start();
    for r in refs {
        let at_edge = format!(
            "{}/spectro-images/{ehp}/spectro-images/quay.io/berth/{}:{}",
            serve.host, r.name, r.tag
        );
        let (hosts_dir, user) = (hosts.to_str().unwrap(), edge_creds.as_str());
        let o = c.ctr(
            NS,
            &[
                "images",
                "pull",
                "--snapshotter",
                "native",
                "--user",
                user,
                "--hosts-dir",
                hosts_dir,
                &at_edge,
            ],
        );
        assert!(
            o.status.success(),
            "ctr pull {at_edge}: {}\n{}",
            text(&o),
            c.log()
        );
        let digest = digest_in_containerd(&c, &at_edge);
        assert_eq!(digest.as_ref(), Some(&r.digest), "{at_edge}");
    }
    assert!(!serve.log().contains(EXT_PASS));
}
