//! A bundle served read-only as an OCI distribution registry. The bundle is first extracted
//! (verified) into a temporary OCI layout ([`Extracted`]); [`BundleContent`] indexes it (each
//! repository serves only the manifests and blobs its images reference) and is served by the
//! routes of `berth serve` ([`berth_registry::ReadOnlyContent`]), so both registries answer
//! every request alike: `/v2/`, manifests by tag or digest with `Accept` negotiation, blobs
//! with `Range`, `HEAD`, tags lists, the catalog, referrers and the error bodies.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use berth_client::Manifest;
use berth_reference::{Digest, Reference};
use berth_rewrite::{LocalRegistry, Rewriter};
use berth_transfer::manifest::{Parsed, parse};
use berth_userdata::UserData;
use bytes::Bytes;

use crate::{BundleError, Extracted};

/// Maps a source reference to the reference it is served as.
pub type NameFn = Box<dyn Fn(&Reference) -> Result<Reference, String> + Send + Sync>;

/// How images are named by the server.
pub struct ServeOptions {
    /// Maps an image's source reference to the reference it is served as (its path and tag
    /// or digest are used; its domain is ignored). Typically the rewrite function with the
    /// edge registry as `--local-registry`, so clients find images where the agent looks.
    pub name: NameFn,
}

#[derive(Default)]
struct Repo {
    tags: BTreeMap<String, Digest>,
    /// Media type and subject of each manifest.
    manifests: BTreeMap<Digest, (String, Option<Digest>)>,
    blobs: BTreeSet<Digest>,
}

/// An extracted bundle as a registry's read-only content.
pub struct BundleContent {
    root: PathBuf,
    repos: BTreeMap<String, Repo>,
    /// Bytes and number of the bundle's blobs.
    usage: (u64, u64),
    /// Kept so that the extracted layout lives as long as it is served.
    _bundle: Arc<Extracted>,
}

fn blob_path(root: &std::path::Path, d: &Digest) -> PathBuf {
    root.join("blobs")
        .join(d.algorithm().as_str())
        .join(d.hex())
}

fn index(
    bundle: &Arc<Extracted>,
    opts: &ServeOptions,
) -> Result<BTreeMap<String, Repo>, BundleError> {
    let root = bundle.layout();
    let name = root.display().to_string();
    let mut repos: BTreeMap<String, Repo> = BTreeMap::new();
    for img in &bundle.contents.head.manifest.images {
        let src = Reference::parse(&img.source).map_err(|e| {
            BundleError::damaged(&name, "bundle.json", format!("image `{}`: {e}", img.source))
        })?;
        let served = (opts.name)(&src)
            .map_err(|e| BundleError::usage(&name, format!("{}: {e}", img.source)))?;
        let repo = repos.entry(served.path().to_string()).or_default();
        let top = Digest::parse(&img.digest).map_err(|e| {
            BundleError::damaged(&name, "bundle.json", format!("image `{}`: {e}", img.source))
        })?;
        if let Some(t) = served.tag() {
            repo.tags.insert(t.to_string(), top.clone());
        }
        let mut stack = vec![(top, img.media_type.clone())];
        while let Some((d, mt)) = stack.pop() {
            if repo.manifests.contains_key(&d) {
                continue;
            }
            let bytes = std::fs::read(blob_path(root, &d))
                .map_err(|e| BundleError::io(&name, format!("reading manifest {d}"), e))?;
            let mt = berth_client::media_type_from_json(&bytes).unwrap_or(mt);
            let subject = subject_of(&bytes);
            let m = Manifest {
                bytes: Bytes::from(bytes),
                media_type: mt.clone(),
                digest: d.clone(),
            };
            match parse(&m, &name, &img.source)
                .map_err(|e| BundleError::damaged(&name, crate::blob_entry(&d), e.to_string()))?
            {
                Parsed::Index(children) => {
                    for c in children {
                        let cmt = c
                            .media_type
                            .clone()
                            .unwrap_or_else(|| berth_client::OCI_MANIFEST.into());
                        stack.push((c.digest, cmt));
                    }
                }
                Parsed::Image(blobs) => repo.blobs.extend(blobs.into_iter().map(|b| b.digest)),
            }
            repo.manifests.insert(d, (mt, subject));
        }
    }
    Ok(repos)
}

/// The `subject` of a manifest (referrers), if it names one.
fn subject_of(bytes: &[u8]) -> Option<Digest> {
    #[derive(serde::Deserialize)]
    struct Subject {
        digest: String,
    }
    #[derive(serde::Deserialize)]
    struct WithSubject {
        subject: Option<Subject>,
    }
    let w: WithSubject = serde_json::from_slice(bytes).ok()?;
    Digest::parse(&w.subject?.digest).ok()
}

impl BundleContent {
    /// Indexes `bundle`, naming its images with `opts`.
    pub fn new(bundle: Arc<Extracted>, opts: &ServeOptions) -> Result<BundleContent, BundleError> {
        let repos = index(&bundle, opts)?;
        let m = &bundle.contents.head.manifest;
        Ok(BundleContent {
            root: bundle.layout().to_path_buf(),
            repos,
            usage: (m.total_size, m.blobs.len() as u64),
            _bundle: bundle,
        })
    }
}

