//! The node's registry configuration, rendered by berth-node from the same user data and
//! edge registry as the plan: containerd `hosts.toml` (and CA files), the k3s/RKE2
//! `registries.yaml`, the containerd 1.x CRI drop-in.

use std::path::PathBuf;

use berth_node::registries::{self, EdgeRegistry, RenderedFile};
use berth_plan::EdgeAccess;
use berth_reference::Reference;
use berth_userdata::UserData;

use crate::AgentError;

/// Which files to render.
#[derive(Debug, Clone, Default)]
pub struct NodeFiles {
    /// containerd's registry `config_path` (e.g. /etc/containerd/certs.d).
    pub hosts_dir: Option<PathBuf>,
    /// Put each registry's credentials into the hosts.toml entries that reach it.
    pub hosts_credentials: bool,
    /// The k3s/RKE2 registries.yaml.
    pub k3s_registries: Option<PathBuf>,
    /// The containerd 1.x CRI drop-in (with `hosts_dir`).
    pub cri_config: Option<PathBuf>,
    /// Let pulls fall back to the upstream registries after the mirrors.
    pub fallback_upstream: bool,
}

impl NodeFiles {
    pub fn any(&self) -> bool {
        self.hosts_dir.is_some() || self.k3s_registries.is_some() || self.cri_config.is_some()
    }
}

/// Rendered files (not written yet), what they cannot express, and the plan they came
/// from (for [`registries::redact`]).
#[derive(Debug)]
pub struct RenderedNodeFiles {
    pub files: Vec<RenderedFile>,
    /// Sorted, each once.
    pub notes: Vec<String>,
    pub plan: registries::Plan,
}

impl RenderedNodeFiles {
    /// Writes every file atomically; stops at the first failure.
    pub fn write(&self) -> Result<(), AgentError> {
        Ok(berth_node::files::write_all(&self.files)?)
    }

    /// Every file as `==> PATH <==` and its contents, passwords shown as `<redacted>` in
    /// the files that hold them (what a dry run prints).
    pub fn preview(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            let text = match f.secret {
                true => registries::redact(&f.contents, &self.plan),
                false => f.contents.clone(),
            };
            out.push_str(&format!("==> {} <==\n{text}", f.path.display()));
        }
        out
    }
}

/// berth-node's view of the edge registry: its CAs as one PEM bundle.
pub fn node_edge(edge: &EdgeAccess) -> EdgeRegistry {
    let ca_pem = (!edge.ca_pems.is_empty()).then(|| {
        edge.ca_pems
            .iter()
            .map(|p| {
                if p.ends_with('\n') {
                    p.clone()
                } else {
                    format!("{p}\n")
                }
            })
            .collect()
    });
    EdgeRegistry {
        local: edge.registry.local().clone(),
        plain_http: edge.registry.plain_http(),
        ca_pem,
        insecure: edge.insecure,
        login: edge.login.clone(),
    }
}

/// Renders the files `which` asks for, for these profile images (their source references).
pub fn node_files(
    user_data: &UserData,
    edge: Option<&EdgeAccess>,
    images: &[Reference],
    which: &NodeFiles,
) -> Result<RenderedNodeFiles, AgentError> {
    let edge = edge.map(node_edge);
    let plan = registries::plan(user_data, edge.as_ref(), images, which.fallback_upstream)?;
    let mut files = Vec::new();
    let mut notes = Vec::new();
    if let Some(dir) = &which.hosts_dir {
        let opts = registries::HostsOptions {
            credentials: which.hosts_credentials,
        };
        let r = registries::containerd_hosts_with(&plan, dir, opts);
        files.extend(r.files);
        notes.extend(r.notes);
    }
    if let Some(path) = &which.k3s_registries {
        let r = registries::k3s_registries(&plan, path);
        files.extend(r.files);
        notes.extend(r.notes);
    }
    if let (Some(path), Some(dir)) = (&which.cri_config, &which.hosts_dir) {
        files.push(registries::cri_drop_in(&plan, dir, path, true));
    }
    notes.sort();
    notes.dedup();
    Ok(RenderedNodeFiles { files, notes, plan })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_plan::EdgeRegistry as Address;

    #[test]
    fn the_edge_as_the_node_sees_it() {
        let mut e = EdgeAccess::new(Address::parse("http://edge:5000/p", None).unwrap());
        let n = node_edge(&e);
        assert!(n.plain_http && !n.insecure && n.ca_pem.is_none());
        assert_eq!(n.local.prefix(), "edge:5000/p");
        e.ca_pems = vec!["A".into(), "B\n".into()];
        e.insecure = true;
        let n = node_edge(&e);
        assert_eq!(n.ca_pem.as_deref(), Some("A\nB\n"));
        assert!(n.insecure && n.login.is_none());
        e.login = Some(berth_plan::Login::new("edge-user", "edge-pw"));
        e.ca_pems.clear(); // "A" and "B" are no certificates to render
        let ud = UserData::parse(
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: ext.example.com/mirror\n    username: u\n    password: hunter2\n",
            "ud.yaml",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let which = |credentials| NodeFiles {
            hosts_dir: Some(dir.path().to_path_buf()),
            hosts_credentials: credentials,
            ..NodeFiles::default()
        };
        let images = [Reference::parse("quay.io/a/b:1").unwrap()];
        // base64("edge-user:edge-pw")
        let header = "Basic ZWRnZS11c2VyOmVkZ2UtcHc=";
        let quay = |r: RenderedNodeFiles| {
            let f = r
                .files
                .into_iter()
                .find(|f| f.path.ends_with("quay.io/hosts.toml"));
            f.expect("quay.io's hosts.toml").contents
        };
        let with = quay(node_files(&ud, Some(&e), &images, &which(true)).unwrap());
        assert!(
            with.contains("edge:5000") && with.contains(header),
            "{with}"
        );
        let without = quay(node_files(&ud, Some(&e), &images, &which(false)).unwrap());
        assert!(!without.contains("Authorization"), "{without}");
    }

    #[test]
    fn renders_only_what_is_asked() {
        let ud = UserData::parse(
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: ext.example.com/mirror\n    username: u\n    password: hunter2\n",
            "ud.yaml",
        )
        .unwrap();
        let images = [Reference::parse("quay.io/a/b:1").unwrap()];
        let none = node_files(&ud, None, &images, &NodeFiles::default()).unwrap();
        assert!(none.files.is_empty());
        assert!(!NodeFiles::default().any());
        let dir = tempfile::tempdir().unwrap();
        let which = NodeFiles {
            hosts_dir: Some(dir.path().join("certs.d")),
            k3s_registries: Some(dir.path().join("registries.yaml")),
            cri_config: Some(dir.path().join("berth.toml")),
            ..NodeFiles::default()
        };
        let r = node_files(&ud, None, &images, &which).unwrap();
        let paths: Vec<String> = r
            .files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert!(
            paths.contains(&"certs.d/quay.io/hosts.toml".to_string()),
            "{paths:?}"
        );
        assert!(paths.contains(&"registries.yaml".to_string()), "{paths:?}");
        assert!(paths.contains(&"berth.toml".to_string()), "{paths:?}");
        let k3s = r
            .files
            .iter()
            .find(|f| f.path.ends_with("registries.yaml"))
            .unwrap();
        assert!(k3s.secret && k3s.contents.contains("hunter2"));
        assert!(!registries::redact(&k3s.contents, &r.plan).contains("hunter2"));
        r.write().unwrap();
        assert!(dir.path().join("certs.d/quay.io/hosts.toml").is_file());
    }
}
