//! TLS: a given certificate and key, or a CA and leaf generated once into `<data>/tls/`.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
pub use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::RegistryError;
use crate::config::TlsConfig;

fn read(path: &Path) -> Result<Vec<u8>, RegistryError> {
    std::fs::read(path).map_err(|source| RegistryError::Io {
        action: "read TLS file",
        path: path.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, content: &str, private: bool) -> Result<(), RegistryError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| RegistryError::Io {
        action: "write TLS file",
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io)?;
    f.write_all(content.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// A rustls server config from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, RegistryError> {
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut BufReader::new(&read(cert)?[..]))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                RegistryError::Tls(format!("certificate file `{}`: {e}", cert.display()))
            })?;
    if certs.is_empty() {
        return Err(RegistryError::Tls(format!(
            "certificate file `{}` has no PEM certificate",
            cert.display()
        )));
    }
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut BufReader::new(&read(key)?[..]))
            .map_err(|e| RegistryError::Tls(format!("key file `{}`: {e}", key.display())))?
            .ok_or_else(|| {
                RegistryError::Tls(format!(
                    "key file `{}` has no PEM private key",
                    key.display()
                ))
            })?;
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RegistryError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| {
        RegistryError::Tls(format!(
            "certificate `{}` and its key do not go together: {e}",
            cert.display()
        ))
    })?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Files of a generated CA and leaf.
pub struct Generated {
    pub ca_cert: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// The names the generated certificate is for.
pub fn default_hosts(listen: &str, extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            hosts.push(h.to_string());
        }
    }
    if let Ok(a) = listen.parse::<std::net::SocketAddr>()
        && !a.ip().is_unspecified()
    {
        hosts.push(a.ip().to_string());
    }
    hosts.extend(extra.iter().cloned());
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Generates (once) a CA and a leaf certificate for `hosts` in `dir`; reuses them after.
/// When the hosts change, a new leaf is issued by the same CA (clients keep trusting it).
pub fn generate(dir: &Path, hosts: &[String]) -> Result<Generated, RegistryError> {
    std::fs::create_dir_all(dir).map_err(|source| RegistryError::Io {
        action: "create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let g = Generated {
        ca_cert: dir.join("ca.crt"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    };
    let ca_key_path = dir.join("ca.key");
    let hosts_path = dir.join("server.hosts");
    let tls_err = |e: rcgen::Error| RegistryError::Tls(format!("generating certificates: {e}"));
    let (ca_key, ca_pem) = if g.ca_cert.is_file() && ca_key_path.is_file() {
        let k = String::from_utf8_lossy(&read(&ca_key_path)?).into_owned();
        let c = String::from_utf8_lossy(&read(&g.ca_cert)?).into_owned();
        (KeyPair::from_pem(&k).map_err(tls_err)?, c)
    } else {
        let key = KeyPair::generate().map_err(tls_err)?;
        let p = ca_params().map_err(tls_err)?;
        let cert = p.self_signed(&key).map_err(tls_err)?;
        write_file(&ca_key_path, &key.serialize_pem(), true)?;
        write_file(&g.ca_cert, &cert.pem(), false)?;
        // A new CA invalidates any old leaf.
        let _ = std::fs::remove_file(&hosts_path);
        (key, cert.pem())
    };
    let wanted = hosts.join("\n");
    let current = std::fs::read_to_string(&hosts_path).unwrap_or_default();
    if current != wanted || !g.cert.is_file() || !g.key.is_file() {
        // Same subject and key as the stored CA certificate, so the leaf chains to it.
        let issuer = Issuer::new(ca_params().map_err(tls_err)?, &ca_key);
        let key = KeyPair::generate().map_err(tls_err)?;
        let mut p = CertificateParams::new(hosts.to_vec()).map_err(tls_err)?;
        p.distinguished_name.push(
            DnType::CommonName,
            hosts.first().cloned().unwrap_or_default(),
        );
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let cert = p.signed_by(&key, &issuer).map_err(tls_err)?;
        write_file(&g.key, &key.serialize_pem(), true)?;
        write_file(&g.cert, &format!("{}{}", cert.pem(), ca_pem), false)?;
        write_file(&hosts_path, &wanted, false)?;
    }
    Ok(g)
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.distinguished_name
        .push(DnType::CommonName, "Berth edge registry CA");
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(p)
}

/// The rustls config the settings ask for, if any.
pub fn from_config(
    cfg: &TlsConfig,
    data: &Path,
    listen: &str,
) -> Result<Option<Arc<ServerConfig>>, RegistryError> {
    match (&cfg.cert, &cfg.key, cfg.self_signed) {
        (Some(c), Some(k), false) => server_config(c, k).map(Some),
        (None, None, true) => {
            let g = generate(&data.join("tls"), &default_hosts(listen, &cfg.hosts))?;
            tracing::info!(ca = %g.ca_cert.display(), "TLS with a generated certificate; clients trust the CA file");
            server_config(&g.cert, &g.key).map(Some)
        }
        (None, None, false) => Ok(None),
        (Some(_), Some(_), true) => Err(RegistryError::Tls(
            "give either a certificate and key or self_signed, not both".into(),
        )),
        _ => Err(RegistryError::Tls(
            "a certificate needs its key: give both --tls-cert and --tls-key".into(),
        )),
    }
}
