//! `oras` as a registry client, isolated: its own HOME and registry config file, a cleared
//! environment. Connection options are per registry ([`Target`]): plain HTTP (`--plain-http`,
//! needed for 127.0.0.1), or TLS trusting one CA (`--ca-file`), with credentials passed as
//! `--username` / `--password-stdin`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

use crate::{clean_command, require_go_peer};

/// How oras reaches one registry.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub plain_http: bool,
    pub ca_file: Option<PathBuf>,
    pub creds: Option<(String, String)>,
}

impl Target {
    pub fn plain() -> Target {
        Target {
            plain_http: true,
            ..Target::default()
        }
    }

    pub fn tls(ca: &Path, user: &str, password: &str) -> Target {
        Target {
            plain_http: false,
            ca_file: Some(ca.to_path_buf()),
            creds: Some((user.to_string(), password.to_string())),
        }
    }
}

/// An isolated oras (see the module documentation).
pub struct Oras {
    dir: TempDir,
    bin: PathBuf,
}

impl Default for Oras {
    fn default() -> Self {
        Self::new()
    }
}

impl Oras {
    /// The Go peer `oras` (panics naming `scripts/install-deps.sh` when it is not built).
    pub fn new() -> Oras {
        let bin = require_go_peer("oras");
        let dir = tempfile::Builder::new()
            .prefix("berth-oras-")
            .tempdir()
            .expect("create oras temp dir");
        Oras { dir, bin }
    }

    /// A scratch directory of this oras (files to attach, outputs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `oras SUBCOMMAND [target options] ARGS...`, run in the scratch directory.
    pub fn run(&self, subcommand: &str, target: &Target, args: &[&str]) -> Output {
        let mut c: Command = clean_command(&self.bin, self.dir.path());
        c.current_dir(self.dir.path()).arg(subcommand);
        c.arg("--registry-config")
            .arg(self.dir.path().join("config.json"));
        if target.plain_http {
            c.arg("--plain-http");
        }
        if let Some(ca) = &target.ca_file {
            c.arg("--ca-file").arg(ca);
        }
        if let Some((u, _)) = &target.creds {
            c.args(["--username", u, "--password-stdin"]);
        }
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("run oras");
        let mut stdin = child.stdin.take().unwrap();
        if let Some((_, p)) = &target.creds {
            use std::io::Write;
            stdin.write_all(p.as_bytes()).unwrap();
        }
        drop(stdin);
        child.wait_with_output().expect("wait for oras")
    }

    /// [`run`](Self::run) that must succeed: its stdout.
    pub fn ok(&self, subcommand: &str, target: &Target, args: &[&str]) -> String {
        let o = self.run(subcommand, target, args);
        assert!(
            o.status.success(),
            "oras {subcommand} {args:?} failed ({}):\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}
