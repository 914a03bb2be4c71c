//! Test support for Berth: real peers on 127.0.0.1 and test images made from real files.
//!
//! Modelled on cargo's test-support: every helper starts a *real* program (CNCF
//! Distribution `/usr/bin/docker-registry`, `skopeo`, `openssl`, `htpasswd`) bound to
//! loopback on a free port, with its own temporary directories, and stops it on `Drop`.
//! Everything is per instance, so tests may run in parallel threads.
//!
//! A missing tool is a hard failure (a panic naming the Debian package), never a skip.
//!
//! - [`Certs`]: a CA plus a separate leaf certificate for 127.0.0.1/localhost.
//! - [`Distribution`]: a running registry, plain HTTP or TLS + htpasswd (bcrypt).
//! - [`skopeo`]: `skopeo inspect --raw` / `copy --all --preserve-digests` with an
//!   isolated configuration (own policy, authfile, registries.conf, registries.d).
//! - [`podman`]: an isolated `podman` (own storage, config, authfile) as a registry client.
//! - [`images`]: deterministic OCI image layouts built from real system directories.
//! - [`bench`]: helpers of the benchmarks (medians, machine description, BENCHMARKS.md).
//! - [`tools::go_peer`] / [`require_go_peer`]: the Go peers `scripts/install-deps.sh` builds
//!   into `.tools/bin` (Helm, crane, oras, crictl, containerd 2, the OCI conformance suite).
//! - [`containerd`]: a private containerd 1.6 (Debian, `ctr`) or 2.4 (CRI on, `crictl`).
//! - [`helm`]: `helm template` of a local chart, its documents parsed, the Pod-template images.
//! - [`https_files`]: a directory served over HTTPS (and Basic auth) by `python3`;
//!   [`chart_repo`]: a Helm chart repository made by `helm package` and `helm repo index` on it.
//! - [`berth_serve`]: `berth serve` as a child process (plain or TLS + htpasswd).
//! - [`cosign`]: offline key-pair signing and verifying (the optional Go peer).
//! - [`crane`], [`oras`]: the Go clients, isolated (own HOME / Docker config).
//! - [`Throttle`]: a TCP proxy passing a server's bytes at a limited rate (a slow source).
//! - [`conformance`]: the OCI distribution-spec conformance suite run against a registry,
//!   its `junit.xml` read back.
//!
//! A missing Go peer is a hard failure naming `scripts/install-deps.sh`, never a skip.

pub mod bench;
pub mod berth_serve;
mod certs;
pub mod chart_repo;
pub mod conformance;
pub mod containerd;
pub mod cosign;
pub mod crane;
pub mod helm;
pub mod helm_cases;
pub mod https_files;
pub mod images;
pub mod oras;
pub mod podman;
mod registry;
pub mod skopeo;
mod throttle;
pub mod tools;

pub use certs::Certs;
pub use registry::{Distribution, http_get_status};
pub use throttle::Throttle;

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, release it).
///
/// Another process may take it before it is used: callers that start a server on it
/// must detect a bind failure and retry with a new port (as [`Distribution`] does).
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Absolute path of an external tool, or a panic naming the Debian package that has it.
pub fn require_tool(name: &str, apt_package: &str) -> PathBuf {
    let candidates: Vec<PathBuf> = if name.contains('/') {
        vec![PathBuf::from(name)]
    } else {
        ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .collect()
    };
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "berth-testkit: required tool `{name}` is not installed; \
         install it with `apt-get install -y {apt_package}`"
    );
}

/// Absolute path of a Go peer ([`tools::go_peer`]), or a panic telling to run
/// `scripts/install-deps.sh`, which builds the pinned peers into `<workspace>/.tools/bin`.
pub fn require_go_peer(name: &str) -> PathBuf {
    tools::go_peer(name).unwrap_or_else(|| {
        panic!(
            "berth-testkit: the Go peer `{name}` is not built; run scripts/install-deps.sh \
             (it builds the pinned Go peers into .tools/bin; BERTH_TOOLS_DIR overrides the directory)"
        )
    })
}

/// A `Command` for a tool with a cleared environment (only a fixed PATH, HOME and LANG),
/// so that SSL_CERT_FILE, REGISTRY_*, proxies, XDG_* etc. of the caller never leak in.
pub(crate) fn clean_command(program: &Path, home: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", home)
        .env("LANG", "C.UTF-8");
    c
}

/// Run a command to completion; panic with its output if it fails. Returns stdout.
pub(crate) fn run_checked(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("berth-testkit: cannot run {what}: {e}"));
    if !out.status.success() {
        panic!(
            "berth-testkit: {what} failed ({}):\n--- command: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            out.status,
            cmd,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.stdout
}

/// `"sha256:<hex>"` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
