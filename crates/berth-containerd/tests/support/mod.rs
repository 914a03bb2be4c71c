//! Test support: a private containerd 1.6 per test (own root, state and socket under a
//! temporary directory, CRI disabled, `native` snapshotter), `ctr` to judge the results,
//! and a busybox image written as an OCI layout by hand (tar + gzip + sha256 + JSON).
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use berth_testkit::{require_tool, sha256_digest};
use serde_json::json;

/// A containerd started for one test; killed (with its process group) when dropped.
pub struct TestContainerd {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    child: Child,
}

impl TestContainerd {
    pub fn start() -> TestContainerd {
        let bin = require_tool("containerd", "containerd");
        require_tool("ctr", "containerd");
        let dir = tempfile::Builder::new()
            .prefix("berth-cd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let socket = d.join("c.sock");
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
            sock = socket.display(),
            d = d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new(bin)
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start containerd");
        let c = TestContainerd { dir, socket, child };
        let start = Instant::now();
        loop {
            if c.socket.exists()
                && Command::new("ctr")
                    .arg("-a")
                    .arg(&c.socket)
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            {
                return c;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "containerd did not start; log:\n{}",
                    std::fs::read_to_string(c.dir.path().join("containerd.log"))
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr -a SOCK -n NS ARGS...`
    pub fn ctr(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ctr")
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for TestContainerd {
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

/// What [`busybox_layout`] wrote.
pub struct BusyboxImage {
    pub layout: PathBuf,
    pub ref_name: String,
    pub manifest_digest: String,
    pub layer_digest: String,
    pub diff_id: String,
    pub config_digest: String,
}

fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let d = sha256_digest(bytes);
    let p = layout
        .join("blobs/sha256")
        .join(d.trim_start_matches("sha256:"));
    std::fs::write(p, bytes).unwrap();
    (d, bytes.len() as u64)
}

/// An OCI layout at `layout` with one image named `ref_name`: one layer holding Debian's
/// static busybox as `bin/busybox` and a symlink `bin/sh`, `Cmd ["/bin/busybox","echo",
/// "hello from berth"]`, linux/amd64. Needs `/bin/busybox` (`apt-get install -y busybox-static`).
pub fn busybox_layout(layout: &Path, ref_name: &str) -> BusyboxImage {
    let busybox = require_tool("/bin/busybox", "busybox-static");
    let bytes = std::fs::read(busybox).unwrap();
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_mtime(0);
    tar.append_data(&mut dir, "bin/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(bytes.len() as u64);
    h.set_mtime(0);
    tar.append_data(&mut h, "bin/busybox", bytes.as_slice())
        .unwrap();
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Symlink);
    l.set_mode(0o777);
    l.set_size(0);
    l.set_mtime(0);
    tar.append_link(&mut l, "bin/sh", "busybox").unwrap();
    let raw = tar.into_inner().unwrap();
    let diff_id = sha256_digest(&raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    let (layer_digest, layer_size) = put_blob(layout, &gz);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/busybox", "echo", "hello from berth"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let (config_digest, config_size) = put_blob(layout, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = put_blob(layout, manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": ref_name},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    BusyboxImage {
        layout: layout.to_path_buf(),
        ref_name: ref_name.to_string(),
        manifest_digest,
        layer_digest,
        diff_id,
        config_digest,
    }
}

/// Whether tests start containers with `ctr run` (`BERTH_TEST_CTR_RUN=0` turns it off). In
/// an earlier session every process of the session died several times while these tests ran;
/// the test support then killed containerd's process group (`kill -KILL -<pid>`), which it no
/// longer does, and since then containers have started and been removed here without harm.
pub fn ctr_run_enabled() -> bool {
    std::env::var("BERTH_TEST_CTR_RUN").map_or(true, |v| v != "0")
}
