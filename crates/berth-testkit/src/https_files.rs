//! A directory served over HTTPS by Python's `http.server` (Debian's `python3`) on 127.0.0.1,
//! with the testkit's [`Certs`] and optional Basic auth: a Helm chart repository as `helm repo
//! index` leaves one, or any static files a client must fetch over TLS. Every request is
//! logged (method, path, whether it carried credentials, status) for assertions.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{Certs, clean_command, free_port, require_tool};

const SERVER: &str = r#"
import base64, http.server, os, ssl, sys
root, port, cert, key, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
auth = os.environ.get("BASIC_AUTH", "")
want = ("Basic " + base64.b64encode(auth.encode()).decode()) if auth else None
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def allowed(self):
        got = self.headers.get("Authorization")
        with open(log, "a") as f:
            ok = want is None or got == want
            f.write("%s %s %s %s\n" % (self.command, self.path, "auth" if got else "anonymous", "ok" if ok else "401"))
        if want is not None and got != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="charts"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        return True
    def do_GET(self):
        if self.allowed():
            super().do_GET()
    def do_HEAD(self):
        if self.allowed():
            super().do_HEAD()
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

/// A running HTTPS file server; stopped when dropped.
pub struct HttpsFiles {
    child: Child,
    port: u16,
    certs: Certs,
    log: PathBuf,
    _dir: TempDir,
}

impl HttpsFiles {
    /// Serves `root` (read at each request, so files may be added later) over HTTPS, requiring
    /// `basic` (user, password) when given.
    pub fn serve(root: &Path, basic: Option<(&str, &str)>) -> HttpsFiles {
        let python = require_tool("python3", "python3");
        let certs = Certs::generate(&[]);
        let dir = tempfile::Builder::new()
            .prefix("berth-https-files-")
            .tempdir()
            .expect("temp dir");
        let log = dir.path().join("requests.log");
        std::fs::write(&log, "").expect("create the request log");
        for _ in 0..5 {
            let port = free_port();
            let mut c = clean_command(&python, dir.path());
            c.arg("-c")
                .arg(SERVER)
                .arg(root)
                .arg(port.to_string())
                .arg(&certs.cert_path)
                .arg(&certs.key_path)
                .arg(&log)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Some((u, p)) = basic {
                c.env("BASIC_AUTH", format!("{u}:{p}"));
            }
            let mut child = c.spawn().expect("start python3 -m http.server");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().expect("poll python3").is_some() {
                    break; // the port was taken: try another
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return HttpsFiles {
                        child,
                        port,
                        certs,
                        log,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("berth-testkit: the HTTPS file server did not start");
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that issued the server's certificate.
    pub fn certs(&self) -> &Certs {
        &self.certs
    }

    /// One line per request so far: `METHOD PATH auth|anonymous ok|401`.
    pub fn requests(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }
}

impl Drop for HttpsFiles {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
