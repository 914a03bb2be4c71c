//! The one way the integration tests run the `berth` binary: with an environment of its
//! own, so nothing of the caller's leaks in. The environment is cleared; only `PATH` (the
//! system directories), `LANG=C.UTF-8`, `TMPDIR` (when the caller sets one: where large
//! temporary files go) and `HOME` (a fresh, empty temporary directory) are set. So no
//! `SSL_CERT_FILE`/`SSL_CERT_DIR`, `REGISTRY_AUTH_FILE`, `DOCKER_CONFIG`,
//! `XDG_RUNTIME_DIR`, `RUST_LOG` or `~/.docker/config.json` of the caller reaches berth;
//! a test that wants one sets it on the command.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The directories `PATH` holds in every run.
pub const PATH: &str = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An empty home directory for berth runs, removed when dropped.
pub struct Home(tempfile::TempDir);

impl Home {
    pub fn new() -> Home {
        Home(
            tempfile::Builder::new()
                .prefix("berth-home-")
                .tempdir()
                .expect("create a home directory"),
        )
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Default for Home {
    fn default() -> Home {
        Home::new()
    }
}

/// Gives `cmd` the isolated environment with `home` as `HOME`.
pub fn isolate<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    let tmpdir = std::env::var_os("TMPDIR");
    cmd.env_clear()
        .env("PATH", PATH)
        .env("LANG", "C.UTF-8")
        .env("HOME", home);
    if let Some(t) = tmpdir {
        cmd.env("TMPDIR", t);
    }
    cmd
}

/// `bin` (a berth binary) in the isolated environment; `home` must outlive the process.
pub fn command_of(bin: &Path, home: &Path) -> Command {
    let mut c = Command::new(bin);
    isolate(&mut c, home);
    c
}

/// This build's `berth` in the isolated environment; `home` must outlive the process.
pub fn command(home: &Path) -> Command {
    command_of(Path::new(env!("CARGO_BIN_EXE_berth")), home)
}

/// Runs `berth ARGS` in the isolated environment (a home of its own) and waits for it.
pub fn berth(args: &[&str]) -> Output {
    let home = Home::new();
    command(home.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run berth")
}

/// Runs `berth ARGS` with `stdin` as its standard input.
pub fn berth_stdin(args: &[&str], stdin: &str) -> Output {
    let home = Home::new();
    let mut child = command(home.path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for berth")
}

/// Every line of `s` indented by `n` spaces (a PEM block inside YAML).
pub fn indent(s: &str, n: usize) -> String {
    s.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(n)))
        .collect()
}

/// A run's exit status, stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout:\n{}\n--- stderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
