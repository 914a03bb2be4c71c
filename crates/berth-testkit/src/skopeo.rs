//! `skopeo` as an independent reference client, with an isolated configuration.
//!
//! Every call runs with a cleared environment and a fresh temporary directory holding its
//! own `policy.json` (insecureAcceptAnything), `registries.conf` (empty),
//! `containers.conf` (empty), `registries.d/` and an authfile, and always passes
//! `--src-tls-verify`/`--dest-tls-verify` (or `--tls-verify`) explicitly, so nothing of
//! the host configuration (`/etc/containers`, `~/.docker/config.json`, `SSL_CERT_FILE`,
//! `REGISTRY_AUTH_FILE`, proxies) leaks in. Failures panic with skopeo's output.
//!
//! References carry their transport: `docker://127.0.0.1:PORT/repo:tag`,
//! `oci:/path/to/layout:ref_name`, `oci-archive:...`, `docker-archive:...`, `dir:...`.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::{Distribution, clean_command, require_tool, run_checked, sha256_digest};

/// How skopeo talks to a `docker://` registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkopeoOpts {
    /// Require HTTPS and verify certificates. `false` also allows plain HTTP.
    pub tls_verify: bool,
    /// A containers-style certificate directory (`ca.crt`), e.g. [`crate::Certs::cert_dir`].
    pub cert_dir: Option<PathBuf>,
    /// `(user, password)`.
    pub creds: Option<(String, String)>,
}

impl SkopeoOpts {
    /// Plain HTTP / no verification, anonymous (right for [`Distribution::plain`]).
    pub fn insecure() -> SkopeoOpts {
        SkopeoOpts::default()
    }

    /// The options that reach `reg`: for TLS, verification against its CA and its
    /// credentials; for plain HTTP, `tls_verify = false`.
    pub fn for_registry(reg: &Distribution) -> SkopeoOpts {
        SkopeoOpts {
            tls_verify: reg.certs().is_some(),
            cert_dir: reg.certs().map(|c| c.cert_dir.clone()),
            creds: reg.credentials(),
        }
    }

    fn push_args(&self, cmd: &mut Command, side: Side) {
        let p = side.prefix();
        cmd.arg(format!("--{p}tls-verify={}", self.tls_verify));
        if let Some(d) = &self.cert_dir {
            cmd.arg(format!("--{p}cert-dir")).arg(d);
        }
        // Without creds the private, empty authfile makes it anonymous.
        if let Some((u, pw)) = &self.creds {
            cmd.arg(format!("--{p}creds")).arg(format!("{u}:{pw}"));
        }
    }
}

#[derive(Clone, Copy)]
enum Side {
    Single,
    Src,
    Dest,
}

impl Side {
    fn prefix(self) -> &'static str {
        match self {
            Side::Single => "",
            Side::Src => "src-",
            Side::Dest => "dest-",
        }
    }
}

/// An isolated skopeo: a clean environment and private config files (accept-anything
/// policy, empty registries.conf, containers.conf and authfile), so nothing of the host's
/// leaks in. Removed on drop.
pub struct Isolated {
    dir: TempDir,
    skopeo: PathBuf,
}

impl Default for Isolated {
    fn default() -> Isolated {
        Isolated::new()
    }
}

