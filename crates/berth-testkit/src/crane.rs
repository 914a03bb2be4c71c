//! `crane` (go-containerregistry) as a registry client, isolated: its own HOME and Docker
//! config directory (credentials of `crane auth login` land there), a cleared environment, and
//! the CA it trusts given explicitly (`SSL_CERT_FILE`, which Go reads on Linux) instead of the
//! machine's. Loopback registries with a port answer over plain HTTP when they do not speak TLS
//! (crane tries https, then http, for `127.0.0.1:PORT`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::{clean_command, require_go_peer};

/// An isolated crane (see the module documentation).
pub struct Crane {
    dir: TempDir,
    bin: PathBuf,
    ca: Option<PathBuf>,
}

impl Default for Crane {
    fn default() -> Self {
        Self::new()
    }
}

impl Crane {
    /// The Go peer `crane` (panics naming `scripts/install-deps.sh` when it is not built).
    pub fn new() -> Crane {
        let bin = require_go_peer("crane");
        let dir = tempfile::Builder::new()
            .prefix("berth-crane-")
            .tempdir()
            .expect("create crane temp dir");
        std::fs::create_dir(dir.path().join("docker")).unwrap();
        Crane { dir, bin, ca: None }
    }

    /// Trust this CA (PEM) for TLS, and nothing else.
    pub fn with_ca(mut self, ca: &Path) -> Crane {
        self.ca = Some(ca.to_path_buf());
        self
    }

    /// `crane ARGS...` in the isolated environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = clean_command(&self.bin, self.dir.path());
        c.env("DOCKER_CONFIG", self.dir.path().join("docker"));
        if let Some(ca) = &self.ca {
            c.env("SSL_CERT_FILE", ca);
        }
        c.args(args);
        c
    }

    /// The Docker config directory holding this crane's logins (another Go client, e.g.
    /// cosign, can use it as `DOCKER_CONFIG`).
    pub fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker")
    }

    /// `sh -c SCRIPT` in the same isolated environment, with `$CRANE` the crane binary: several
    /// crane commands timed as one (the benchmarks).
    pub fn shell(&self, script: &str) -> Command {
        let mut c = clean_command(Path::new("/bin/sh"), self.dir.path());
        c.env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env("CRANE", &self.bin);
        if let Some(ca) = &self.ca {
            c.env("SSL_CERT_FILE", ca);
        }
        c.args(["-c", script]);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run crane")
    }

    /// `crane ARGS...` that must succeed: its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "crane {args:?} failed ({}):\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// `crane auth login HOST -u USER --password-stdin`: later commands send these
    /// credentials to HOST. The password goes through stdin, never the command line.
    pub fn login(&self, host: &str, user: &str, password: &str) {
        use std::io::Write;
        let mut child = self
            .command(&["auth", "login", host, "-u", user, "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run crane auth login");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "crane auth login {host} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `crane digest REF`: the digest of the manifest (or index) under REF.
    pub fn digest(&self, reference: &str) -> String {
        self.ok(&["digest", reference]).trim().to_string()
    }

    /// `crane manifest REF`: the exact bytes the registry serves.
    pub fn manifest(&self, reference: &str) -> Vec<u8> {
        let o = self.run(&["manifest", reference]);
        assert!(
            o.status.success(),
            "crane manifest {reference}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }
}
