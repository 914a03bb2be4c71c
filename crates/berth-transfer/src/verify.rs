//! `verify`: is every image at its target, and is it the source's image?

use std::sync::Arc;

use berth_client::Client;
use berth_ends::TransferError;
use berth_plan::Finding;
use berth_reference::Digest;
use futures_util::StreamExt;
use serde::Serialize;

use crate::attached::missing_attached;
use crate::engine::{CopyOptions, Ends, walk};
use crate::{Endpoint, OciLayout, RegistryEnd};

/// The state of one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyStatus {
    /// The tag resolves, every child manifest (and with `deep` every blob) is there.
    Present,
    /// The target does not have the image.
    Missing,
    /// The tag resolves, but child manifests or blobs are missing.
    Incomplete,
    /// The tag points to another manifest than the source's.
    Differs,
    /// Only reachable through the registry's upstream (the edge registry's pull-through):
    /// not stored there, so it is gone when the upstream is.
    UpstreamOnly,
    /// The target could not be checked (unreachable, TLS, credentials): see `error`.
    Error,
}

impl VerifyStatus {
    /// Whether the image is where it should be.
    pub fn is_ok(self) -> bool {
        self == VerifyStatus::Present
    }

    /// What `mirror` does about this state, if it can.
    pub fn fix(self) -> Option<&'static str> {
        match self {
            VerifyStatus::Differs => Some("a tag that points to another image is overwritten"),
            VerifyStatus::UpstreamOnly => Some("content the edge registry only proxies is stored"),
            VerifyStatus::Missing | VerifyStatus::Incomplete => Some("what is missing is copied"),
            VerifyStatus::Present | VerifyStatus::Error => None,
        }
    }
}

impl VerifyResult {
    /// One line on what is wrong (empty when nothing is).
    pub fn detail(&self) -> String {
        match (self.status, &self.found, &self.expected, &self.error) {
            (VerifyStatus::Differs, Some(found), Some(expected), _) => {
                format!("the target has {found}, the source has {expected}")
            }
            (VerifyStatus::UpstreamOnly, ..) => {
                "only reachable through the registry's upstream: not stored there".to_string()
            }
            (VerifyStatus::Error, _, _, Some(e)) => e.clone(),
            _ => self.missing.join("; "),
        }
    }
}

/// What a verify run found: each target's state and the plan's findings (the JSON of
/// `berth verify`); its `Display` is the summary for the end of the output.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub images: Vec<VerifyResult>,
    /// The plan's redirected charts (`expected` and `found` are the digests of the chart
    /// layer, the packaged `.tgz`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<VerifyResult>,
    pub findings: Vec<Finding>,
    /// Blobs were checked.
    #[serde(skip)]
    pub deep: bool,
}

impl VerifyReport {
    /// The images' results, then the charts'.
    pub fn all(&self) -> impl Iterator<Item = &VerifyResult> {
        self.images.iter().chain(&self.charts)
    }

    /// Targets (images and charts) that are not where they should be.
    pub fn missing(&self) -> usize {
        let all = self.images.iter().chain(&self.charts);
        all.filter(|r| !r.status.is_ok()).count()
    }

    /// Targets not compared with their source.
    pub fn uncompared(&self) -> usize {
        self.images.iter().filter(|r| !r.compared).count()
    }

    /// Whether the run fails: something missing, or not compared.
    pub fn failed(&self) -> bool {
        self.missing() > 0 || self.uncompared() > 0
    }
}

/// Lines, each ending in a newline: the targets not compared with their source, how many
/// are present, and what `mirror` would fix.
impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in self.images.iter().filter(|r| !r.compared) {
            let why = r.source_error.as_deref();
            let why = why.unwrap_or("the source could not be read");
            writeln!(
                f,
                "warning: {}: not compared with its source: {why}",
                r.target
            )?;
        }
        if self.uncompared() > 0 {
            writeln!(
                f,
                "{} image(s) were not compared with their source, so a target holding another image passes unnoticed; for a plain-HTTP source give --src-tls-verify=false, for a private CA --src-cert-dir DIR, for credentials --src-creds or --src-authfile",
                self.uncompared()
            )?;
        }
        let (n, deep) = (
            self.images.len(),
            if self.deep { " (blobs checked)" } else { "" },
        );
        let bad = |r: &&VerifyResult| !r.status.is_ok();
        let present = n - self.images.iter().filter(bad).count();
        writeln!(
            f,
            "{present} of {n} image(s) present at their targets{deep}"
        )?;
        if !self.charts.is_empty() {
            for r in self.charts.iter().filter(bad) {
                let status = serde_json::to_value(r.status).unwrap_or_default();
                let detail = r.detail();
                let status = status.as_str().unwrap_or("missing");
                writeln!(f, "chart {}: {status} at {}: {detail}", r.source, r.target)?;
            }
            let n = self.charts.len();
            let present = n - self.charts.iter().filter(bad).count();
            writeln!(f, "{present} of {n} chart(s) present at their targets")?;
        }
        let mut fixes: Vec<&str> = self.images.iter().filter_map(|r| r.status.fix()).collect();
        fixes.sort_unstable();
        fixes.dedup();
        if self.missing() > 0 && !fixes.is_empty() {
            writeln!(f, "mirror fixes this: {}", fixes.join("; "))?;
        }
        Ok(())
    }
}

