//! Node registry configuration, derived from the user data and the optional edge registry:
//! containerd `hosts.toml` files, the CRI `config.toml` drop-in, and the k3s/RKE2
//! `registries.yaml`. These redirect pulls on the node itself (what Palette users write by
//! hand when `imageRedirectWebhook.enable` is false), so the webhook's switch is not
//! consulted here.
//!
//! [`plan`] computes, per upstream registry host, the mirrors a pull tries in order and the
//! path rules at each (`<upstream path prefix>` → `<mirror path prefix>`), from the same rules
//! as `berth_rewrite::Rewriter` (prepend, mapping rules, edge registry); every profile image is
//! then checked against the rewrite function itself, and an image a format cannot route to
//! exactly its rewritten name becomes a note (its pods rely on the webhook).
//!
//! **containerd semantics** (1.5 and later, 1.6 included; `docs/node.md`): the `[host]`
//! entries are tried in order, then `server`; to forbid falling back to the internet the last
//! mirror *is* the `server`. A mirror under a path prefix is written as
//! `https://<mirror>/v2/<prefix>` with `override_path = true`, so containerd requests
//! `/v2/<prefix>/<repository>/manifests/<tag>`. hosts.toml can only route a whole upstream
//! host, so a mapping rule on a path (`gcr.io/team` → ...) cannot be expressed there; the k3s
//! `rewrite` regexes can. With an edge registry, the user-data registries themselves get a
//! hosts.toml too (the edge registry first, then the registry), so pulls naming them use the
//! edge registry's cache. hosts.toml carries credentials only when asked
//! ([`HostsOptions::credentials`]: a `header` `Authorization`, for `ctr` and other clients that
//! do not read the CRI config); otherwise they come from the kubelet credential provider or
//! the CRI `registry.configs` drop-in ([`cri_drop_in`]).
//!
//! One module per file format: [`plan`] (the plan itself), `hosts_toml`, `cri` (the drop-in
//! with credentials) and `k3s` (`registries.yaml`).

use std::path::PathBuf;

mod cri;
mod hosts_toml;
mod k3s;
mod plan;

pub use cri::cri_drop_in;
pub use hosts_toml::{HostsOptions, containerd_hosts, containerd_hosts_with};
pub use k3s::{k3s_registries, rewrite_regex};
use plan::join;
pub use plan::{
    EdgeRegistry, HostSettings, Mirror, PathRule, Plan, Upstream, plan, upstream_server,
};

/// A file to write: where, what, and whether it holds a password (mode 0600, else 0644).
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub contents: String,
    pub secret: bool,
}

impl std::fmt::Debug for RenderedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RenderedFile");
        d.field("path", &self.path);
        if self.secret {
            d.field("contents", &berth_secret::REDACTED);
        } else {
            d.field("contents", &self.contents);
        }
        d.finish()
    }
}

/// Rendered files and what they cannot express.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub files: Vec<RenderedFile>,
    pub notes: Vec<String>,
}

/// `contents` of a rendered file with every password of the plan (quoted, or inside a
/// `Basic` header) replaced by `<redacted>`, for printing.
pub fn redact(contents: &str, plan: &Plan) -> String {
    let mut text = contents.to_string();
    for h in plan.hosts.values().filter(|h| !h.password.is_empty()) {
        text = text.replace(&h.basic_auth(), "<redacted>");
        let quoted = serde_json::to_string(h.password.expose()).unwrap_or_default();
        text = text.replace(&quoted, "\"<redacted>\"");
    }
    text
}
