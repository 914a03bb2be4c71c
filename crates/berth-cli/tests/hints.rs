//! Every connection, TLS and credentials error names which registry it is (the source, the
//! external registry of the user data, the edge registry, `copy`'s destination) and the one
//! option or user-data field that fixes it for that side, against real registries:
//! Distribution plain and with TLS + htpasswd, `berth serve` with TLS + htpasswd, and a
//! port nothing listens on. Each case: a plain-HTTP server answering the TLS hello, a
//! certificate of another CA (its issuer named), wrong credentials, connection refused.

mod common;

use std::path::{Path, PathBuf};

use berth_testkit::berth_serve::{BerthServe, ServeOpts};
use berth_testkit::images::{self, FixtureRef};
use berth_testkit::{Certs, Distribution, free_port};
use common::{berth, indent, text};

const USER: &str = "hint";
const PASS: &str = "Hint-Registry-Pw3";
const WRONG: &str = "Not-The-Password-8";
const EXT: &str = "stylus.externalRegistries.registries[0]";

/// Everything the cases need: images at a plain registry and at a TLS + htpasswd one, a
/// `berth serve` with TLS + htpasswd, a CA that issued neither, a port nobody listens on.
struct World {
    dir: tempfile::TempDir,
    plain: Distribution,
    tls: Distribution,
    serve: BerthServe,
    other_ca: Certs,
    dead: String,
    image: FixtureRef,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let fixture = images::build_set(&dir.path().join("set"));
        let plain = Distribution::plain();
        let tls = Distribution::tls_htpasswd(USER, PASS);
        images::push_with_skopeo(&fixture, &plain, "hint");
        images::push_with_skopeo(&fixture, &tls, "hint");
        let opts = ServeOpts {
            tls: true,
            user: Some((USER.into(), PASS.into())),
            ..ServeOpts::default()
        };
        let serve = BerthServe::start(
            Path::new(env!("CARGO_BIN_EXE_berth")),
            &dir.path().join("serve"),
            opts,
        );
        World {
            image: fixture.get("base", "1").clone(),
            dir,
            plain,
            tls,
            serve,
            other_ca: Certs::generate(&[]),
            dead: format!("127.0.0.1:{}", free_port()),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A profile with the one image at `host`.
    fn profile(&self, host: &str) -> PathBuf {
        let p = self.path(&format!("profile-{}.yaml", host.replace(':', "_")));
        let t = format!(
            "name: hints\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n            - image: {host}/hint/{}:{}\n",
            self.image.name, self.image.tag
        );
        std::fs::write(&p, t).unwrap();
        p
    }

    /// User data whose one external registry is `host` (with `extra` lines), images of the
    /// plain registry mapped to it.
    fn user_data(&self, name: &str, host: &str, extra: &str) -> PathBuf {
        let p = self.path(name);
        let t = format!(
            "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: {host}\n{extra}    registryMappingRules:\n      \"{src}\": \"{host}/mirror\"\n",
            src = self.plain.host(),
        );
        std::fs::write(&p, t).unwrap();
        p
    }

    /// A cert dir holding `ca` (for --src-cert-dir).
    fn cert_dir(&self, name: &str, ca: &Path) -> PathBuf {
        let d = self.path(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(ca, d.join("ca.crt")).unwrap();
        d
    }

    /// `berth mirror --profile P ARGS`: it fails (exit 1) and prints the error line of the
    /// one image, returned without its `error: SOURCE: ` prefix.
    fn mirror(&self, source_host: &str, args: &[&str]) -> String {
        let profile = self.profile(source_host);
        let mut a = vec!["mirror", "--profile", profile.to_str().unwrap()];
        a.extend_from_slice(args);
        let o = berth(&a);
        assert_eq!(o.status.code(), Some(1), "{a:?}\n{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!err.contains(PASS) && !err.contains(WRONG), "{}", text(&o));
        let prefix = format!(
            "error: {source_host}/hint/{}:{}: ",
            self.image.name, self.image.tag
        );
        let line = err
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line: {}", text(&o)));
        eprintln!("mirror {a:?}:\n  {line}");
        line.to_string()
    }

    fn plain_src(&self) -> Vec<String> {
        vec!["--src-tls-verify=false".into()]
    }
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The presented certificate's issuer, as the TLS error names it.
const TESTKIT_CA: &str = "CN=berth-testkit-ca";
const SERVE_CA: &str = "CN=Berth edge registry CA";

#[test]
fn each_error_names_its_side_and_the_fix_for_that_side() {
    let w = World::new();
    let (plain, tls, dead, edge) = (w.plain.host(), w.tls.host(), w.dead.clone(), &w.serve.host);
    let edge_target = |to: &str| -> Vec<String> {
        let mut v = w.plain_src();
        v.extend(["--edge-registry".into(), to.into()]);
        v
    };
    // --- the source registry: images are read from it.
    let to_edge = ["--edge-registry".to_string(), format!("http://{plain}")];
    let line = w.mirror(&plain, &args(&to_edge));
    assert_eq!(
        line,
        format!(
            "the source registry at {plain} answers plain HTTP, not HTTPS: give --src-tls-verify=false"
        )
    );
    let serve_ca = w.cert_dir("serve-ca", &w.serve.ca());
    let mut a = to_edge.to_vec();
    a.extend(["--src-cert-dir".into(), serve_ca.display().to_string()]);
    let line = w.mirror(&tls, &args(&a));
    assert_eq!(
        line,
        format!(
            "TLS with the source registry {tls} failed: the server presented a certificate issued by `{TESTKIT_CA}` (for `CN=127.0.0.1`), a CA that is not trusted; trust its CA with --src-cert-dir DIR (DIR/{tls}/ca.crt, or DIR/ca.crt for every source); for a test registry only, --src-tls-verify=false"
        )
    );
    let tls_ca = w.cert_dir("tls-ca", &w.tls.certs().unwrap().ca_path);
    let mut a = to_edge.to_vec();
    a.extend([
        "--src-cert-dir".into(),
        tls_ca.display().to_string(),
        "--src-creds".into(),
        format!("{USER}:{WRONG}"),
    ]);
    let line = w.mirror(&tls, &args(&a));
    assert!(
        line.starts_with(&format!(
            "the source registry {tls} rejected the credentials of user `{USER}` ("
        )) && line.ends_with(
            "): correct them in --src-creds USER:PASS (or REGISTRY=USER:PASS), or --src-authfile FILE"
        ),
        "{line}"
    );
    let line = w.mirror(&dead, &args(&to_edge));
    assert_eq!(
        line,
        format!(
            "cannot reach the source registry {dead}: Connection refused (os error 111); check that it is running, and its address (the image references of the profiles)"
        )
    );

    // --- the edge registry (`berth serve` with TLS + htpasswd).
    let line = w.mirror(&plain, &args(&edge_target(&plain)));
    assert_eq!(
        line,
        format!(
            "the edge registry at {plain} answers plain HTTP, not HTTPS: give --edge-insecure (or --edge-registry http://HOST)"
        )
    );
    let mut a = edge_target(edge);
    let testkit_ca = w.tls.certs().unwrap().ca_path.display().to_string();
    a.extend(["--edge-ca".into(), testkit_ca]);
    let line = w.mirror(&plain, &args(&a));
    assert_eq!(
        line,
        format!(
            "TLS with the edge registry {edge} failed: the server presented a certificate issued by `{SERVE_CA}` (for `CN=127.0.0.1`), a CA that is not trusted; trust its CA with --edge-ca FILE (berth serve's DATA/tls/ca.crt); for a test registry only, --edge-insecure"
        )
    );
    let mut a = edge_target(edge);
    a.extend([
        "--edge-ca".into(),
        w.serve.ca().display().to_string(),
        "--edge-creds".into(),
        format!("{USER}:{WRONG}"),
    ]);
    let line = w.mirror(&plain, &args(&a));
    assert!(
        line.starts_with(&format!(
            "the edge registry {edge} rejected the credentials of user `{USER}` ("
        )) && line.ends_with("): correct them in --edge-creds USER:PASS"),
        "{line}"
    );
    let line = w.mirror(&plain, &args(&edge_target(&dead)));
    assert_eq!(
        line,
        format!(
            "cannot reach the edge registry {dead}: Connection refused (os error 111); check that it is running, and its address (--edge-registry)"
        )
    );

    // --- the external registry of the user data.
    let ud_args = |ud: &Path| -> Vec<String> {
        let mut v = w.plain_src();
        v.extend(["--user-data".into(), ud.display().to_string()]);
        v
    };
    let ud = w.user_data("ud-plain.yaml", &plain, "");
    let line = w.mirror(&plain, &args(&ud_args(&ud)));
    assert_eq!(
        line,
        format!(
            "the external registry at {plain} answers plain HTTP, not HTTPS: set `{EXT}.insecure: true` in the user data"
        )
    );
    let pem = |c: &str| format!("        certificates:\n          - |\n{}", indent(c, 12));
    let ud = w.user_data("ud-ca.yaml", &tls, &pem(&w.other_ca.ca_pem));
    let line = w.mirror(&plain, &args(&ud_args(&ud)));
    assert_eq!(
        line,
        format!(
            "TLS with the external registry {tls} failed: the server presented a certificate issued by `{TESTKIT_CA}` (for `CN=127.0.0.1`), but not by the trusted CA of that name: another CA with the same name issued it; put its CA's PEM text in `{EXT}.certificates` in the user data; for a test registry only, `{EXT}.insecure: true`"
        )
    );
    let creds = format!("        username: {USER}\n        password: {WRONG}\n");
    let ud = w.user_data(
        "ud-creds.yaml",
        &tls,
        &(creds + &pem(&w.tls.certs().unwrap().ca_pem)),
    );
    let line = w.mirror(&plain, &args(&ud_args(&ud)));
    assert!(
        line.starts_with(&format!(
            "the external registry {tls} rejected the credentials of user `{USER}` ("
        )) && line.ends_with(&format!(
            "): correct them in `{EXT}.username` and `{EXT}.password` in the user data (with `encodedPassword: true` the password is base64)"
        )),
        "{line}"
    );
    let ud = w.user_data("ud-dead.yaml", &dead, "");
    let line = w.mirror(&plain, &args(&ud_args(&ud)));
    assert_eq!(
        line,
        format!(
            "cannot reach the external registry {dead}: Connection refused (os error 111); check that it is running, and its address (`{EXT}.domain` and the mapping rules in the user data)"
        )
    );
}

/// `verify` says the same, as the image's `error` state; `copy` names its destination's
/// `--dest-*` options; no cause is printed twice.
#[test]
fn verify_and_copy_name_the_side_too() {
    let w = World::new();
    let (plain, tls) = (w.plain.host(), w.tls.host());
    let profile = w.profile(&plain);
    let edge = &w.serve.host;
    let o = berth(&[
        "verify",
        "--profile",
        profile.to_str().unwrap(),
        "--src-tls-verify=false",
        "--edge-registry",
        edge,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("verify:\n{}", text(&o));
    assert!(
        out.lines().any(|l| l.starts_with("error ") && l.ends_with(&format!(
            "TLS with the edge registry {edge} failed: the server presented a certificate issued by `{SERVE_CA}` (for `CN=127.0.0.1`), a CA that is not trusted; trust its CA with --edge-ca FILE (berth serve's DATA/tls/ca.crt); for a test registry only, --edge-insecure"
        ))),
        "{}",
        text(&o)
    );
    // The source answers plain HTTP: not compared, and why, with the flag.
    let o = berth(&[
        "verify",
        "--profile",
        profile.to_str().unwrap(),
        "--edge-registry",
        &format!("http://{plain}"),
    ]);
    eprintln!("verify:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "not compared with its source: the source registry at {plain} answers plain HTTP, not HTTPS: give --src-tls-verify=false"
        )),
        "{}",
        text(&o)
    );

    let src = format!("docker://{plain}/hint/{}:{}", w.image.name, w.image.tag);
    let dst = format!("docker://{tls}/copied/base:1");
    let o = berth(&["copy", &src, &dst, "--src-tls-verify=false"]);
    eprintln!("copy:\n{}", text(&o));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "TLS with the destination registry {tls} failed: the server presented a certificate issued by `{TESTKIT_CA}` (for `CN=127.0.0.1`), a CA that is not trusted; trust its CA with --dest-cert-dir DIR (DIR/{tls}/ca.crt); for a test registry only, --dest-tls-verify=false"
        )),
        "{}",
        text(&o)
    );
    let dir = w.cert_dir("dest-ca", &w.tls.certs().unwrap().ca_path);
    let o = berth(&[
        "copy",
        &src,
        &dst,
        "--src-tls-verify=false",
        "--dest-cert-dir",
        dir.to_str().unwrap(),
    ]);
    eprintln!("copy:\n{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "the destination registry {tls} requires credentials for "
        )) && err.contains(": give them in --dest-creds USER:PASS"),
        "{}",
        text(&o)
    );
    // One cause, one line: nothing in the output says the same thing twice.
    for l in err.lines() {
        if let Some(i) = l.find("(os error") {
            assert_eq!(l.matches(&l[i..]).count(), 1, "{l}");
        }
    }
}
