//! The testkit's registries: start, answer, TLS + auth, stop/start, gone after Drop.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use berth_testkit::{Certs, Distribution, http_get_status};

fn refuses(host: &str) -> bool {
    TcpStream::connect(host).is_err()
}

/// `curl` status code for a URL, with a clean environment (no CURL_CA_BUNDLE etc.).
fn curl_status(url: &str, cacert: Option<&Path>, user: Option<&str>) -> String {
    let mut c = Command::new("/usr/bin/curl");
    c.env_clear().env("PATH", "/usr/bin:/bin").args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ]);
    if let Some(ca) = cacert {
        c.arg("--cacert").arg(ca);
    }
    if let Some(u) = user {
        c.arg("--user").arg(u);
    }
    let out = c
        .arg(url)
        .output()
        .expect("run curl (apt-get install -y curl)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn plain_starts_answers_and_is_gone_after_drop() {
    let t = Instant::now();
    let reg = Distribution::plain();
    eprintln!("plain registry started in {:?}", t.elapsed());
    let host = reg.host();
    assert!(host.starts_with("127.0.0.1:"));
    assert_eq!(reg.url(), format!("http://{host}"));
    assert!(reg.certs().is_none());
    assert!(reg.credentials().is_none());
    assert!(reg.data_dir().is_dir());
    assert_eq!(http_get_status(&host, "/v2/").unwrap(), 200);
    let root = reg.data_dir().parent().unwrap().to_path_buf();
    drop(reg);
    assert!(refuses(&host), "port still open after Drop");
    assert!(!root.exists(), "temp dir not removed");
}

#[test]
fn tls_htpasswd_requires_credentials() {
    let t = Instant::now();
    let reg = Distribution::tls_htpasswd("alice", "s3cret");
    eprintln!("tls+htpasswd registry started in {:?}", t.elapsed());
    let host = reg.host();
    assert_eq!(reg.url(), format!("https://{host}"));
    assert_eq!(
        reg.credentials(),
        Some(("alice".to_string(), "s3cret".to_string()))
    );
    let certs = reg.certs().expect("certs");
    assert!(certs.ca_pem.contains("BEGIN CERTIFICATE"));
    assert!(certs.cert_dir.join("ca.crt").is_file());
    let url = format!("{}/v2/", reg.url());
    assert_eq!(curl_status(&url, Some(&certs.ca_path), None), "401");
    assert_eq!(
        curl_status(&url, Some(&certs.ca_path), Some("alice:s3cret")),
        "200"
    );
    assert_eq!(
        curl_status(&url, Some(&certs.ca_path), Some("alice:wrong")),
        "401"
    );
    // Untrusted without the CA: curl fails the handshake (code 000).
    assert_eq!(curl_status(&url, None, Some("alice:s3cret")), "000");
    drop(reg);
    assert!(refuses(&host), "port still open after Drop");
}

#[test]
fn certs_are_a_ca_and_a_separate_leaf() {
    let c = Certs::generate(&["127.0.0.1", "localhost", "registry.test"]);
    let text = |p: &Path| {
        let out = Command::new("/usr/bin/openssl")
            .env_clear()
            .args(["x509", "-noout", "-text", "-in"])
            .arg(p)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ca = text(&c.ca_path);
    let leaf = text(&c.cert_path);
    assert!(ca.contains("CA:TRUE"), "{ca}");
    assert!(leaf.contains("CA:FALSE"), "{leaf}");
    assert!(leaf.contains("TLS Web Server Authentication"), "{leaf}");
    assert!(leaf.contains("IP Address:127.0.0.1"), "{leaf}");
    assert!(leaf.contains("DNS:localhost"), "{leaf}");
    assert!(leaf.contains("DNS:registry.test"), "{leaf}");
    let verify = Command::new("/usr/bin/openssl")
        .env_clear()
        .args(["verify", "-CAfile"])
        .arg(&c.ca_path)
        .arg(&c.cert_path)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
    assert!(c.key_path.is_file());
}

/// Upload one blob with curl (POST, then PUT ?digest=), return its digest.
fn curl_push_blob(reg: &Distribution, repo: &str, data: &[u8]) -> String {
    let certs = reg.certs().unwrap();
    let (u, p) = reg.credentials().unwrap();
    let digest = berth_testkit::sha256_digest(data);
    let post = Command::new("/usr/bin/curl")
        .env_clear()
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-X",
            "POST",
            "--cacert",
        ])
        .arg(&certs.ca_path)
        .arg("--user")
        .arg(format!("{u}:{p}"))
        .arg(format!("{}/v2/{repo}/blobs/uploads/", reg.url()))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&post.stdout);
    let loc = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .unwrap_or_else(|| panic!("no Location in {headers}"))
        .trim()
        .to_string();
    let loc = if loc.starts_with('/') {
        format!("{}{loc}", reg.url())
    } else {
        loc
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("blob");
    std::fs::write(&f, data).unwrap();
    let put = Command::new("/usr/bin/curl")
        .env_clear()
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "--cacert",
        ])
        .arg(&certs.ca_path)
        .arg("--user")
        .arg(format!("{u}:{p}"))
        .args([
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", f.display()))
        .arg(format!("{loc}{sep}digest={digest}"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&put.stdout), "201", "{put:?}");
    digest
}

#[test]
fn stop_start_keeps_port_and_data() {
    let mut reg = Distribution::tls_htpasswd("u", "p");
    let host = reg.host();
    let digest = curl_push_blob(&reg, "kit/blob", b"hello berth testkit");
    let blob_url = format!("{}/v2/kit/blob/blobs/{digest}", reg.url());
    let ca = reg.certs().unwrap().ca_path.clone();
    assert_eq!(curl_status(&blob_url, Some(&ca), Some("u:p")), "200");

    reg.stop();
    assert!(!reg.is_running());
    assert!(refuses(&host), "port still open after stop()");
    reg.stop(); // idempotent

    let t = Instant::now();
    reg.start();
    eprintln!("registry restarted in {:?}", t.elapsed());
    assert!(reg.is_running());
    assert_eq!(reg.host(), host);
    assert_eq!(curl_status(&blob_url, Some(&ca), Some("u:p")), "200");
}

#[test]
fn parallel_registries_get_distinct_ports() {
    let regs: Vec<Distribution> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(Distribution::plain)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut ports: Vec<u16> = regs.iter().map(|r| r.port()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4);
    for r in &regs {
        assert_eq!(http_get_status(&r.host(), "/v2/").unwrap(), 200);
    }
}

/// A registry that is never dropped (e.g. kept in a `static`) dies with the test process.
#[test]
fn leaked_registry_dies_with_the_test_process() {
    const NAME: &str = "leaked_registry_dies_with_the_test_process";
    if std::env::var_os("BERTH_TESTKIT_LEAK_CHILD").is_some() {
        let reg = Distribution::plain();
        println!("HOST={}", reg.host());
        println!("ROOT={}", reg.data_dir().parent().unwrap().display());
        std::mem::forget(reg);
        std::process::exit(0);
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env("BERTH_TESTKIT_LEAK_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.find(k).map(|i| l[i + k.len()..].trim()))
            .unwrap_or_else(|| panic!("no {k} in child output: {stdout}"))
            .to_string()
    };
    let host = field("HOST=");
    let root = field("ROOT=");
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while !refuses(&host) {
        assert!(
            Instant::now() < deadline,
            "leaked registry {host} still running"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(root);
}
