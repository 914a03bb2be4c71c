//! What refers to an image: the cosign tag scheme (`sha256-<hex>.sig`, `.att`, `.sbom`).

/// The cosign tag of the artifact `suffix` (`sig`, `att`, `sbom`) attached to `digest`
/// (`sha256:<hex>` → `sha256-<hex>.<suffix>`).
pub fn cosign_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replacen(':', "-", 1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cosign_tags() {
        assert_eq!(super::cosign_tag("sha256:ab12", "sig"), "sha256-ab12.sig");
    }
}