/// The state of one target, by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyResult {
    pub source: String,
    pub target: String,
    pub status: VerifyStatus,
    /// What is missing or wrong (manifests, blobs).
    pub missing: Vec<String>,
    /// The source's digest, when the source could be read.
    pub expected: Option<Digest>,
    /// The digest the target's tag resolves to, when it does.
    pub found: Option<Digest>,
    /// Whether the target was compared with the source. When not, `source_error` says why,
    /// and a `present` only means "there", not "the same image".
    pub compared: bool,
    /// Why the source could not be read, if it could not.
    pub source_error: Option<String>,
    /// Why the target could not be checked (status `error`).
    pub error: Option<String>,
}

/// Checks targets: the tag must resolve (to the source's digest when the source can be
/// read), every child manifest of an index must be there, and with `deep` every blob.
/// Targets are read as stored (`Cache-Control: only-if-cached`); one that a caching registry
/// would only fetch from its upstream is [`VerifyStatus::UpstreamOnly`].
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
                    status: VerifyStatus::Error,
                    missing: Vec::new(),
                    expected: None,
                    found: None,
                    compared: false,
                    source_error: None,
                    error: Some(e.to_string()),
                })
                .collect();
        }
    };
    let clients = Clients {
        source: src_client,
        target_local: dst_client.clone().local_only(),
        target: dst_client.no_store(),
    };
    let jobs = opts.jobs.max(1);
    futures_util::stream::iter(pairs)
        .map(|(src, dst)| {
            let clients = &clients;
            async move { verify_one(clients, &src, &dst, deep, opts.referrers).await }
        })
        .buffered(jobs)
        .collect()
        .await
}

struct Clients {
    source: Client,
    /// The target read as stored.
    target_local: Client,
    /// The target read as any client would (through a cache's upstream), asking it to store
    /// nothing of the answer (`Cache-Control: no-store`): verify leaves the target as it was.
    target: Client,
}

fn open(client: &Client, e: &Endpoint) -> Result<Ends, TransferError> {
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
}

async fn verify_one(
    c: &Clients,
    src: &Endpoint,
    dst: &Endpoint,
    deep: bool,
    referrers: bool,
) -> VerifyResult {
    let mut r = VerifyResult {
        source: src.to_string(),
        target: dst.to_string(),
        status: VerifyStatus::Missing,
        missing: Vec::new(),
        expected: None,
        found: None,
        compared: false,
        source_error: None,
        error: None,
    };
    // The digest the target should have, when the source can be read.
    let mut source = None;
    match open(&c.source, src) {
        Ok((s, _)) => match s.get_manifest(&src.reference()).await {
            Ok(Some(m)) => {
                r.expected = Some(m.digest.clone());
                source = Some((s, m));
            }
            Ok(None) => r.source_error = Some(format!("{src}: not found at the source")),
            Err(e) => r.source_error = Some(e.to_string()),
        },
        Err(e) => r.source_error = Some(e.to_string()),
    }
    r.compared = r.expected.is_some();
    let (target_src, target_dst) = match open(&c.target_local, dst) {
        Ok(ends) => ends,
        Err(e) => {
            r.status = VerifyStatus::Error;
            r.error = Some(e.to_string());
            return r;
        }
    };
    let target_ref = match (&r.expected, dst) {
        (Some(d), _) => dst.target_reference(d),
        (None, Endpoint::Registry(reg)) if reg.tag().is_none() => {
            reg.digest().map(|d| d.to_string()).unwrap_or_default()
        }
        (None, _) => dst.reference(),
    };
    let top = match target_src.get_manifest(&target_ref).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            r.status = if upstream_has(c, dst, &target_ref).await {
                VerifyStatus::UpstreamOnly
            } else {
                VerifyStatus::Missing
            };
            r.missing
                .push(format!("{dst}: manifest {target_ref} not found"));
            return r;
        }
        Err(e) => {
            r.status = VerifyStatus::Error;
            r.error = Some(e.to_string());
            return r;
        }
    };
    r.found = Some(top.digest.clone());
    if let Some(exp) = &r.expected
        && *exp != top.digest
    {
        r.status = VerifyStatus::Differs;
        return r;
    }
    match walk(target_src.as_ref(), target_dst.as_ref(), &top, &target_ref).await {
        Ok((_, blobs)) => {
            if deep {
                for b in blobs {
                    match target_dst.has_blob(&b.digest).await {
                        Ok(true) => {}
                        Ok(false) => r.missing.push(format!("blob {}", b.digest)),
                        Err(e) => r.missing.push(format!("blob {}: {e}", b.digest)),
                    }
                }
            }
        }
        Err(e) => r.missing.push(e.to_string()),
    }
    // What is attached at the source must be at the target too.
    if let Some((s, m)) = source.filter(|_| referrers) {
        match missing_attached(s.as_ref(), target_dst.as_ref(), &m).await {
            Ok(lines) => r.missing.extend(lines),
            Err(e) => r.missing.push(format!("attached artifacts: {e}")),
        }
    }
    r.status = if r.missing.is_empty() {
        VerifyStatus::Present
    } else {
        VerifyStatus::Incomplete
    };
    r
}

