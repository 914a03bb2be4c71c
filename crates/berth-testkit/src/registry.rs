use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{Certs, clean_command, free_port, require_tool, run_checked};

/// How long a registry may take to print "listening on" and answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running CNCF Distribution 2.8 (`/usr/bin/docker-registry serve CONFIG`) on
/// `127.0.0.1:PORT`, with its own config, storage and log in a temporary directory.
///
/// `Drop` kills it (SIGKILL), waits for it and removes its directories. A small
/// `sh` watchdog also kills it if the test process exits without dropping it
/// (e.g. a registry kept in a `static`).
pub struct Distribution {
    root: TempDir,
    data_dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    port: u16,
    certs: Option<Certs>,
    creds: Option<(String, String)>,
    proxy: Option<String>,
    child: Option<Child>,
    watchdog: Option<Child>,
}

enum StartError {
    AddrInUse,
}

impl Distribution {
    /// Plain HTTP, no authentication. `/v2/` answers 200.
    pub fn plain() -> Distribution {
        Self::launch(None, None, None)
    }

    /// Plain HTTP, no authentication, in pull-through cache mode (`proxy: remoteurl:`) in
    /// front of `remote_url` (e.g. another registry's [`url`](Self::url)). Pulls of
    /// anything missing go to the remote and are kept in its storage; pushes are refused.
    pub fn proxy(remote_url: &str) -> Distribution {
        Self::launch(None, None, Some(remote_url.to_string()))
    }

    /// HTTPS with a fresh [`Certs::generate`] (trust [`Certs::ca_path`]) and htpasswd
    /// basic auth (bcrypt, `htpasswd -Bbn`). `/v2/` answers 401 without credentials.
    pub fn tls_htpasswd(user: &str, pass: &str) -> Distribution {
        let certs = Certs::generate(&["127.0.0.1", "localhost"]);
        Self::launch(
            Some(certs),
            Some((user.to_string(), pass.to_string())),
            None,
        )
    }

    fn launch(
        certs: Option<Certs>,
        creds: Option<(String, String)>,
        proxy: Option<String>,
    ) -> Distribution {
        let registry = require_tool("/usr/bin/docker-registry", "docker-registry");
        let root = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("create registry temp dir");
        let data_dir = root.path().join("data");
        std::fs::create_dir(&data_dir).expect("create registry data dir");
        if let Some((user, pass)) = &creds {
            let htpasswd = require_tool("htpasswd", "apache2-utils");
            let out = run_checked(
                clean_command(&htpasswd, root.path()).args(["-Bbn", user, pass]),
                "htpasswd -Bbn",
            );
            std::fs::write(root.path().join("htpasswd"), out).expect("write htpasswd");
        }
        let mut reg = Distribution {
            config_path: root.path().join("config.yml"),
            log_path: root.path().join("registry.log"),
            data_dir,
            root,
            port: 0,
            certs,
            creds,
            proxy,
            child: None,
            watchdog: None,
        };
        let mut last = 0;
        for _ in 0..20 {
            reg.port = free_port();
            last = reg.port;
            reg.write_config();
            match reg.spawn_and_wait(&registry) {
                Ok(()) => return reg,
                Err(StartError::AddrInUse) => continue,
            }
        }
        panic!("berth-testkit: docker-registry could not bind a free port (last tried {last})");
    }

