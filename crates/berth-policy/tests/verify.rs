//! Policies parsed from both formats and cosign simple-signing signatures decided with real
//! ECDSA P-256 and Ed25519 signatures (made here with RustCrypto's signers).

use std::collections::BTreeMap;

use base64::Engine as _;
use berth_policy::{Policy, SIGNATURE_ANNOTATION, Signature, Signatures, Verdict};
use berth_reference::Reference;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePublicKey as _;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn p256_key(seed: u8) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn p256_pem(k: &p256::ecdsa::SigningKey) -> String {
    k.verifying_key()
        .to_public_key_pem(Default::default())
        .unwrap()
}

fn ed_key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn ed_pem(k: &ed25519_dalek::SigningKey) -> String {
    k.verifying_key()
        .to_public_key_pem(Default::default())
        .unwrap()
}

/// The payload cosign writes for `identity` at `digest`.
fn payload(identity: &str, digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{identity}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

fn sig(payload: Vec<u8>, raw: &[u8]) -> Signatures {
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    Signatures {
        simple: vec![Signature {
            payload,
            annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), b64)]),
        }],
        bundles: 0,
    }
}

fn ecdsa_sig(k: &p256::ecdsa::SigningKey, p: Vec<u8>) -> Signatures {
    let s: p256::ecdsa::Signature = k.sign(&p);
    sig(p, s.to_der().as_bytes())
}

fn ed_sig(k: &ed25519_dalek::SigningKey, p: Vec<u8>) -> Signatures {
    use ed25519_dalek::Signer as _;
    let s = k.sign(&p);
    sig(p, &s.to_bytes())
}

fn keys(files: &[(&str, String)]) -> impl FnMut(&str) -> Result<Vec<u8>, String> {
    let map: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(n, p)| (n.to_string(), p.clone().into_bytes()))
        .collect();
    move |n: &str| {
        map.get(n)
            .cloned()
            .ok_or_else(|| format!("no such key file {n}"))
    }
}