impl Isolated {
    pub fn new() -> Isolated {
        let skopeo = require_tool("skopeo", "skopeo");
        let dir = tempfile::Builder::new()
            .prefix("berth-skopeo-")
            .tempdir()
            .expect("create skopeo temp dir");
        let d = dir.path();
        std::fs::write(
            d.join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("write policy.json");
        std::fs::write(d.join("registries.conf"), "").expect("write registries.conf");
        std::fs::write(d.join("containers.conf"), "").expect("write containers.conf");
        std::fs::write(d.join("auth.json"), "{\"auths\":{}}").expect("write auth.json");
        std::fs::create_dir(d.join("registries.d")).expect("mkdir registries.d");
        std::fs::create_dir(d.join("tmp")).expect("mkdir tmp");
        Isolated { dir, skopeo }
    }

    /// `skopeo --policy .. --registries.d .. --tmpdir .. <subcommand>`
    pub fn command(&self, subcommand: &str) -> Command {
        let d = self.dir.path();
        let mut c = clean_command(&self.skopeo, d);
        c.env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("REGISTRY_AUTH_FILE", d.join("auth.json"))
            .env("TMPDIR", d.join("tmp"))
            .arg("--policy")
            .arg(d.join("policy.json"))
            .arg("--registries.d")
            .arg(d.join("registries.d"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg(subcommand);
        c
    }

    /// The private (empty) auth file.
    pub fn authfile(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }
}

/// `skopeo inspect --raw REF`: the exact manifest (or index) bytes.
pub fn inspect_raw(reference_with_transport: &str, opts: &SkopeoOpts) -> Vec<u8> {
    let iso = Isolated::new();
    let mut c = iso.command("inspect");
    c.arg("--raw").arg("--authfile").arg(iso.authfile());
    opts.push_args(&mut c, Side::Single);
    c.arg(reference_with_transport);
    run_checked(
        &mut c,
        &format!("skopeo inspect --raw {reference_with_transport}"),
    )
}

/// `"sha256:..."` of [`inspect_raw`]: the manifest digest as stored at the source.
pub fn digest_of(reference_with_transport: &str, opts: &SkopeoOpts) -> String {
    sha256_digest(&inspect_raw(reference_with_transport, opts))
}

/// `skopeo inspect --config --raw REF`: the config blob of a single-platform image.
pub fn inspect_config_raw(reference_with_transport: &str, opts: &SkopeoOpts) -> Vec<u8> {
    let iso = Isolated::new();
    let mut c = iso.command("inspect");
    c.arg("--config")
        .arg("--raw")
        .arg("--authfile")
        .arg(iso.authfile());
    opts.push_args(&mut c, Side::Single);
    c.arg(reference_with_transport);
    run_checked(
        &mut c,
        &format!("skopeo inspect --config --raw {reference_with_transport}"),
    )
}

/// `skopeo list-tags docker://HOST/REPO`, sorted.
pub fn list_tags(repo_with_transport: &str, opts: &SkopeoOpts) -> Vec<String> {
    let iso = Isolated::new();
    let mut c = iso.command("list-tags");
    c.arg("--authfile").arg(iso.authfile());
    opts.push_args(&mut c, Side::Single);
    c.arg(repo_with_transport);
    let out = run_checked(&mut c, &format!("skopeo list-tags {repo_with_transport}"));
    let v: serde_json::Value = serde_json::from_slice(&out).expect("list-tags JSON");
    let mut tags: Vec<String> = v["Tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

/// `skopeo copy --all --preserve-digests SRC DST`, with `opts` for both sides.
pub fn copy_all(src: &str, dst: &str, opts: &SkopeoOpts) {
    copy(src, opts, dst, opts, &[]);
}

/// `skopeo copy --all --preserve-digests [extra] SRC DST` with per-side options
/// (e.g. from one registry to another). `extra` is passed before the references.
pub fn copy(src: &str, src_opts: &SkopeoOpts, dst: &str, dst_opts: &SkopeoOpts, extra: &[&str]) {
    let iso = Isolated::new();
    let mut c = iso.command("copy");
    c.args(["--all", "--preserve-digests", "--quiet", "--retry-times=0"])
        .arg("--src-authfile")
        .arg(iso.authfile())
        .arg("--dest-authfile")
        .arg(iso.authfile());
    src_opts.push_args(&mut c, Side::Src);
    dst_opts.push_args(&mut c, Side::Dest);
    c.args(extra).arg(src).arg(dst);
    run_checked(&mut c, &format!("skopeo copy {src} {dst}"));
}

/// `oci:DIR:REF` for a layout directory and a `org.opencontainers.image.ref.name`.
pub fn oci_ref(layout_dir: &Path, ref_name: &str) -> String {
    format!("oci:{}:{ref_name}", layout_dir.display())
}