    fn write_config(&self) {
        let mut y = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
             \x20 cache:\n    blobdescriptor: inmemory\n\
             \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
             health:\n  storagedriver:\n    enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: berth-testkit-{port}-{pid}\n\
             \x20 headers:\n    X-Content-Type-Options: [nosniff]\n",
            data = self.data_dir.display(),
            port = self.port,
            pid = std::process::id(),
        );
        if let Some(c) = &self.certs {
            y.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                c.cert_path.display(),
                c.key_path.display()
            ));
        }
        if self.creds.is_some() {
            y.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-testkit\n    path: {}\n",
                self.root.path().join("htpasswd").display()
            ));
        }
        if let Some(remote) = &self.proxy {
            y.push_str(&format!("proxy:\n  remoteurl: {remote}\n"));
        }
        std::fs::write(&self.config_path, y).expect("write registry config");
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log_path)
            .map(|m| m.len())
            .unwrap_or(0)
    }

    fn log_since(&self, offset: u64) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            let start = (offset as usize).min(buf.len());
            s = String::from_utf8_lossy(&buf[start..]).into_owned();
        }
        s
    }

    /// Start the process and wait until *it* listens (its own log says
    /// "listening on 127.0.0.1:PORT") and `/v2/` answers.
    fn spawn_and_wait(&mut self, registry: &Path) -> Result<(), StartError> {
        let offset = self.log_len();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open registry log");
        let mut child = clean_command(registry, self.root.path())
            .arg("serve")
            .arg(&self.config_path)
            .current_dir(self.root.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("berth-testkit: cannot spawn {}: {e}", registry.display()));
        let deadline = Instant::now() + START_TIMEOUT;
        let needle = format!("listening on 127.0.0.1:{}", self.port);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait registry") {
                let log = self.log_since(offset);
                if log.contains("address already in use") {
                    return Err(StartError::AddrInUse);
                }
                panic!(
                    "berth-testkit: docker-registry exited at start ({status}); config {}:\n{log}",
                    self.config_path.display()
                );
            }
            if self.log_since(offset).contains(&needle) && self.probe().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "berth-testkit: docker-registry did not come up on port {} within {:?}:\n{}",
                    self.port,
                    START_TIMEOUT,
                    self.log_since(offset)
                );
            }
            std::thread::sleep(Duration::from_millis(15));
        }
        self.watchdog = Some(spawn_watchdog(child.id()));
        self.child = Some(child);
        Ok(())
    }

    /// Some(status) of `GET /v2/` for plain HTTP; for TLS, Some(0) once a TCP connection
    /// is accepted (the log line already proved it is our process that listens).
    fn probe(&self) -> Option<u16> {
        if self.certs.is_some() {
            TcpStream::connect_timeout(&self.socket_addr(), Duration::from_millis(500))
                .ok()
                .map(|_| 0)
        } else {
            http_get_status(&self.host(), "/v2/").ok()
        }
    }

    fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `"127.0.0.1:PORT"`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on (the same across [`stop`](Self::stop)/[`start`](Self::start)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"http://127.0.0.1:PORT"` or `"https://127.0.0.1:PORT"`.
    pub fn url(&self) -> String {
        let scheme = if self.certs.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host())
    }

    /// The TLS material, for an HTTPS registry.
    pub fn certs(&self) -> Option<&Certs> {
        self.certs.as_ref()
    }

    /// `(user, password)` for a registry with htpasswd auth.
    pub fn credentials(&self) -> Option<(String, String)> {
        self.creds.clone()
    }

    /// Distribution's filesystem storage root (`docker/registry/v2/...` below it).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The blob upload sessions open in its storage (`_uploads/<id>` of every repository):
    /// a client that cancels its uploads leaves none.
    pub fn upload_sessions(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.data_dir.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                match (p.is_dir(), p.file_name().is_some_and(|n| n == "_uploads")) {
                    (true, true) => out.extend(
                        std::fs::read_dir(&p)
                            .into_iter()
                            .flatten()
                            .flatten()
                            .map(|e| e.path()),
                    ),
                    (true, false) => stack.push(p),
                    _ => {}
                }
            }
        }
        out
    }

    /// The registry's log file (stdout + stderr, level info, all runs appended).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The config file it was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// A containers `auth.json` body for this registry (`{"auths":{}}` without auth).
    pub fn auth_json(&self) -> String {
        match &self.creds {
            Some((u, p)) => auth_json(&self.host(), u, p),
            None => "{\"auths\":{}}".to_string(),
        }
    }

    /// The registry process's id while it runs (e.g. for `/proc/PID/status`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().map(|s| s.is_none()).unwrap_or(false),
            None => false,
        }
    }

    /// Kill the registry (SIGKILL) and wait for it; storage and port are kept, so
    /// [`start`](Self::start) brings the same registry back. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port with the same data. No-op when running.
    /// Retries for a while if something else took the port meanwhile.
    pub fn start(&mut self) {
        if self.is_running() {
            return;
        }
        self.stop();
        let registry = require_tool("/usr/bin/docker-registry", "docker-registry");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn_and_wait(&registry) {
                Ok(()) => return,
                Err(StartError::AddrInUse) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(StartError::AddrInUse) => panic!(
                    "berth-testkit: cannot restart docker-registry: port {} is taken",
                    self.port
                ),
            }
        }
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution")
            .field("url", &self.url())
            .field("root", &self.root.path())
            .field("auth", &self.creds.is_some())
            .finish_non_exhaustive()
    }
}

/// Kill `pid` (SIGKILL) once this test process is gone.
fn spawn_watchdog(pid: u32) -> Child {
    Command::new("/bin/sh")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("-c")
        .arg(
            r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; kill -9 "$2" 2>/dev/null; exit 0"#,
        )
        .arg("berth-testkit-watchdog")
        .arg(std::process::id().to_string())
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watchdog /bin/sh")
}

/// A containers `auth.json` body holding one credential for `host`.
pub(crate) fn auth_json(host: &str, user: &str, pass: &str) -> String {
    serde_json::json!({"auths": {host: {"auth": base64(format!("{user}:{pass}").as_bytes())}}})
        .to_string()
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for ch in data.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= ch.len() {
                s.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Status code of a plain-HTTP `GET path` to `host` ("127.0.0.1:PORT"), HTTP/1.0,
/// 2 s timeouts. For quick liveness checks in tests; not a client.
pub fn http_get_status(host: &str, path: &str) -> std::io::Result<u16> {
    let addr: SocketAddr = host
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        let k = s.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .filter(|_| line.starts_with("HTTP/"))
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP status"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"u:p"), "dTpw");
    }
}
