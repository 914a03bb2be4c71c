//! Where the Go peers (Helm, crane, oras, crictl, containerd 2, the OCI conformance suite, ...)
//! built by `scripts/install-go-peers.sh` are found.

use std::path::{Path, PathBuf};

/// The binary `name` of a Go peer: `$BERTH_TOOLS_DIR/NAME`, then `<workspace>/.tools/bin/NAME`
/// (where `scripts/install-deps.sh` builds them), then the first `NAME` on `PATH`.
pub fn go_peer(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("BERTH_TOOLS_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin"));
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}
