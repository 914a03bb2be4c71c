//! Cosign simple-signing signatures checked against a policy: typed verdicts.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::Serialize;

use crate::identity::Named;
use crate::policy::{Policy, Requirement, SignedBy};

/// The layer annotation holding a cosign signature (base64).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation holding a Fulcio certificate (keyless signing).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The layer annotation holding a Rekor bundle (transparency-log inclusion).
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// The media type of a cosign simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The artifact type of a Sigstore bundle (cosign v3's new bundle format).
pub const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// `critical.type` of a cosign container image signature.
pub const COSIGN_TYPE: &str = "cosign container image signature";

/// One signature: a payload layer of the `sha256-<hex>.sig` manifest and its annotations.
#[derive(Debug, Clone, Default)]
pub struct Signature {
    /// The payload bytes (already checked against the layer's digest by whoever fetched it).
    pub payload: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

/// Everything found attached to one image digest.
#[derive(Debug, Clone, Default)]
pub struct Signatures {
    /// Classic cosign signatures (the `.sig` tag's layers).
    pub simple: Vec<Signature>,
    /// Sigstore bundles referring to the image (not verified by Berth yet).
    pub bundles: usize,
}

/// The signature state of one image under a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Verdict {
    /// The scope accepts anything (`insecureAcceptAnything`).
    Accepted,
    /// The scope rejects every image (`reject`).
    Rejected,
    /// A signature by `key` over this digest, naming `identity`. `unverified` lists what was
    /// attached but not checked (a Rekor bundle, a certificate) — offline, without trust roots.
    SignedBy {
        key: String,
        identity: String,
        unverified: Vec<String>,
    },
    /// No signature at all.
    Unsigned,
    /// Signatures, but none verifies with a trusted key (another key signed, or the payload
    /// was altered after signing).
    WrongKey {
        signatures: usize,
        keys: Vec<String>,
    },
    /// A signature that is not a cosign simple-signing signature Berth can read.
    PayloadDamaged { detail: String },
    /// A valid signature for another image: its `docker-manifest-digest` is not this digest.
    DigestMismatch { signed: String, image: String },
    /// A valid signature over this digest, naming an identity the policy does not accept.
    IdentityMismatch {
        signed: String,
        expected: String,
        rule: String,
    },
    /// What the policy asks for is not something Berth can check here.
    NotVerified { what: String },
}

impl Verdict {
    /// Whether the image may be used.
    pub fn allowed(&self) -> bool {
        matches!(self, Verdict::Accepted | Verdict::SignedBy { .. })
    }

    /// One word: `signed`, `unsigned`, `wrong-key`, ...
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Rejected => "rejected",
            Verdict::SignedBy { .. } => "signed",
            Verdict::Unsigned => "unsigned",
            Verdict::WrongKey { .. } => "wrong-key",
            Verdict::PayloadDamaged { .. } => "payload-damaged",
            Verdict::DigestMismatch { .. } => "digest-mismatch",
            Verdict::IdentityMismatch { .. } => "identity-mismatch",
            Verdict::NotVerified { .. } => "not-verified",
        }
    }

    /// How far a failed signature got (the most telling one is reported).
    fn rank(&self) -> u8 {
        match self {
            Verdict::IdentityMismatch { .. } => 4,
            Verdict::DigestMismatch { .. } => 3,
            Verdict::WrongKey { .. } => 2,
            Verdict::PayloadDamaged { .. } => 1,
            _ => 0,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accepted => {
                f.write_str("accepted without a signature (insecureAcceptAnything)")
            }
            Verdict::Rejected => {
                f.write_str("rejected: the policy rejects every image of this scope")
            }
            Verdict::SignedBy {
                key,
                identity,
                unverified,
            } => {
                write!(f, "signed by {key} as {identity}")?;
                for u in unverified {
                    write!(f, "; not verified: {u}")?;
                }
                Ok(())
            }
            Verdict::Unsigned => {
                f.write_str("unsigned: no cosign signature (no sha256-<hex>.sig) for this digest")
            }
            Verdict::WrongKey { signatures, keys } => write!(
                f,
                "wrong key: none of {signatures} signature(s) verifies with {} (signed by another key, or the payload was altered after signing)",
                keys.join(", ")
            ),
            Verdict::PayloadDamaged { detail } => write!(f, "payload damaged: {detail}"),
            Verdict::DigestMismatch { signed, image } => write!(
                f,
                "digest mismatch: the signature is for {signed}, the image is {image}"
            ),
            Verdict::IdentityMismatch {
                signed,
                expected,
                rule,
            } => write!(
                f,
                "identity mismatch: signed as {signed}, the policy ({rule}) wants {expected}"
            ),
            Verdict::NotVerified { what } => write!(f, "not verified: {what}"),
        }
    }
}

/// The decision about one image: which scope applied and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The image as it was signed (its source reference).
    pub image: String,
    /// The digest checked.
    pub digest: String,
    /// The policy scope that applied (`default` when none matched).
    pub scope: String,
    pub verdict: Verdict,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.verdict.allowed()
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.image, self.digest, self.verdict)
    }
}

