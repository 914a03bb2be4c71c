//! Artifacts attached to a manifest: the OCI 1.1 referrers API, the referrers tag schema's
//! fallback index where a registry lacks the API, and cosign's `sha256-<hex>.sig` tags.

use std::collections::BTreeSet;

use berth_oci::Descriptor;
use berth_oci::referrers::{
    Attached, CosignKind, cosign_tag, fallback_tag, merge_fallback_index, parse_index,
};

use super::*;

/// How a registry lists the referrers of a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferrersListing {
    /// The referrers API: the registry lists them itself.
    Api,
    /// No referrers API (it answers 404): the referrers tag schema's index, kept by pushers.
    FallbackTag,
}

impl Registry {
    /// `GET /v2/REPO/referrers/DIGEST`: the descriptors of the manifests whose `subject` is
    /// `subject` (every page, following `Link`); `None` when the registry has no referrers
    /// API (it answers 404, as Distribution 2.8 does).
    pub async fn referrers_api(
        &self,
        repo: &str,
        subject: &Digest,
    ) -> Result<Option<Vec<Descriptor>>, ClientError> {
        let ctx = Ctx::pull(repo, format!("listing the referrers of {repo}@{subject}"));
        let first = format!("v2/{repo}/referrers/{subject}");
        self.get_pages(&ctx, first, 1000, Some(OCI_INDEX), |body| {
            parse_index(body).map_err(|e| format!("the referrers answer is not an OCI index: {e}"))
        })
        .await
    }

    /// The descriptors listed in the fallback tag's index of `subject`; `None` when there is
    /// no such tag.
    async fn fallback_index(
        &self,
        repo: &str,
        subject: &Digest,
    ) -> Result<Option<(Manifest, Vec<Descriptor>)>, ClientError> {
        let tag = fallback_tag(subject);
        let m = match self.get_manifest(repo, &tag, &[OCI_INDEX]).await {
            Ok(m) => m,
            Err(ClientError::ManifestNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let list = parse_index(&m.bytes).map_err(|e| ClientError::Protocol {
            registry: self.name.clone(),
            what: format!("reading the referrers tag {repo}:{tag}"),
            detail: format!("not an OCI index: {e}"),
        })?;
        Ok(Some((m, list)))
    }

    /// What is attached to `subject` in `repo`: its referrers (the referrers API's answer,
    /// or where there is none the fallback tag's index, read when `tags` has that tag) and
    /// its cosign tags that `tags` (the repository's tags) holds. Also says how the
    /// registry lists referrers.
    pub async fn attached(
        &self,
        repo: &str,
        subject: &Digest,
        tags: &BTreeSet<String>,
    ) -> Result<(Attached, ReferrersListing), ClientError> {
        let (referrers, listing) = match self.referrers_api(repo, subject).await? {
            Some(r) => (r, ReferrersListing::Api),
            None if tags.contains(&fallback_tag(subject)) => (
                self.fallback_index(repo, subject)
                    .await?
                    .map(|(_, l)| l)
                    .unwrap_or_default(),
                ReferrersListing::FallbackTag,
            ),
            None => (Vec::new(), ReferrersListing::FallbackTag),
        };
        let tags = CosignKind::ALL
            .iter()
            .map(|k| cosign_tag(subject, *k))
            .filter(|t| tags.contains(t))
            .collect();
        Ok((Attached { referrers, tags }, listing))
    }

    /// Lists `referrer` (pushed already) among the referrers of `subject` where `listing`
    /// says the pusher must: on a registry without the referrers API, the fallback tag's
    /// index is read, `referrer` added (every other entry kept as it was) and the index
    /// pushed back; nothing when it is listed already. Returns whether it pushed.
    pub async fn list_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        referrer: &Descriptor,
        listing: ReferrersListing,
    ) -> Result<bool, ClientError> {
        if listing == ReferrersListing::Api {
            return Ok(false);
        }
        let tag = fallback_tag(subject);
        let existing = self.fallback_index(repo, subject).await?;
        let merged = merge_fallback_index(existing.as_ref().map(|(m, _)| &m.bytes[..]), referrer)
            .map_err(|e| ClientError::Protocol {
            registry: self.name.clone(),
            what: format!(
                "adding {} to the referrers tag {repo}:{tag}",
                referrer.digest
            ),
            detail: format!("the tag holds something else than an OCI index: {e}"),
        })?;
        match merged {
            None => Ok(false),
            Some(bytes) => {
                self.put_manifest(repo, &tag, Bytes::from(bytes), OCI_INDEX)
                    .await?;
                Ok(true)
            }
        }
    }
}
