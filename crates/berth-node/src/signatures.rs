//! Signature policy on the node (issue 14): the policy file read with its keys, cosign
//! signatures fetched from the registry an image is pulled from, and a [`Gate`] that decides
//! each image once and remembers the verdict for a while (the webhook asks per pod).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_client::{Client, ClientError, Registry};
use berth_oci::Kind;
use berth_oci::referrers::{CosignKind, cosign_tag};
use berth_policy::{Decision, Policy, SIGSTORE_BUNDLE, Signature, Signatures};
use berth_reference::Digest;
use berth_reference::Reference;
use futures_util::StreamExt as _;

use crate::NodeError;

/// How large a signature payload may be (cosign's are a few hundred bytes).
const MAX_PAYLOAD: usize = 1 << 20;

/// Reads a policy file: key paths relative to the file's directory.
pub fn load_policy(path: &Path) -> Result<Policy, NodeError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        NodeError::Config(format!("cannot read the policy {}: {e}", path.display()))
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut read = |k: &str| {
        let p = dir.join(k);
        std::fs::read(&p).map_err(|e| format!("cannot read the key {}: {e}", p.display()))
    };
    Ok(Policy::parse(
        &path.display().to_string(),
        &text,
        &mut read,
    )?)
}

/// The cosign signatures (`sha256-<hex>.sig`) of `digest` in `repo`, and how many Sigstore
/// bundles the referrers tag (`sha256-<hex>`) lists for it. Payloads are checked against
/// their digests.
pub async fn fetch_signatures(
    reg: &Registry,
    repo: &str,
    digest: &Digest,
) -> Result<Signatures, ClientError> {
    let mut out = Signatures::default();
    let d = digest.to_string();
    if reg
        .head_manifest(repo, &cosign_tag(digest, CosignKind::Signature))
        .await?
        .is_some()
    {
        let m = reg
            .get_manifest(repo, &cosign_tag(digest, CosignKind::Signature), &[])
            .await?;
        let walk = berth_oci::walk(&m.bytes, Some(&m.media_type))
            .map_err(|e| protocol(reg, repo, &d, e.to_string()))?;
        if let Kind::Image { layers, .. } = walk.kind {
            for l in layers {
                let payload = blob(reg, repo, &l.digest).await?;
                let annotations = l
                    .annotations
                    .as_ref()
                    .and_then(|a| a.as_object())
                    .map(|a| {
                        a.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                            .collect()
                    })
                    .unwrap_or_else(BTreeMap::new);
                out.simple.push(Signature {
                    payload,
                    annotations,
                });
            }
        }
    }
    let fallback = d.replacen(':', "-", 1);
    if reg.head_manifest(repo, &fallback).await?.is_some() {
        let m = reg.get_manifest(repo, &fallback, &[]).await?;
        if let Ok(w) = berth_oci::walk(&m.bytes, Some(&m.media_type))
            && let Kind::Index(children) = w.kind
        {
            let bundles = children
                .iter()
                .filter(|c| c.artifact_type.as_deref() == Some(SIGSTORE_BUNDLE));
            out.bundles += bundles.count();
        }
    }
    Ok(out)
}

fn protocol(reg: &Registry, repo: &str, d: &str, detail: String) -> ClientError {
    ClientError::Protocol {
        registry: reg.name().to_string(),
        what: format!("reading the signatures of {repo}@{d}"),
        detail,
    }
}

async fn blob(reg: &Registry, repo: &str, digest: &Digest) -> Result<Vec<u8>, ClientError> {
    let mut dl = reg.get_blob(repo, digest).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = dl.stream.next().await {
        let chunk = chunk.map_err(|e| protocol(reg, repo, &digest.to_string(), e.to_string()))?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_PAYLOAD {
            let m = format!("signature payload {digest} is larger than {MAX_PAYLOAD} bytes");
            return Err(protocol(reg, repo, &digest.to_string(), m));
        }
    }
    let actual = berth_oci::sha256_of(&bytes);
    if &actual != digest {
        let m = format!("signature payload {digest} has bytes of digest {actual}");
        return Err(protocol(reg, repo, &digest.to_string(), m));
    }
    Ok(bytes)
}