/// Whether a registry target that does not store `reference` would serve it through its
/// upstream (a pull-through cache). Asked with `Cache-Control: no-store`, so the cache does
/// not keep what it fetched to answer.
async fn upstream_has(c: &Clients, dst: &Endpoint, reference: &str) -> bool {
    let Endpoint::Registry(reg) = dst else {
        return false;
    };
    let end = RegistryEnd::new(c.target.registry(reg.domain()), reg.path());
    matches!(
        berth_ends::Destination::manifest_digest(&end, reference).await,
        Ok(Some(_))
    )
}

/// The `berth mirror` command line that copies what `berth verify` found missing: verify's
/// own arguments (`args`, without the program name) with the verb changed and `--deep`
/// dropped, every credential shown as `USER:PASS` (never the secret itself).
pub fn mirror_command(args: &[String]) -> String {
    const CREDS: [&str; 3] = ["--src-creds", "--edge-creds", "--dest-creds"];
    let verb = args.iter().position(|a| a == "verify");
    let mut cmd = vec!["berth".to_string()];
    for (i, a) in args.iter().enumerate().filter(|(_, a)| *a != "--deep") {
        let flag = a.split('=').next().unwrap_or(a);
        let after_creds = i > 0 && CREDS.contains(&args[i - 1].as_str());
        cmd.push(match () {
            _ if Some(i) == verb => "mirror".into(),
            _ if after_creds => "USER:PASS".into(),
            _ if CREDS.contains(&flag) && flag != a => format!("{flag}=USER:PASS"),
            _ => a.clone(),
        });
    }
    cmd.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: VerifyStatus, compared: bool) -> VerifyResult {
        VerifyResult {
            source: "s".into(),
            target: "t".into(),
            status,
            missing: Vec::new(),
            expected: None,
            found: None,
            compared,
            source_error: None,
            error: None,
        }
    }

    #[test]
    fn the_report_counts_and_serializes_images_and_findings() {
        let present = result(VerifyStatus::Present, true);
        let r = VerifyReport {
            images: vec![present, result(VerifyStatus::Missing, true)],
            charts: Vec::new(),
            findings: Vec::new(),
            deep: true,
        };
        assert_eq!((r.missing(), r.uncompared(), r.failed()), (1, 0, true));
        let summary = r.to_string();
        assert!(summary.contains("1 of 2 image(s) present at their targets (blobs checked)"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["images"].as_array().unwrap().len(), 2);
        assert!(v["findings"].as_array().unwrap().is_empty() && v.get("deep").is_none());
        let unchecked = VerifyReport {
            images: vec![result(VerifyStatus::Present, false)],
            ..r
        };
        assert!(unchecked.failed() && unchecked.to_string().contains("not compared"));
    }

    #[test]
    fn mirror_command_hides_credentials_and_drops_deep() {
        let args: Vec<String> = [
            "-q",
            "verify",
            "--deep",
            "--profile",
            "p.yaml",
            "--src-creds",
            "alice:s3cret",
            "--edge-creds=bob:hunter2",
            "--user-data",
            "ud.yaml",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            super::mirror_command(&args),
            "berth -q mirror --profile p.yaml --src-creds USER:PASS --edge-creds=USER:PASS --user-data ud.yaml"
        );
    }
}
