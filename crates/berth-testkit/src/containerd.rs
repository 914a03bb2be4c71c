//! A private containerd per test: Debian's 1.6 (CRI off, judged with `ctr`) or the 2.4 built by
//! `scripts/install-deps.sh` (config version 3, the CRI image service reading a hosts directory,
//! driven with `crictl` as kubelet drives it). Each has its own root, state and socket under a
//! temporary directory, the `native` snapshotter, and is killed when dropped.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{require_go_peer, require_tool};

/// Which containerd a [`Containerd`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Debian 12's `/usr/bin/containerd` 1.6, CRI plugin disabled.
    Debian16,
    /// containerd v2.4 from `.tools/bin` (a Go peer), CRI image service on.
    V2,
}

/// A containerd started for one test; killed when dropped (containerd itself, never its
/// process group).
pub struct Containerd {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    /// The hosts directory the CRI image service reads (`config_path`); 2.x only.
    pub hosts_dir: Option<PathBuf>,
    pub flavour: Flavour,
    ctr: PathBuf,
    child: Child,
}

impl Containerd {
    /// Debian's containerd 1.6 with CRI disabled (`ctr` only).
    pub fn start() -> Containerd {
        let bin = require_tool("containerd", "containerd");
        let ctr = require_tool("ctr", "containerd");
        let dir = tempdir();
        let d = dir.path();
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{d}/debug.sock"
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.service.v1.diff-service"]
  default = ["walking"]
[plugins."io.containerd.snapshotter.v1.native"]
  root_path = "{root}/native"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("c.sock").display(),
            d = d.display()
        );
        Self::launch(dir, bin, ctr, config, None, Flavour::Debian16)
    }

    /// containerd 2.4 (the Go peer `containerd`, with its `ctr`): config version 3, the CRI
    /// image service on with the `native` snapshotter and `config_path = hosts_dir` (the
    /// hosts.toml tree Berth writes), NRI and everything else that would touch the host's
    /// `/run`, `/var/lib` or `/opt` pointed into the test directory or off. The transfer
    /// service (which CRI pulls go through in 2.x) unpacks the host platform into `native`
    /// with the `walking` differ: its default is overlayfs, and without a matching unpack
    /// configuration a CRI pull fails with "no unpack platforms defined".
    pub fn start_v2(hosts_dir: &Path) -> Containerd {
        let bin = require_go_peer("containerd");
        let ctr = require_go_peer("ctr");
        let version = Command::new(&bin).arg("--version").output();
        let version = version
            .as_ref()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        assert!(
            version.contains("/containerd/v2 "),
            "berth-testkit: {} is not containerd 2.x ({version:?}); run scripts/install-deps.sh \
             (it builds containerd v2.4 into .tools/bin)",
            bin.display()
        );
        let dir = tempdir();
        let d = dir.path();
        let config = format!(
            r#"version = 3
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.nri.v1.nri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{d}/debug.sock"
  level = "info"
[metrics]
  address = ""
[plugins.'io.containerd.internal.v1.opt']
  path = "{d}/opt"
[plugins.'io.containerd.snapshotter.v1.native']
  root_path = "{root}/native"
[plugins.'io.containerd.transfer.v1.local']
  [[plugins.'io.containerd.transfer.v1.local'.unpack_config]]
    platform = "linux/{arch}"
    snapshotter = "native"
    differ = "walking"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "native"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "{hosts}"
[plugins.'io.containerd.cri.v1.runtime']
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{d}/cni/bin"]
    conf_dir = "{d}/cni/net.d"
[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("c.sock").display(),
            hosts = hosts_dir.display(),
            arch = go_arch(),
            d = d.display()
        );
        Self::launch(
            dir,
            bin,
            ctr,
            config,
            Some(hosts_dir.to_path_buf()),
            Flavour::V2,
        )
    }

    fn launch(
        dir: tempfile::TempDir,
        bin: PathBuf,
        ctr: PathBuf,
        config: String,
        hosts_dir: Option<PathBuf>,
        flavour: Flavour,
    ) -> Containerd {
        let d = dir.path();
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new(bin)
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start containerd");
        let c = Containerd {
            socket: d.join("c.sock"),
            dir,
            hosts_dir,
            flavour,
            ctr,
            child,
        };
        // Ready when the socket exists and `ctr version` answers.
        let start = Instant::now();
        loop {
            if c.socket.exists()
                && Command::new(&c.ctr)
                    .arg("-a")
                    .arg(&c.socket)
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            {
                return c;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!("containerd did not start; log:\n{}", c.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr -a SOCK -n NS ARGS...`
    pub fn ctr(&self, ns: &str, args: &[&str]) -> Output {
        Command::new(&self.ctr)
            .arg("-a")
            .arg(&self.socket)
            .arg("-n")
            .arg(ns)
            .args(args)
            .output()
            .expect("run ctr")
    }

    /// `ctr ... ARGS` that must succeed; its stdout.
    pub fn ctr_ok(&self, ns: &str, args: &[&str]) -> String {
        let o = self.ctr(ns, args);
        assert!(
            o.status.success(),
            "ctr {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// `ctr run --rm --snapshotter native IMAGE ID CMD...`, which must succeed: its output,
    /// or `None` when container starts are off ([`ctr_run_enabled`]).
    pub fn run(&self, ns: &str, image: &str, id: &str, cmd: &[&str]) -> Option<String> {
        if !ctr_run_enabled() {
            return None;
        }
        let mut args = vec!["run", "--rm", "--snapshotter", "native", image, id];
        args.extend_from_slice(cmd);
        Some(self.ctr_ok(ns, &args))
    }

    /// `ctr images ls` as (name, digest) pairs.
    pub fn images(&self, ns: &str) -> Vec<(String, String)> {
        self.ctr_ok(ns, &["images", "ls"])
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((f.first()?.to_string(), f.get(2)?.to_string()))
            })
            .collect()
    }

    /// Digests of the content in the namespace.
    pub fn content(&self, ns: &str) -> Vec<String> {
        self.ctr_ok(ns, &["content", "ls", "-q"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Names of the committed snapshots of the native snapshotter.
    pub fn snapshots(&self, ns: &str) -> Vec<String> {
        self.ctr_ok(ns, &["snapshots", "--snapshotter", "native", "ls"])
            .lines()
            .skip(1)
            .filter(|l| l.contains("Committed"))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    }

    /// `crictl -r unix://SOCK -i unix://SOCK -t 60s ARGS...` (the Go peer `crictl`, with its
    /// own empty config file so nothing of the host's `/etc/crictl.yaml` is read).
    pub fn crictl(&self, args: &[&str]) -> Output {
        assert_eq!(
            self.flavour,
            Flavour::V2,
            "crictl needs the CRI plugin: start the containerd with Containerd::start_v2"
        );
        let crictl = require_go_peer("crictl");
        let endpoint = format!("unix://{}", self.socket.display());
        let cfg = self.dir.path().join("crictl.yaml");
        if !cfg.exists() {
            std::fs::write(&cfg, "").unwrap();
        }
        Command::new(crictl)
            .arg("--config")
            .arg(&cfg)
            .args(["-r", &endpoint, "-i", &endpoint, "-t", "60s"])
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("CONTAINER_RUNTIME_ENDPOINT")
            .env_remove("IMAGE_SERVICE_ENDPOINT")
            .env_remove("CRI_CONFIG_FILE")
            .output()
            .expect("run crictl")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // containerd itself only: a `kill` of the process group, whose argument procps may
        // read as a signal option, was the prime suspect for runs where every process of the
        // session died. Shims exit when their containers are removed (`ctr run --rm`).
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Snapshots of the native snapshotter may be bind-mounted by a crashed task.
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.path().join("state"))
            .output();
    }
}

/// The host's architecture as Go and OCI platforms name it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-cd-")
        .tempdir()
        .unwrap()
}

/// Whether tests start containers with `ctr run` (`BERTH_TEST_CTR_RUN=0` turns it off). In
/// an earlier session every process of the session died several times while these tests ran;
/// the test support then killed containerd's process group (`kill -KILL -<pid>`), which it no
/// longer does, and since then containers have started and been removed here without harm.
pub fn ctr_run_enabled() -> bool {
    std::env::var("BERTH_TEST_CTR_RUN").map_or(true, |v| v != "0")
}