fn berth_policy(key_files: &[(&str, String)], text: &str) -> Policy {
    Policy::parse("policy.yaml", text, &mut keys(key_files)).unwrap()
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

const BERTH: &str = "default: reject
images:
  - scope: registry.example.com/team
    require: signed
    keys: [team.pub, team-ed.pub]
  - scope: registry.example.com/team/tools
    require: accept
";

#[test]
fn every_verdict_with_ecdsa_and_ed25519() {
    let (team, team_ed, other) = (p256_key(1), ed_key(2), p256_key(3));
    let p = berth_policy(
        &[
            ("team.pub", p256_pem(&team)),
            ("team-ed.pub", ed_pem(&team_ed)),
        ],
        BERTH,
    );
    let app = r("registry.example.com/team/app:1.0");
    let id = "registry.example.com/team/app";

    let d = p.decide(&app, D1, &ecdsa_sig(&team, payload(id, D1)));
    assert!(d.allowed(), "{d}");
    assert!(
        matches!(&d.verdict, Verdict::SignedBy { key, .. } if key.contains("ecdsa-p256 key team.pub")),
        "{d}"
    );
    assert_eq!(d.scope, "registry.example.com/team");

    let d = p.decide(&app, D1, &ed_sig(&team_ed, payload(id, D1)));
    assert!(
        matches!(&d.verdict, Verdict::SignedBy { key, .. } if key.contains("ed25519 key team-ed.pub")),
        "{d}"
    );

    let d = p.decide(&app, D1, &Signatures::default());
    assert_eq!(d.verdict, Verdict::Unsigned);
    assert!(!d.allowed());
    assert!(
        d.to_string()
            .starts_with("registry.example.com/team/app:1.0 (sha256:1111"),
        "{d}"
    );

    let d = p.decide(&app, D1, &ecdsa_sig(&other, payload(id, D1)));
    assert!(
        matches!(d.verdict, Verdict::WrongKey { signatures: 1, .. }),
        "{d}"
    );
    assert!(d.to_string().contains("team.pub"), "{d}");

    // The payload altered after signing: no key verifies it any more.
    let mut s = ecdsa_sig(&team, payload(id, D1));
    s.simple[0].payload = payload("registry.example.com/team/evil", D1);
    assert!(matches!(
        p.decide(&app, D1, &s).verdict,
        Verdict::WrongKey { .. }
    ));
    // A payload that is not a cosign document at all.
    let mut s = ecdsa_sig(&team, payload(id, D1));
    s.simple[0].payload.truncate(20);
    let d = p.decide(&app, D1, &s);
    assert!(matches!(d.verdict, Verdict::PayloadDamaged { .. }), "{d}");
    // A signature annotation that is not base64.
    let mut s = ecdsa_sig(&team, payload(id, D1));
    s.simple[0]
        .annotations
        .insert(SIGNATURE_ANNOTATION.into(), "%%%".into());
    assert!(matches!(
        p.decide(&app, D1, &s).verdict,
        Verdict::PayloadDamaged { .. }
    ));

    // A valid signature of another image's digest.
    let d = p.decide(&app, D2, &ecdsa_sig(&team, payload(id, D1)));
    assert_eq!(
        d.verdict,
        Verdict::DigestMismatch {
            signed: D1.into(),
            image: D2.into()
        }
    );

    // A valid signature over this digest, naming another repository.
    let d = p.decide(
        &app,
        D1,
        &ecdsa_sig(&team, payload("registry.example.com/team/other", D1)),
    );
    assert!(matches!(d.verdict, Verdict::IdentityMismatch { .. }), "{d}");
    assert!(
        d.to_string()
            .contains("signed as registry.example.com/team/other"),
        "{d}"
    );

    // The most specific scope wins; outside every scope the default rejects.
    let tools = r("registry.example.com/team/tools/jq:1");
    assert_eq!(
        p.decide(&tools, D1, &Signatures::default()).verdict,
        Verdict::Accepted
    );
    let elsewhere = r("docker.io/library/nginx:1.27");
    let d = p.decide(&elsewhere, D1, &ecdsa_sig(&team, payload(id, D1)));
    assert_eq!(
        (d.verdict, d.scope.as_str()),
        (Verdict::Rejected, "default")
    );
}

#[test]
fn the_best_of_several_signatures_counts() {
    let (team, other) = (p256_key(1), p256_key(3));
    let p = berth_policy(
        &[
            ("team.pub", p256_pem(&team)),
            ("team-ed.pub", ed_pem(&ed_key(2))),
        ],
        BERTH,
    );
    let id = "registry.example.com/team/app";
    let mut s = ecdsa_sig(&other, payload(id, D1));
    s.simple.extend(ecdsa_sig(&team, payload(id, D1)).simple);
    assert!(
        p.decide(&r("registry.example.com/team/app:1.0"), D1, &s)
            .allowed()
    );
}

#[test]
fn bundles_and_keyless_say_what_is_not_verified() {
    let team = p256_key(1);
    let p = berth_policy(
        &[
            ("team.pub", p256_pem(&team)),
            ("team-ed.pub", ed_pem(&ed_key(2))),
        ],
        BERTH,
    );
    let app = r("registry.example.com/team/app:1.0");
    let only_bundle = Signatures {
        simple: vec![],
        bundles: 1,
    };
    let d = p.decide(&app, D1, &only_bundle);
    assert!(
        matches!(d.verdict, Verdict::NotVerified { .. }) && !d.allowed(),
        "{d}"
    );
    assert!(d.to_string().contains("bundle format"), "{d}");

    let json = r#"{"default":[{"type":"reject"}],"transports":{"docker":{
        "registry.example.com":[{"type":"sigstoreSigned","fulcio":{"caPath":"/etc/fulcio.pem","oidcIssuer":"https://issuer","subjectEmail":"a@b"},"rekorPublicKeyPath":"/etc/rekor.pub"}]}}}"#;
    let p = Policy::parse("policy.json", json, &mut keys(&[])).unwrap();
    let d = p.decide(
        &app,
        D1,
        &ecdsa_sig(&team, payload("registry.example.com/team/app", D1)),
    );
    assert!(!d.allowed());
    assert!(d.to_string().contains("not verified: `fulcio` (keyless) trust: Fulcio certificates and Rekor inclusion need --trusted-root"), "{d}");

    // A key-signed signature that also carries a Rekor bundle: accepted, the bundle named unverified.
    let p = berth_policy(
        &[
            ("team.pub", p256_pem(&team)),
            ("team-ed.pub", ed_pem(&ed_key(2))),
        ],
        BERTH,
    );
    let mut s = ecdsa_sig(&team, payload("registry.example.com/team/app", D1));
    s.simple[0]
        .annotations
        .insert(berth_policy::BUNDLE_ANNOTATION.into(), "{}".into());
    let d = p.decide(&app, D1, &s);
    assert!(d.allowed());
    assert!(
        d.to_string().contains("not verified: the Rekor bundle"),
        "{d}"
    );
}