#[derive(serde::Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(serde::Deserialize)]
struct Critical {
    identity: PayloadIdentity,
    image: PayloadImage,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(serde::Deserialize)]
struct PayloadIdentity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(serde::Deserialize)]
struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

impl Policy {
    /// Decides `image` (the source reference it was signed under, as Berth names it) with
    /// manifest `digest`, given what is attached to that digest.
    pub fn decide(
        &self,
        image: &berth_reference::Reference,
        digest: &str,
        sigs: &Signatures,
    ) -> Decision {
        let image_s = image.to_string();
        let (scope, reqs) = self.requirements(&image_s);
        let mut verdict = Verdict::Accepted;
        for r in reqs {
            let v = match r {
                Requirement::Accept => Verdict::Accepted,
                Requirement::Reject => Verdict::Rejected,
                Requirement::Signed(s) => signed(s, image, digest, sigs),
            };
            if !v.allowed() {
                verdict = v;
                break;
            }
            if matches!(v, Verdict::SignedBy { .. }) {
                verdict = v;
            }
        }
        Decision {
            image: image_s,
            digest: digest.to_string(),
            scope: if scope.is_empty() {
                "\"\" (docker)".into()
            } else {
                scope.to_string()
            },
            verdict,
        }
    }
}

fn signed(
    s: &SignedBy,
    image: &berth_reference::Reference,
    digest: &str,
    sigs: &Signatures,
) -> Verdict {
    if let Some(what) = &s.keyless {
        return Verdict::NotVerified {
            what: format!(
                "{what}: Fulcio certificates and Rekor inclusion need --trusted-root files, and none were given"
            ),
        };
    }
    if sigs.simple.is_empty() {
        return match sigs.bundles {
            0 => Verdict::Unsigned,
            n => Verdict::NotVerified {
                what: format!(
                    "{n} Sigstore bundle(s) ({SIGSTORE_BUNDLE}) refer to this image: bundle format, which Berth does not verify yet; sign with --new-bundle-format=false"
                ),
            },
        };
    }
    let want = Named::of(image);
    let mut best: Option<Verdict> = None;
    for sig in &sigs.simple {
        let v = one(s, &want, digest, sig, sigs.simple.len());
        if v.allowed() {
            return v;
        }
        if best.as_ref().is_none_or(|b| v.rank() > b.rank()) {
            best = Some(v);
        }
    }
    best.unwrap_or(Verdict::Unsigned)
}

fn one(s: &SignedBy, want: &Named, digest: &str, sig: &Signature, count: usize) -> Verdict {
    let damaged = |detail: String| Verdict::PayloadDamaged { detail };
    let Some(b64) = sig.annotations.get(SIGNATURE_ANNOTATION) else {
        return damaged(format!("a layer has no {SIGNATURE_ANNOTATION} annotation"));
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return damaged(format!(
            "the {SIGNATURE_ANNOTATION} annotation is not base64"
        ));
    };
    let payload: Result<Payload, _> = serde_json::from_slice(&sig.payload);
    let Some(key) = s.keys.iter().find(|k| k.verifies(&sig.payload, &raw)) else {
        return match payload {
            Err(e) => damaged(format!(
                "the payload is not a cosign simple-signing document ({e}) and no trusted key verifies it"
            )),
            Ok(_) => Verdict::WrongKey {
                signatures: count,
                keys: s.keys.iter().map(ToString::to_string).collect(),
            },
        };
    };
    let p = match payload {
        Ok(p) => p,
        Err(e) => {
            return damaged(format!(
                "the signed payload is not a cosign simple-signing document: {e}"
            ));
        }
    };
    if p.critical.ty != COSIGN_TYPE {
        return damaged(format!(
            "critical.type is {:?}, not {COSIGN_TYPE:?}",
            p.critical.ty
        ));
    }
    if p.critical.image.docker_manifest_digest != digest {
        return Verdict::DigestMismatch {
            signed: p.critical.image.docker_manifest_digest,
            image: digest.to_string(),
        };
    }
    let signed_as = p.critical.identity.docker_reference;
    let Ok(signed) = Named::parse(&signed_as) else {
        return damaged(format!(
            "critical.identity.docker-reference {signed_as:?} is not a reference"
        ));
    };
    if !s.identity.matches(want, &signed) {
        return Verdict::IdentityMismatch {
            signed: signed_as,
            expected: want.to_string(),
            rule: s.identity.to_string(),
        };
    }
    let mut unverified = Vec::new();
    if sig.annotations.contains_key(CERTIFICATE_ANNOTATION) {
        unverified.push("the attached Fulcio certificate (no --trusted-root)".to_string());
    }
    if sig.annotations.contains_key(BUNDLE_ANNOTATION) {
        unverified
            .push("the Rekor bundle (transparency-log inclusion; no --trusted-root)".to_string());
    }
    Verdict::SignedBy {
        key: key.to_string(),
        identity: signed_as,
        unverified,
    }
}