impl berth_registry::ReadOnlyContent for BundleContent {
    fn repositories(&self) -> Vec<String> {
        self.repos.keys().cloned().collect()
    }
    fn tags(&self, repo: &str) -> Option<Vec<String>> {
        Some(self.repos.get(repo)?.tags.keys().cloned().collect())
    }
    fn resolve_tag(&self, repo: &str, tag: &str) -> Option<Digest> {
        self.repos.get(repo)?.tags.get(tag).cloned()
    }
    fn manifest_type(&self, repo: &str, digest: &Digest) -> Option<String> {
        Some(self.repos.get(repo)?.manifests.get(digest)?.0.clone())
    }
    fn read_manifest(&self, digest: &Digest) -> std::io::Result<Vec<u8>> {
        std::fs::read(blob_path(&self.root, digest))
    }
    fn blob_size(&self, repo: &str, digest: &Digest) -> Option<u64> {
        let r = self.repos.get(repo)?;
        if !r.blobs.contains(digest) && !r.manifests.contains_key(digest) {
            return None;
        }
        std::fs::metadata(blob_path(&self.root, digest))
            .ok()
            .map(|m| m.len())
    }
    fn blob_file(&self, digest: &Digest) -> PathBuf {
        blob_path(&self.root, digest)
    }
    fn referrers(&self, repo: &str, subject: &Digest) -> Vec<(Digest, String)> {
        let Some(r) = self.repos.get(repo) else {
            return vec![];
        };
        r.manifests
            .iter()
            .filter(|(_, (_, s))| s.as_ref() == Some(subject))
            .map(|(d, (mt, _))| (d.clone(), mt.clone()))
            .collect()
    }
    fn usage(&self) -> (u64, u64) {
        self.usage
    }
}

impl ServeOptions {
    /// Images named as `rewriter` names them (with the edge registry in front, as the agent
    /// computes them: `<project>/<registry>/<path>`).
    pub fn rewriting(rewriter: berth_rewrite::Rewriter) -> ServeOptions {
        ServeOptions {
            name: Box::new(move |r: &Reference| rewriter.rewrite(r).map_err(|e| e.to_string())),
        }
    }

    /// Images named as the agent finds them on the edge registry: the rewrite function of
    /// `user_data` with the edge registry's `project` in front (only the path counts: the
    /// host is whatever clients use to reach the server).
    pub fn edge(user_data: Option<&UserData>, project: &str) -> Result<ServeOptions, BundleError> {
        let local = LocalRegistry::new("localhost", Some(project))
            .map_err(|e| BundleError::usage("serve", format!("project `{project}`: {e}")))?;
        Ok(ServeOptions::rewriting(Rewriter::new(
            user_data,
            Some(local),
        )))
    }

    /// `(source, repository)` of each image of `bundle` that these options name.
    pub fn served(&self, bundle: &Extracted) -> Vec<(String, String)> {
        let images = &bundle.contents.head.manifest.images;
        let name = |source: &str| (self.name)(&Reference::parse(source).ok()?).ok();
        let named = images.iter().filter_map(|i| Some((i, name(&i.source)?)));
        named
            .map(|(i, t)| (i.source.clone(), t.path().to_string()))
            .collect()
    }
}

/// The read-only registry API over `bundle`, as a router (to serve it with TLS, hand it to
/// a TLS-capable server such as `berth_registry::serve_app`).
pub fn router(bundle: Arc<Extracted>, opts: ServeOptions) -> Result<axum::Router, BundleError> {
    let content = BundleContent::new(bundle, &opts)?;
    Ok(berth_registry::router(berth_registry::State::read_only(
        Arc::new(content),
        false,
    )))
}

/// Serves `bundle` on `listener` (over TLS with `tls`) until `shutdown` completes, with the
/// connection handling of `berth serve`.
pub async fn serve(
    bundle: Arc<Extracted>,
    listener: tokio::net::TcpListener,
    opts: ServeOptions,
    tls: Option<Arc<berth_registry::tls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), BundleError> {
    let app = router(bundle, opts)?;
    berth_registry::serve_app(listener, tls, app, shutdown).await;
    Ok(())
}

/// A bundle's registry bound to its address (over TLS when given), not serving yet.
pub struct BundleServer {
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<Arc<berth_registry::tls::ServerConfig>>,
    /// `(source, repository)` of each image served.
    pub served: Vec<(String, String)>,
}

impl BundleServer {
    /// Indexes `bundle` with `opts` and binds `addr`.
    pub async fn bind(
        bundle: Arc<Extracted>,
        addr: std::net::SocketAddr,
        opts: ServeOptions,
        tls: Option<Arc<berth_registry::tls::ServerConfig>>,
    ) -> Result<BundleServer, BundleError> {
        let served = opts.served(&bundle);
        let app = router(bundle, opts)?;
        let listener = listen(addr).await?;
        Ok(BundleServer {
            listener,
            app,
            tls,
            served,
        })
    }

    /// `http[s]://ADDR/v2/`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let addr = self.listener.local_addr().map(|a| a.to_string());
        format!("{scheme}://{}/v2/", addr.unwrap_or_default())
    }

    /// Serves until `shutdown` completes, with the connection handling of `berth serve`.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        berth_registry::serve_app(self.listener, self.tls, self.app, shutdown).await;
    }
}

/// Binds `addr` for [`serve`].
pub async fn listen(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, BundleError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| BundleError::io("serve", format!("cannot listen on {addr}"), e))
}
