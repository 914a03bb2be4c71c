//! `berth serve` as a child process for tests whose clients are other programs (crane, oras,
//! containerd, the conformance suite): `--listen 127.0.0.1:0` (the address is read from its
//! first line), its own data directory, optionally TLS with its generated CA and htpasswd.
//! Dropping it kills exactly that process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::{clean_command, free_port, require_tool, run_checked};

/// How to start it.
#[derive(Clone, Debug, Default)]
pub struct ServeOpts {
    /// `--tls-self-signed`: HTTPS with a CA generated into DATA/tls/ca.crt.
    pub tls: bool,
    /// `--htpasswd` with this one user (bcrypt).
    pub user: Option<(String, String)>,
    /// Further flags (`--anonymous-pull`, `--user-data FILE`, ...).
    pub extra: Vec<String>,
    /// Listen on a port picked beforehand and name the token realm explicitly
    /// (`auth.realm: <scheme>://127.0.0.1:PORT/token` in a `--config` file) instead of
    /// letting berth serve derive it from the `Host` header, which HTTP/2 clients (Go's:
    /// crane, oras, containerd) do not send: they are then sent to `https://localhost/token`.
    pub explicit_realm: bool,
}

/// A running `berth serve`.
pub struct BerthServe {
    child: Option<Child>,
    _stdout: Option<BufReader<ChildStdout>>,
    bin: PathBuf,
    dir: PathBuf,
    opts: ServeOpts,
    /// A shell command line run instead of `bin serve ...` ([`BerthServe::from_shell`]),
    /// with its working directory and environment.
    shell: Option<Shell>,
    /// `127.0.0.1:PORT`.
    pub host: String,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl BerthServe {
    /// Start `bin serve` (the `berth` binary: `env!("CARGO_BIN_EXE_berth")` in its tests)
    /// with everything under `dir`.
    pub fn start(bin: &Path, dir: &Path, opts: ServeOpts) -> BerthServe {
        std::fs::create_dir_all(dir).unwrap();
        let mut s = BerthServe {
            child: None,
            _stdout: None,
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            host: String::new(),
            data: dir.join("data"),
            log: dir.join("serve.log"),
            opts,
            shell: None,
        };
        let listen = if s.opts.explicit_realm {
            format!("127.0.0.1:{}", free_port())
        } else {
            "127.0.0.1:0".to_string()
        };
        s.spawn(&listen);
        s
    }

    /// Start `berth serve` as a document writes it: `line` (a shell command line, e.g. `berth
    /// serve --listen "$EDGE_LISTEN" --data edge-data --tls-self-signed ...`) run by bash in
    /// `cwd` with exactly the environment `env` (nothing of the caller's). Its log goes to
    /// `dir/serve.log`; `data` is `cwd/data_dir` (the `--data` the line gives), so
    /// [`ca`](Self::ca) is `cwd/data_dir/tls/ca.crt` when `tls` is set.
    pub fn from_shell(
        line: &str,
        cwd: &Path,
        env: &[(String, String)],
        dir: &Path,
        data_dir: &str,
        tls: bool,
    ) -> BerthServe {
        std::fs::create_dir_all(dir).unwrap();
        let mut s = BerthServe {
            child: None,
            _stdout: None,
            bin: require_tool("bash", "bash"),
            dir: dir.to_path_buf(),
            host: String::new(),
            data: cwd.join(data_dir),
            log: dir.join("serve.log"),
            opts: ServeOpts {
                tls,
                ..ServeOpts::default()
            },
            shell: Some(Shell {
                line: line.trim().to_string(),
                cwd: cwd.to_path_buf(),
                env: env.to_vec(),
            }),
        };
        s.spawn("");
        s
    }

    fn spawn(&mut self, listen: &str) {
        if let Some(sh) = &self.shell {
            let mut c = Command::new(&self.bin);
            c.env_clear()
                .envs(sh.env.iter().map(|(k, v)| (k, v)))
                .current_dir(&sh.cwd)
                .args(["-euo", "pipefail", "-c"])
                .arg(format!("exec {}", sh.line));
            return self.launch(c);
        }
        let mut c = Command::new(&self.bin);
        c.arg("serve")
            .args(["--listen", listen, "--data"])
            .arg(&self.data);
        if self.opts.tls {
            c.arg("--tls-self-signed");
        }
        if self.opts.explicit_realm {
            let scheme = if self.opts.tls { "https" } else { "http" };
            let cfg = self.dir.join("serve.yaml");
            std::fs::write(&cfg, format!("auth:\n  realm: {scheme}://{listen}/token\n")).unwrap();
            c.arg("--config").arg(cfg);
        }
        if let Some((u, p)) = &self.opts.user {
            let ht = self.dir.join("htpasswd");
            if !ht.exists() {
                let htpasswd = require_tool("htpasswd", "apache2-utils");
                let line = run_checked(
                    clean_command(&htpasswd, &self.dir).args(["-Bbn", u, p]),
                    "htpasswd -Bbn",
                );
                std::fs::write(&ht, line).unwrap();
            }
            c.arg("--htpasswd").arg(ht);
        }
        c.args(&self.opts.extra);
        c.env("HOME", "/nonexistent")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env_remove("REGISTRY_AUTH_FILE");
        self.launch(c);
    }

    /// Runs `c` (stderr to the log), and reads the address from its first line.
    fn launch(&mut self, mut c: Command) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = c
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start berth serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        let host = first
            .trim()
            .strip_prefix("berth: serving https://")
            .or_else(|| first.trim().strip_prefix("berth: serving http://"));
        let Some(host) = host else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth serve did not start: {first:?}\n{}", self.log_text());
        };
        self.host = host.to_string();
        self.child = Some(child);
        self._stdout = Some(stdout);
    }

    /// The CA clients trust (TLS only).
    pub fn ca(&self) -> PathBuf {
        assert!(self.opts.tls, "berth serve runs without TLS");
        self.data.join("tls/ca.crt")
    }

    pub fn url(&self) -> String {
        let scheme = if self.opts.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// Kill it (the data stays); [`restart`](Self::restart) brings it back on the same port.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self._stdout = None;
    }

    /// Start it again on the same address with the same data (a [`from_shell`](Self::from_shell)
    /// one: the same command line again).
    pub fn restart(&mut self) {
        self.stop();
        let addr = self.host.clone();
        self.spawn(&addr);
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The command line of [`BerthServe::from_shell`].
#[derive(Clone, Debug)]
struct Shell {
    line: String,
    cwd: PathBuf,
    env: Vec<(String, String)>,
}

impl Drop for BerthServe {
    fn drop(&mut self) {
        self.stop();
    }
}
