//! `cosign` v3 (the Go peer, optional: built when the proxy serves it) signing and verifying
//! offline with a key pair: no transparency log, no signing config fetched
//! (`--tlog-upload=false --use-signing-config=false`), Sigstore's caches under its own HOME.
//! Registry credentials come from a Docker config directory (e.g. [`Crane::docker_config`]
//! after `crane auth login`), TLS trust from the CA given (`SSL_CERT_FILE`).
//!
//! [`Crane::docker_config`]: crate::crane::Crane::docker_config

use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

use crate::{clean_command, require_go_peer};

const KEY_PASSWORD: &str = "berth-test-key";

/// An isolated cosign with a fresh key pair (`cosign.key`, `cosign.pub` in its directory).
pub struct Cosign {
    dir: TempDir,
    bin: PathBuf,
    ca: Option<PathBuf>,
    docker_config: Option<PathBuf>,
}

impl Cosign {
    /// The Go peer `cosign` and a new key pair (`cosign generate-key-pair`).
    pub fn new() -> Cosign {
        let bin = require_go_peer("cosign");
        let dir = tempfile::Builder::new()
            .prefix("berth-cosign-")
            .tempdir()
            .expect("create cosign temp dir");
        let c = Cosign {
            dir,
            bin,
            ca: None,
            docker_config: None,
        };
        c.ok(&["generate-key-pair"]);
        assert!(c.dir.path().join("cosign.pub").is_file());
        c
    }

    pub fn with_ca(mut self, ca: &Path) -> Cosign {
        self.ca = Some(ca.to_path_buf());
        self
    }

    pub fn with_docker_config(mut self, dir: &Path) -> Cosign {
        self.docker_config = Some(dir.to_path_buf());
        self
    }

    /// The public key file.
    pub fn public_key(&self) -> PathBuf {
        self.dir.path().join("cosign.pub")
    }

    /// `cosign ARGS...` in its directory, isolated.
    pub fn run(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        let mut c = clean_command(&self.bin, d);
        c.current_dir(d)
            .env("COSIGN_PASSWORD", KEY_PASSWORD)
            .env("DOCKER_CONFIG", d.join("docker"))
            .env("TUF_ROOT", d.join("tuf"));
        if let Some(dc) = &self.docker_config {
            c.env("DOCKER_CONFIG", dc);
        }
        if let Some(ca) = &self.ca {
            c.env("SSL_CERT_FILE", ca);
        }
        c.args(args).output().expect("run cosign")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "cosign {args:?} failed ({}):\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// `cosign sign --key cosign.key` of `REF@DIGEST`, offline; `new_bundle`: the v3 bundle
    /// (an OCI artifact with a `subject`), else the classic `sha256-<hex>.sig` tag.
    pub fn sign(&self, reference: &str, new_bundle: bool) {
        let nb = format!("--new-bundle-format={new_bundle}");
        self.ok(&[
            "sign",
            "--key",
            "cosign.key",
            &nb,
            "--tlog-upload=false",
            "--use-signing-config=false",
            "--allow-http-registry",
            "--allow-insecure-registry",
            "-y",
            reference,
        ]);
    }

    /// `cosign verify --key PUB REF` (the transparency log not consulted).
    pub fn verify(&self, public_key: &Path, reference: &str, new_bundle: bool) -> Output {
        let nb = format!("--new-bundle-format={new_bundle}");
        self.run(&[
            "verify",
            "--key",
            public_key.to_str().unwrap(),
            &nb,
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
            reference,
        ])
    }
}

impl Default for Cosign {
    fn default() -> Self {
        Self::new()
    }
}
