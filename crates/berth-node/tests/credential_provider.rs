//! The kubelet credential provider with real request JSON.

use berth_node::credential_provider::{self, CacheKeyType};
use berth_userdata::UserData;
use serde_json::{Value, json};

const PREPEND: &str = "#cloud-config
stylus:
  registryCredentials:
    domain: 10.10.254.254:8000/spectro-images
    username: ubuntu
    password: \"s3cret-pw\"
";

const MAPPING: &str = "#cloud-config
stylus:
  externalRegistries:
    registries:
      - domain: registry.example.com
        username: shared
        password: shared-pw
      - domain: registry.example.com/team
        username: team
        password: team-pw
      - domain: harbor.local:8443
        username: admin
        encodedPassword: true
        password: aGFyYm9yLXB3
      - domain: anonymous.example.com
    registryMappingRules:
      \"quay.io\": \"registry.example.com/quay\"
      \"ghcr.io/team\": \"registry.example.com/team\"
      \"docker.io\": \"harbor.local:8443/dockerhub\"
";

fn ud(text: &str) -> UserData {
    UserData::parse(text, "/oem/userdata").unwrap()
}

fn ask(ud: &UserData, image: &str) -> Value {
    let req = json!({
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest",
        "image": image
    })
    .to_string();
    let out = credential_provider::respond_json(ud, &req, "10m").unwrap();
    serde_json::from_str(&out).unwrap()
}

#[test]
fn prepend_form_answers_with_the_registry_credentials() {
    let u = ud(PREPEND);
    let got = ask(
        &u,
        "10.10.254.254:8000/spectro-images/quay.io/kairos/core:v1",
    );
    assert_eq!(
        got,
        json!({
            "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
            "kind": "CredentialProviderResponse",
            "cacheKeyType": "Image",
            "cacheDuration": "10m",
            "auth": {"10.10.254.254:8000/spectro-images": {"username": "ubuntu", "password": "s3cret-pw"}}
        })
    );
    // The same host outside the domain's path is another registry: nothing.
    assert_eq!(ask(&u, "10.10.254.254:8000/other/app:1")["auth"], json!({}));
}

#[test]
fn mapping_form_takes_the_longest_domain() {
    let u = ud(MAPPING);
    assert_eq!(
        ask(&u, "registry.example.com/team/app:1")["auth"],
        json!({"registry.example.com/team": {"username": "team", "password": "team-pw"}})
    );
    let got = ask(
        &u,
        "registry.example.com/quay/org/x@sha256:0123456789012345678901234567890123456789012345678901234567890123",
    );
    assert_eq!(
        got["auth"],
        json!({"registry.example.com": {"username": "shared", "password": "shared-pw"}})
    );
    // Two entries share the host: cache per image.
    assert_eq!(got["cacheKeyType"], "Image");
    // One entry, no path: cache per registry. encodedPassword is decoded.
    let got = ask(&u, "harbor.local:8443/dockerhub/library/nginx:1.25");
    assert_eq!(got["cacheKeyType"], "Registry");
    assert_eq!(
        got["auth"],
        json!({"harbor.local:8443": {"username": "admin", "password": "harbor-pw"}})
    );
}

#[test]
fn no_match_is_an_empty_auth_not_an_error() {
    let u = ud(MAPPING);
    for image in [
        "quay.io/org/x:1",
        "nginx",
        "anonymous.example.com/a/b:1",
        "harbor.local/x:1",
        "Not Valid!",
    ] {
        let got = ask(&u, image);
        assert_eq!(got["kind"], "CredentialProviderResponse");
        assert_eq!(got["auth"], json!({}), "{image}");
        assert_eq!(got["cacheKeyType"], "Image");
    }
}

#[test]
fn bad_requests_are_errors_that_name_the_problem() {
    let u = ud(PREPEND);
    let e = credential_provider::respond_json(&u, "{\"image\": ", "10m")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a CredentialProviderRequest"), "{e}");
    let e = credential_provider::respond_json(
        &u,
        r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"Pod","image":"x"}"#,
        "10m",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("expected CredentialProviderRequest"), "{e}");
    let e = credential_provider::respond_json(
        &u,
        r#"{"apiVersion":"v1","kind":"CredentialProviderRequest","image":"x"}"#,
        "10m",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("apiVersion"), "{e}");
    assert!(!e.contains("s3cret-pw"));
}

#[test]
fn debug_hides_the_password() {
    let u = ud(PREPEND);
    let req = credential_provider::parse_request(
        r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"10.10.254.254:8000/spectro-images/x/y:1"}"#,
    )
    .unwrap();
    let resp = credential_provider::respond(&u, &req, "1h");
    assert_eq!(resp.cache_key_type, CacheKeyType::Image);
    let dbg = format!("{resp:?} {:?}", resp.auth.values().next().unwrap());
    assert!(!dbg.contains("s3cret-pw"), "{dbg}");
    assert!(dbg.contains("10.10.254.254:8000/spectro-images"));
}

#[test]
fn provider_config_whole_file() {
    let got = credential_provider::provider_config(&ud(MAPPING), "/oem/userdata", "10m").unwrap();
    let want = r#"# Generated by `berth credential-provider config`.
# kubelet: --image-credential-provider-config=<this file> --image-credential-provider-bin-dir=<dir holding `berth`>
apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: berth
    matchImages:
      - "harbor.local:8443"
      - "registry.example.com"
    defaultCacheDuration: "10m"
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    args:
      - credential-provider
      - --user-data
      - "/oem/userdata"
"#;
    assert_eq!(got, want);
    let v: Value = serde_saphyr::from_str(&got).unwrap();
    assert_eq!(v["providers"][0]["defaultCacheDuration"], "10m");
    assert!(!got.contains("pw"));
    // No registry with credentials: no provider to configure.
    let e = credential_provider::provider_config(
        &ud("#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: a.example.com\n"),
        "/oem/userdata",
        "10m",
    )
    .unwrap_err();
    assert!(e.to_string().contains("no registry"), "{e}");
}