#[test]
fn policy_json_scopes_and_identities_as_containers_image() {
    let (team, edge) = (p256_key(1), ed_key(2));
    let key_data = base64::engine::general_purpose::STANDARD.encode(ed_pem(&edge));
    let json = format!(
        r#"{{
  "default": [{{"type": "reject"}}],
  "transports": {{
    "docker": {{
      "registry.example.com/team": [{{"type": "sigstoreSigned", "keyPath": "team.pub", "signedIdentity": {{"type": "matchRepository"}}}}],
      "registry.example.com/team/app:pinned": [{{"type": "sigstoreSigned", "keyPath": "team.pub"}}],
      "*.example.com": [{{"type": "insecureAcceptAnything"}}],
      "edge.local:5000/mirror": [{{"type": "sigstoreSigned", "keyData": "{key_data}",
        "signedIdentity": {{"type": "remapIdentity", "prefix": "edge.local:5000/mirror", "signedPrefix": "registry.example.com"}}}}],
      "": [{{"type": "reject"}}]
    }},
    "docker-daemon": {{"": [{{"type": "insecureAcceptAnything"}}]}}
  }}
}}"#
    );
    let p = Policy::parse(
        "policy.json",
        &json,
        &mut keys(&[("team.pub", p256_pem(&team))]),
    )
    .unwrap();
    let id = "registry.example.com/team/app";
    let signed = ecdsa_sig(&team, payload(id, D1));
    assert!(
        p.decide(&r("registry.example.com/team/app:1.0"), D1, &signed)
            .allowed()
    );
    // `repo:tag` scope, default identity matchRepoDigestOrExact: a tag must be signed as itself,
    // and cosign signs the repository, so this fails as it does in podman.
    let d = p.decide(&r("registry.example.com/team/app:pinned"), D1, &signed);
    assert_eq!(d.scope, "registry.example.com/team/app:pinned");
    assert!(matches!(d.verdict, Verdict::IdentityMismatch { .. }), "{d}");
    // By digest, matchRepoDigestOrExact wants the same repository.
    let by_digest = r(&format!("registry.example.com/team/app@{D1}"));
    let d = p.decide(&by_digest, D1, &signed);
    assert_eq!(d.scope, "registry.example.com/team");
    assert!(d.allowed(), "{d}");
    // Wildcard host scope.
    assert_eq!(
        p.decide(&r("cdn.example.com/x:1"), D1, &Signatures::default())
            .verdict,
        Verdict::Accepted
    );
    // remapIdentity: an image read from the mirror, signed under its upstream name.
    let mirrored = r(&format!("edge.local:5000/mirror/team/app@{D1}"));
    assert!(
        p.decide(&mirrored, D1, &ed_sig(&edge, payload(id, D1)))
            .allowed()
    );
    let d = p.decide(
        &mirrored,
        D1,
        &ed_sig(&edge, payload("registry.example.com/x/y", D1)),
    );
    assert!(matches!(d.verdict, Verdict::IdentityMismatch { .. }), "{d}");
    // The transport default "" before the global default.
    assert_eq!(
        p.decide(&r("quay.io/a/b:1"), D1, &Signatures::default())
            .scope,
        "\"\" (docker)"
    );
}

#[test]
fn bad_policies_name_the_file_field_and_fix() {
    let err = |text: &str| {
        Policy::parse(
            "p.json",
            text,
            &mut keys(&[("k.pub", p256_pem(&p256_key(1)))]),
        )
        .unwrap_err()
        .to_string()
    };
    let e = err(
        r#"{"default":[{"type":"reject"}],"transports":{"docker":{"a.io":[{"type":"sigstoreSigned"}]}}}"#,
    );
    assert!(
        e.starts_with("p.json: transports.docker.\"a.io\"[0]: sigstoreSigned needs keyPath"),
        "{e}"
    );
    let e = err(
        r#"{"default":[{"type":"reject"}],"transports":{"docker":{"a.io":[{"type":"sigstoreSigned","keyPath":"missing.pub"}]}}}"#,
    );
    assert!(e.contains("no such key file missing.pub"), "{e}");
    let e = err(r#"{"default":[{"type":"rejct"}],"transports":{}}"#);
    assert!(
        e.contains("default[0].type: unknown requirement type \"rejct\""),
        "{e}"
    );
    let e = err(r#"{"transports":{}}"#);
    assert!(e.contains("needs `default`"), "{e}");
    let e = err("default: reject\nimages:\n  - scope: a.io\n    require: signed\n");
    assert!(
        e.contains("images[0].keys: require: signed needs `keys:`"),
        "{e}"
    );
    let e = err(
        "default: reject\nimages:\n  - scope: a.io\n    require: signed\n    keys: [k.pub]\n    identty: matchExact\n",
    );
    assert!(e.contains("images[0].identty: unknown field"), "{e}");
    let e = err("default: reject\nimages:\n  - scope: https://a.io\n    require: accept\n");
    assert!(e.contains("images[0].scope"), "{e}");
    let e = err(
        "default: reject\nimages:\n  - scope: a.io\n    require: signed\n    keys: [\"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\"]\n",
    );
    assert!(
        e.contains("not an ECDSA P-256 or Ed25519 public key"),
        "{e}"
    );
}
