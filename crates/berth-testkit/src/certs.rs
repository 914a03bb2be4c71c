use std::net::IpAddr;
use std::path::PathBuf;

use tempfile::TempDir;

use crate::{clean_command, require_tool, run_checked};

/// TLS material made with `openssl` in its own temporary directory (removed on drop):
/// a CA certificate (CA:TRUE) and a **separate** leaf certificate signed by it
/// (CA:FALSE, EKU serverAuth, SAN `IP:127.0.0.1`, `DNS:localhost` plus the requested
/// hosts). rustls/webpki rejects a self-signed CA:TRUE certificate used as the server
/// certificate (`CaUsedAsEndEntity`), hence the two. Keys are ECDSA P-256 (fast to make).
pub struct Certs {
    /// The temporary directory holding everything below.
    pub dir: TempDir,
    /// The CA certificate, PEM (what a client must trust).
    pub ca_pem: String,
    /// `DIR/ca.crt`.
    pub ca_path: PathBuf,
    /// The leaf (server) certificate, PEM: `DIR/server.crt`.
    pub cert_path: PathBuf,
    /// The leaf's private key, PEM (PKCS#8): `DIR/server.key`.
    pub key_path: PathBuf,
    /// A containers-style certificate directory holding only `ca.crt`, for
    /// `skopeo --src-cert-dir/--dest-cert-dir` and `podman --cert-dir`.
    pub cert_dir: PathBuf,
}

impl Certs {
    /// Generate a CA and a leaf for `127.0.0.1`, `localhost` and `hosts` (IP addresses
    /// become `IP:` SANs, anything else `DNS:`).
    pub fn generate(hosts: &[&str]) -> Certs {
        let openssl = require_tool("openssl", "openssl");
        let dir = tempfile::Builder::new()
            .prefix("berth-certs-")
            .tempdir()
            .expect("create temp dir for certs");
        let d = dir.path();
        let ca_key = d.join("ca.key");
        let ca_path = d.join("ca.crt");
        let key_path = d.join("server.key");
        let csr = d.join("server.csr");
        let ext = d.join("server.ext");
        let cert_path = d.join("server.crt");
        let cert_dir = d.join("client");

        let mut sans: Vec<String> = vec!["IP:127.0.0.1".into(), "DNS:localhost".into()];
        for h in hosts {
            let san = if h.parse::<IpAddr>().is_ok() {
                format!("IP:{h}")
            } else {
                format!("DNS:{h}")
            };
            if !sans.contains(&san) {
                sans.push(san);
            }
        }
        let cn = hosts.first().copied().unwrap_or("127.0.0.1");

        let ossl = || {
            let mut c = clean_command(&openssl, d);
            c.current_dir(d);
            c
        };
        run_checked(
            ossl()
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args([
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-sha256",
                    "-days",
                    "3650",
                    "-subj",
                    "/CN=berth-testkit-ca",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout",
                ])
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca_path),
            "openssl req (CA)",
        );
        run_checked(
            ossl()
                .args(["req", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:prime256v1", "-nodes", "-sha256", "-subj"])
                .arg(format!("/CN={cn}"))
                .arg("-keyout")
                .arg(&key_path)
                .arg("-out")
                .arg(&csr),
            "openssl req (leaf CSR)",
        );
        std::fs::write(
            &ext,
            format!(
                "basicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\n\
                 subjectAltName={}\n",
                sans.join(",")
            ),
        )
        .expect("write server.ext");
        run_checked(
            ossl()
                .args(["x509", "-req", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(&ca_path)
                .arg("-CAkey")
                .arg(&ca_key)
                .args(["-CAcreateserial", "-days", "3650", "-sha256", "-extfile"])
                .arg(&ext)
                .arg("-out")
                .arg(&cert_path),
            "openssl x509 (sign leaf)",
        );
        std::fs::create_dir(&cert_dir).expect("create cert dir");
        std::fs::copy(&ca_path, cert_dir.join("ca.crt")).expect("copy ca.crt");
        let ca_pem = std::fs::read_to_string(&ca_path).expect("read ca.crt");
        Certs {
            dir,
            ca_pem,
            ca_path,
            cert_path,
            key_path,
            cert_dir,
        }
    }
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs")
            .field("dir", &self.dir.path())
            .field("ca_path", &self.ca_path)
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}
