//! `podman` as a real registry client, isolated from the machine's podman.
//!
//! Each [`Podman`] has its own temporary directory holding its storage (`--root`,
//! `--runroot`, `--storage-driver vfs`, so the blob-info cache is there too), `--tmpdir`,
//! `--volumepath`, `--network-config-dir`, an empty `containers.conf` and `registries.conf`
//! (no search registries, no mirrors), a `storage.conf`, a `policy.json` that accepts
//! anything and an empty authfile. Commands run with a cleared environment (HOME and
//! XDG_RUNTIME_DIR inside that directory), so `/var/lib/containers`, `~/.config/containers`,
//! `REGISTRY_AUTH_FILE` etc. of the machine are never read or written. Only image commands
//! are meant to be used (`pull`, `push`, `inspect`, `rmi`, `images`): no containers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::{clean_command, require_tool};

/// An isolated podman (see the module documentation). Dropping it removes its storage.
pub struct Podman {
    dir: TempDir,
    podman: PathBuf,
}

impl Podman {
    pub fn new() -> Podman {
        let podman = require_tool("podman", "podman");
        // A lower-case path: podman names an image pulled from `oci:DIR` or `dir:DIR` after
        // DIR, and refuses upper case (which tempfile's random names have).
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-podman-{}-{n}", std::process::id()))
            .rand_bytes(0)
            .tempdir()
            .expect("create podman temp dir");
        let d = dir.path();
        for sub in [
            "scratch",
            "root",
            "runroot",
            "tmp",
            "libpod-tmp",
            "volumes",
            "networks",
            "home",
            "xdg",
        ] {
            std::fs::create_dir(d.join(sub)).expect("create podman dir");
        }
        std::fs::write(d.join("containers.conf"), "").expect("write containers.conf");
        std::fs::write(d.join("registries.conf"), "").expect("write registries.conf");
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\nrunroot = \"{}\"\ngraphroot = \"{}\"\n",
                d.join("runroot").display(),
                d.join("root").display()
            ),
        )
        .expect("write storage.conf");
        std::fs::write(
            d.join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("write policy.json");
        std::fs::write(d.join("auth.json"), "{\"auths\":{}}").expect("write auth.json");
        Podman { dir, podman }
    }

    /// The private authfile (`--authfile`), empty unless a test writes to it.
    pub fn authfile(&self) -> PathBuf {
        self.dir.path().join("auth.json")
    }

    /// The private signature policy (`--signature-policy`).
    pub fn policy(&self) -> PathBuf {
        self.dir.path().join("policy.json")
    }

    /// Where the images are stored (`--root`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `podman <global isolation flags> ARGS...`, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = clean_command(&self.podman, &d.join("home"));
        c.env("XDG_RUNTIME_DIR", d.join("xdg"))
            .env("XDG_CONFIG_HOME", d.join("home"))
            .env("XDG_DATA_HOME", d.join("home"))
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", d.join("registries.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .env("REGISTRY_AUTH_FILE", self.authfile())
            .env("TMPDIR", d.join("tmp"))
            .current_dir(d)
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "none"])
            .arg("--tmpdir")
            .arg(d.join("libpod-tmp"))
            .arg("--volumepath")
            .arg(d.join("volumes"))
            .arg("--network-config-dir")
            .arg(d.join("networks"))
            .args(args);
        c
    }

    /// Run `podman ARGS...`; its output, whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("berth-testkit: cannot run podman: {e}"))
    }

    /// Run `podman ARGS...`, which must succeed; its stdout, trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth-testkit: podman {args:?} failed ({}):\n--- stdout:\n{}\n--- stderr:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// The IDs of the images in its storage.
    pub fn image_ids(&self) -> Vec<String> {
        self.ok(&["images", "--no-trunc", "-q"])
            .lines()
            .map(|l| l.trim().trim_start_matches("sha256:").to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// A directory for image sources (`oci:SCRATCH/...`, `dir:SCRATCH/...`): its path is lower
    /// case, as podman needs to name an image pulled from there.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    /// Its private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for Podman {
    fn default() -> Self {
        Podman::new()
    }
}
