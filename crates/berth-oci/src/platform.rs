//! Platforms of index entries: which child of an index runs on a host (`linux/amd64`).

use serde::{Deserialize, Serialize};

/// An OS / architecture / variant triple as in OCI image indexes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this machine in OCI terms (`linux/amd64`, `linux/arm64/v8`).
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let architecture = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().filter(|p| !p.is_empty()).map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant,
        })
    }

    /// Whether an index entry for `other` runs here. A missing variant matches any (and
    /// arm64's default `v8`), like containerd's default matcher.
    pub fn matches(&self, other: &Platform) -> bool {
        let norm = |p: &Platform| -> Option<String> {
            match (p.architecture.as_str(), p.variant.as_deref()) {
                ("arm64", Some("v8")) | (_, None) | (_, Some("")) => None,
                (_, Some(v)) => Some(v.to_string()),
            }
        };
        self.os == other.os
            && self.architecture == other.architecture
            && (norm(self).is_none() || norm(other).is_none() || norm(self) == norm(other))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_containerd() {
        let amd = Platform::parse("linux/amd64").unwrap();
        assert!(amd.matches(&Platform::parse("linux/amd64").unwrap()));
        assert!(amd.matches(&Platform::parse("linux/amd64/v2").unwrap()));
        assert!(!amd.matches(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(!amd.matches(&Platform::parse("windows/amd64").unwrap()));
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        assert!(arm.matches(&Platform::parse("linux/arm64").unwrap()));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(!v7.matches(&Platform::parse("linux/arm/v6").unwrap()));
        assert_eq!(Platform::parse("linux/arm64/v8/x"), None);
        assert_eq!(amd.to_string(), "linux/amd64");
    }
}