/// Remembered verdicts by (reference, digest), with when each was made.
type Verdicts = BTreeMap<(String, String), (Instant, Arc<Decision>)>;

/// A policy, a client for the registries images are pulled from, and remembered verdicts.
pub struct Gate {
    policy: Policy,
    client: Client,
    ttl: Duration,
    cache: Mutex<Verdicts>,
}

impl Gate {
    /// Verdicts are remembered for `ttl` (a tag can move; a digest cannot, but its
    /// signatures can be removed).
    pub fn new(policy: Policy, client: Client, ttl: Duration) -> Gate {
        Gate {
            policy,
            client,
            ttl,
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The remembered decision for `source` pulled from `target`, if still fresh.
    pub fn cached(&self, source: &Reference, target: &Reference) -> Option<Arc<Decision>> {
        let key = (source.to_string(), target.to_string());
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(&key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, d)| d.clone())
    }

    /// Decides `source` (the reference it was signed under) as pulled from `target`: the
    /// target's digest (resolved when it is a tag), the signatures stored beside it there.
    pub async fn check(
        &self,
        source: &Reference,
        target: &Reference,
    ) -> Result<Arc<Decision>, NodeError> {
        if let Some(d) = self.cached(source, target) {
            return Ok(d);
        }
        let digest = self.resolve(target).await?;
        let d = Arc::new(self.check_digest(source, target, &digest).await?);
        let key = (source.to_string(), target.to_string());
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (at, _)| at.elapsed() < self.ttl);
        cache.insert(key, (Instant::now(), d.clone()));
        Ok(d)
    }

    /// The manifest digest `target` names now.
    pub async fn resolve(&self, target: &Reference) -> Result<Digest, NodeError> {
        if let Some(d) = target.digest() {
            return Ok(d.clone());
        }
        let reg = self.client.registry(target.domain());
        let part = target.reference_part();
        if let Some(h) = reg.head_manifest(target.path(), &part).await?
            && let Some(d) = h.digest
        {
            return Ok(d);
        }
        Ok(reg.get_manifest(target.path(), &part, &[]).await?.digest)
    }

    /// Decides `source` with manifest `digest`, its signatures read from `target`'s repository.
    pub async fn check_digest(
        &self,
        source: &Reference,
        target: &Reference,
        digest: &Digest,
    ) -> Result<Decision, NodeError> {
        let reg = self.client.registry(target.domain());
        let sigs = fetch_signatures(&reg, target.path(), digest).await?;
        Ok(self.policy.decide(source, &digest.to_string(), &sigs))
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gate({})", self.policy.file)
    }
}

/// The decision for each `(source, target)` image under the policy file `policy`, its
/// signatures read from the target through a client with `configs` (`berth verify
/// --policy`). An image whose target cannot be read is `not verified`, with the error.
pub async fn check_all(
    policy: &Path,
    configs: berth_client::RegistryConfigs,
    images: Vec<(Reference, Reference)>,
) -> Result<Vec<Decision>, NodeError> {
    let gate = Gate::new(load_policy(policy)?, Client::new(configs)?, Duration::ZERO);
    let gate = &gate;
    let one = |(source, target): (Reference, Reference)| async move {
        match gate.check(&source, &target).await {
            Ok(d) => Decision::clone(&d),
            Err(e) => Decision {
                image: source.to_string(),
                digest: target.to_string(),
                scope: gate.policy.requirements(&source.to_string()).0.to_string(),
                verdict: berth_policy::Verdict::NotVerified {
                    what: format!("cannot read its signatures at {target}: {e}"),
                },
            },
        }
    };
    let stream = futures_util::stream::iter(images).map(one).buffered(8);
    Ok(stream.collect().await)
}
