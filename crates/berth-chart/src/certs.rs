//! Sprig's certificate functions (`genCA`, `genSelfSignedCert`, `genSignedCert`,
//! `genPrivateKey`): real keys and X.509 certificates, made with rcgen (RSA 2048 as Sprig
//! makes them; keys are written as PKCS#8 PEM).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::funcs::{F, int, list_of, string, strval};
use crate::value::{Map, Value};

fn rsa() -> Result<KeyPair, String> {
    KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(|e| e.to_string())
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

fn params(
    cn: &str,
    ips: &[String],
    dns: &[String],
    days: i64,
    ca: bool,
) -> Result<CertificateParams, String> {
    let mut sans: Vec<String> = dns.to_vec();
    sans.extend(ips.iter().cloned());
    let mut p = CertificateParams::new(sans).map_err(|e| e.to_string())?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 / 86_400)
        .unwrap_or(0);
    let (y, m, d) = civil(today);
    p.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil(today + days.max(1));
    p.not_after = rcgen::date_time_ymd(y, m, d);
    p.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
    ];
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages.push(KeyUsagePurpose::KeyCertSign);
    }
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(p)
}

fn pair(cert: String, key: String) -> Value {
    let mut m = Map::new();
    m.insert("Cert".into(), Value::str(cert));
    m.insert("Key".into(), Value::str(key));
    Value::map(m)
}

fn strings(v: &Value) -> Result<Vec<String>, String> {
    Ok(list_of(v)?
        .iter()
        .filter(|x| !x.is_nil())
        .map(strval)
        .collect())
}

/// `None` when `name` is not a certificate function.
pub fn call(name: &str, a: &[Value]) -> Option<F> {
    let r = match name {
        "genCA" => (|| {
            let cn = string(a.first(), name)?;
            let days = int(a.get(1).unwrap_or(&Value::Nil))?;
            let key = rsa()?;
            let cert = params(cn, &[], &[], days, true)?
                .self_signed(&key)
                .map_err(|e| e.to_string())?;
            Ok(pair(cert.pem(), key.serialize_pem()))
        })(),
        "genSelfSignedCert" | "genSignedCert" => (|| {
            let cn = string(a.first(), name)?;
            let ips = strings(a.get(1).unwrap_or(&Value::Nil))?;
            let dns = strings(a.get(2).unwrap_or(&Value::Nil))?;
            let days = int(a.get(3).unwrap_or(&Value::Nil))?;
            let key = rsa()?;
            let p = params(cn, &ips, &dns, days, false)?;
            let cert = if name == "genSelfSignedCert" {
                p.self_signed(&key).map_err(|e| e.to_string())?
            } else {
                let ca = a.get(4).ok_or("genSignedCert needs a CA")?;
                let ca_cert = ca.get("Cert").map(|v| strval(&v)).unwrap_or_default();
                let ca_key = ca.get("Key").map(|v| strval(&v)).unwrap_or_default();
                let ca_key =
                    KeyPair::from_pem(&ca_key).map_err(|e| format!("the CA's key: {e}"))?;
                let issuer = Issuer::from_ca_cert_pem(&ca_cert, ca_key)
                    .map_err(|e| format!("the CA's certificate: {e}"))?;
                p.signed_by(&key, &issuer).map_err(|e| e.to_string())?
            };
            Ok(pair(cert.pem(), key.serialize_pem()))
        })(),
        "genPrivateKey" => (|| {
            let alg = match string(a.first(), name)? {
                "rsa" => &rcgen::PKCS_RSA_SHA256,
                "ecdsa" => &rcgen::PKCS_ECDSA_P256_SHA256,
                "ed25519" => &rcgen::PKCS_ED25519,
                other => return Err(format!("unknown private key type {other:?}")),
            };
            let key = KeyPair::generate_for(alg).map_err(|e| e.to_string())?;
            Ok(Value::str(key.serialize_pem()))
        })(),
        _ => return None,
    };
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_signs_a_certificate() {
        let ca = call("genCA", &[Value::str("test-ca"), Value::Int(365)])
            .unwrap()
            .unwrap();
        let cert = call(
            "genSignedCert",
            &[
                Value::str("svc"),
                Value::Nil,
                Value::list(vec![Value::str("svc.default.svc")]),
                Value::Int(365),
                ca.clone(),
            ],
        )
        .unwrap()
        .unwrap();
        let pem = cert.get("Cert").unwrap();
        assert!(
            pem.as_str()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_454), (2026, 1, 1));
    }
}
