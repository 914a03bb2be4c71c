//! TLS trust: a registry's own CAs and the system roots. The system roots are read once per
//! process from `SSL_CERT_FILE` / `SSL_CERT_DIR`, so this file is its own test binary and
//! sets them before any client exists.

use berth_client::{Client, ClientError, Credentials, RegistryConfig, RegistryConfigs};
use berth_testkit::{Certs, Distribution};

#[tokio::test]
async fn a_registry_is_trusted_by_its_own_ca_or_by_the_system_roots_and_by_nothing_else() {
    let reg = Distribution::tls_htpasswd("sys", "sys-pass");
    let other_ca = Certs::generate(&[]);
    let empty = tempfile::tempdir().unwrap();
    // SAFETY: set before any thread of this test binary reads the environment.
    unsafe {
        std::env::set_var("SSL_CERT_FILE", &reg.certs().unwrap().ca_path);
        std::env::set_var("SSL_CERT_DIR", empty.path());
    }
    let creds = || Some(Credentials::new("sys", "sys-pass"));
    let host = reg.host();
    let ping = |ca_pems: Vec<String>| {
        let host = host.clone();
        let mut c = RegistryConfigs::new();
        c.insert(
            &host,
            RegistryConfig {
                credentials: creds(),
                insecure: false,
                ca_pems,
            },
        );
        async move { Client::new(c).unwrap().registry(&host).ping().await }
    };
    // The registry's CA is (here) a system root: trusted with no CA of its own,
    ping(Vec::new()).await.expect("system roots");
    // and also when the user data names another CA: its own CAs come first, then the system.
    ping(vec![other_ca.ca_pem.clone()])
        .await
        .expect("own CA, then the system roots");

    // A verifier of the same process for a registry signed by neither: refused, TLS named.
    let stranger = Distribution::tls_htpasswd("sys", "sys-pass");
    let mut c = RegistryConfigs::new();
    c.insert(
        &stranger.host(),
        RegistryConfig {
            credentials: creds(),
            insecure: false,
            ca_pems: vec![other_ca.ca_pem.clone()],
        },
    );
    let err = Client::new(c)
        .unwrap()
        .registry(&stranger.host())
        .ping()
        .await
        .expect_err("an unknown issuer");
    assert!(matches!(err, ClientError::Tls { .. }), "{err:?}");
    // ... unless insecure.
    let mut c = RegistryConfigs::new();
    c.insert(
        &stranger.host(),
        RegistryConfig {
            credentials: creds(),
            insecure: true,
            ca_pems: Vec::new(),
        },
    );
    Client::new(c)
        .unwrap()
        .registry(&stranger.host())
        .ping()
        .await
        .expect("insecure accepts it");
}
