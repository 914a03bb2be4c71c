//! Referrers: `repos/<name>/_referrers/<alg>/<hex>/<alg>-<hex>`, a link per manifest whose
//! `subject` is `<alg>:<hex>`.

use std::fs;
use std::path::PathBuf;

use berth_reference::Digest;

use crate::{Result, Store, digest_rel};

impl Store {
    fn referrers_dir(&self, repo: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join("_referrers")
            .join(digest_rel(subject))
    }

    /// Records manifest `digest` of `repo` as a referrer of `subject`.
    pub(crate) fn link_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        digest: &Digest,
    ) -> Result<()> {
        let p = self.referrers_dir(repo, subject).join(format!(
            "{}-{}",
            digest.algorithm().as_str(),
            digest.hex()
        ));
        self.create_link(&p)
    }

    /// Manifests of `repo` whose subject is `subject`, with their media types.
    pub fn referrers(&self, repo: &str, subject: &Digest) -> Vec<(Digest, String)> {
        let mut out = vec![];
        for e in fs::read_dir(self.referrers_dir(repo, subject))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((alg, hex)) = name.split_once('-') else {
                continue;
            };
            let Ok(d) = Digest::parse(&format!("{alg}:{hex}")) else {
                continue;
            };
            if let Some(t) = self.manifest_type(repo, &d) {
                out.push((d, t));
            }
        }
        out.sort();
        out
    }
}
