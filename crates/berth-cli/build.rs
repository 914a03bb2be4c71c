//! `berth --version` names the commit it was built from (`BERTH_VERSION`: `0.1.0 (commit
//! 0123456789ab)`): `BERTH_COMMIT` from the environment
//! (a packager's), else `git rev-parse` of the checkout holding this crate, else `unknown`
//! (a source tarball without git).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The checkout's commit, if this crate is inside a git work tree (not merely below one).
fn commit() -> Option<String> {
    let top = git(&["rev-parse", "--show-toplevel"])?;
    let manifest = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let tracked = git(&["ls-files", "--error-unmatch", "Cargo.toml"]).is_some();
    if !tracked || !Path::new(&manifest).starts_with(Path::new(&top)) {
        return None;
    }
    // Build again when HEAD moves: HEAD itself, the branch it names, the packed refs.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for w in watched {
        // (Only files that exist: cargo reruns a script whose watched file is missing.)
        if let Some(p) = git(&["rev-parse", "--git-path", &w]).filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}

fn main() {
    println!("cargo:rerun-if-env-changed=BERTH_COMMIT");
    let commit = match std::env::var("BERTH_COMMIT") {
        Ok(c) if !c.trim().is_empty() => Some(c.trim().to_string()),
        _ => commit(),
    };
    let commit = commit.unwrap_or_else(|| "unknown".to_string());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    println!("cargo:rustc-env=BERTH_VERSION={version} (commit {commit})");
}
