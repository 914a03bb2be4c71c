//! `verify`: is every image at its target?

use std::sync::Arc;

use berth_client::Client;
use berth_ends::TransferError;
use futures_util::StreamExt;
use serde::Serialize;

use crate::engine::{CopyOptions, Ends, walk};
use crate::{Endpoint, OciLayout, RegistryEnd};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyStatus {
    Present,
    Missing,
    Incomplete,
}

/// The state of one target, by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyResult {
    pub source: String,
    pub target: String,
    pub status: VerifyStatus,
    /// What is missing or wrong (manifests, blobs, a different digest), or why it could not
    /// be checked.
    pub missing: Vec<String>,
}

/// Checks targets: the tag must resolve (to the source's digest when the source can be
/// read), every child manifest of an index must be there, and with `deep` every blob.
pub async fn verify(
    pairs: Vec<(Endpoint, Endpoint)>,
    opts: &CopyOptions,
    deep: bool,
) -> Vec<VerifyResult> {
    let (src_client, dst_client) = match (
        Client::new(opts.source_registries.clone()),
        Client::new(opts.destination_registries.clone()),
    ) {
        (Ok(s), Ok(d)) => (s.with_retry(opts.retry), d.with_retry(opts.retry)),
        (Err(e), _) | (_, Err(e)) => {
            return pairs
                .iter()
                .map(|(s, d)| VerifyResult {
                    source: s.to_string(),
                    target: d.to_string(),
                    status: VerifyStatus::Missing,
                    missing: vec![e.to_string()],
                })
                .collect();
        }
    };
    let jobs = opts.jobs.max(1);
    futures_util::stream::iter(pairs)
        .map(|(src, dst)| {
            let (sc, dc) = (src_client.clone(), dst_client.clone());
            async move {
                let (status, missing) = verify_one(&sc, &dc, &src, &dst, deep).await;
                VerifyResult {
                    source: src.to_string(),
                    target: dst.to_string(),
                    status,
                    missing,
                }
            }
        })
        .buffered(jobs)
        .collect()
        .await
}

async fn verify_one(
    sc: &Client,
    dc: &Client,
    src: &Endpoint,
    dst: &Endpoint,
    deep: bool,
) -> (VerifyStatus, Vec<String>) {
    let open = |client: &Client, e: &Endpoint| -> Result<Ends, TransferError> {
        Ok(match e {
            Endpoint::Registry(r) => {
                let end = RegistryEnd::new(client.registry(r.domain()), r.path());
                (Arc::new(end.clone()), Arc::new(end))
            }
            Endpoint::Layout { dir, .. } => {
                let l = OciLayout::open(dir.clone())?;
                (Arc::new(l.clone()), Arc::new(l))
            }
            Endpoint::Ends {
                source: Some(s),
                destination: Some(d),
                ..
            } => (s.clone(), d.clone()),
            Endpoint::Ends { name, .. } => {
                return Err(TransferError::Usage {
                    name: name.clone(),
                    detail: "cannot be checked: it is not readable and writable".into(),
                });
            }
        })
    };
    let (target_src, target_dst) = match open(dc, dst) {
        Ok(ends) => ends,
        Err(e) => return (VerifyStatus::Missing, vec![e.to_string()]),
    };
    // The digest the target should have, when the source can be read.
    let expected = match open(sc, src) {
        Ok((s, _)) => match s.get_manifest(&src.reference()).await {
            Ok(Some(m)) => Some(m.digest),
            _ => None,
        },
        Err(_) => None,
    };
    let target_ref = match (&expected, dst) {
        (Some(d), _) => dst.target_reference(d),
        (None, Endpoint::Registry(r)) if r.tag().is_none() => {
            r.digest().map(|d| d.to_string()).unwrap_or_default()
        }
        (None, _) => dst.reference(),
    };
    let top = match target_src.get_manifest(&target_ref).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            return (
                VerifyStatus::Missing,
                vec![format!("{dst}: manifest {target_ref} not found")],
            );
        }
        Err(e) => return (VerifyStatus::Missing, vec![e.to_string()]),
    };
    let mut missing = Vec::new();
    if let Some(exp) = &expected
        && *exp != top.digest
    {
        missing.push(format!(
            "{dst}: the tag points to {}, the source has {exp}",
            top.digest
        ));
    }
    match walk(target_src.as_ref(), target_dst.as_ref(), &top, &target_ref).await {
        Ok((_, blobs)) => {
            if deep {
                for b in blobs {
                    match target_dst.has_blob(&b.digest).await {
                        Ok(true) => {}
                        Ok(false) => missing.push(format!("blob {}", b.digest)),
                        Err(e) => missing.push(format!("blob {}: {e}", b.digest)),
                    }
                }
            }
        }
        Err(e) => missing.push(e.to_string()),
    }
    if missing.is_empty() {
        (VerifyStatus::Present, missing)
    } else {
        (VerifyStatus::Incomplete, missing)
    }
}
