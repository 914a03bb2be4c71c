//! `signedIdentity`: which `critical.identity.docker-reference` a signature may carry for an
//! image, as containers/image decides it (`policy_reference_match.go`).

use std::fmt;

use berth_reference::Reference;

/// How a signature's identity must relate to the image's (source) reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedIdentity {
    /// The image by digest: the same repository; by tag: exactly the same `repo:tag`.
    MatchRepoDigestOrExact,
    /// The same repository, any tag or digest.
    MatchRepository,
    /// Exactly the same `repo:tag` or `repo@digest`.
    MatchExact,
    /// The signature must name exactly this `repo:tag` / `repo@digest`, whatever the image.
    ExactReference(String),
    /// The signature must name this repository, whatever the image.
    ExactRepository(String),
    /// The image's reference with `prefix` replaced by `signed_prefix`, then
    /// `MatchRepoDigestOrExact`.
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

impl fmt::Display for SignedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignedIdentity::MatchRepoDigestOrExact => f.write_str("matchRepoDigestOrExact"),
            SignedIdentity::MatchRepository => f.write_str("matchRepository"),
            SignedIdentity::MatchExact => f.write_str("matchExact"),
            SignedIdentity::ExactReference(r) => write!(f, "exactReference {r}"),
            SignedIdentity::ExactRepository(r) => write!(f, "exactRepository {r}"),
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => write!(f, "remapIdentity {prefix} -> {signed_prefix}"),
        }
    }
}

/// A reference as written: its normalized repository and the tag and digest it spells out
/// (no implicit `latest`: a cosign identity is usually the repository alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Named {
    pub fn parse(s: &str) -> Result<Named, String> {
        let r = Reference::parse(s).map_err(|e| e.to_string())?;
        let before_digest = s.split('@').next().unwrap_or(s);
        let last = before_digest.rsplit('/').next().unwrap_or(before_digest);
        let tag = match last.contains(':') {
            true => r.tag().map(str::to_string),
            false => None,
        };
        Ok(Named {
            name: r.name(),
            tag,
            digest: r.digest().map(ToString::to_string),
        })
    }

    /// The image as Berth names it (`Reference` always has a tag or digest).
    pub fn of(r: &Reference) -> Named {
        Named {
            name: r.name(),
            tag: r.tag().map(str::to_string),
            digest: r.digest().map(ToString::to_string),
        }
    }

    fn tagged_or_digested(&self) -> bool {
        self.tag.is_some() || self.digest.is_some()
    }
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl SignedIdentity {
    /// Checks the values a policy gives (`exactReference` must have a tag or digest).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            SignedIdentity::ExactReference(r) => {
                let n = Named::parse(r)?;
                match n.tagged_or_digested() {
                    true => Ok(()),
                    false => Err(format!("exactReference {r} needs a tag or a digest")),
                }
            }
            SignedIdentity::ExactRepository(r) => {
                let n = Named::parse(r)?;
                match n.tagged_or_digested() {
                    true => Err(format!("exactRepository {r} must be a repository alone")),
                    false => Ok(()),
                }
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => {
                for p in [prefix, signed_prefix] {
                    if p.is_empty() || p.contains('@') || p.ends_with('/') {
                        return Err(format!(
                            "remapIdentity prefix {p:?} is not a host or repository namespace"
                        ));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Whether a signature naming `signed` is acceptable for the image `image`.
    pub fn matches(&self, image: &Named, signed: &Named) -> bool {
        match self {
            SignedIdentity::MatchRepoDigestOrExact => repo_digest_or_exact(image, signed),
            SignedIdentity::MatchRepository => image.name == signed.name,
            SignedIdentity::MatchExact => image.tagged_or_digested() && image == signed,
            SignedIdentity::ExactReference(r) => Named::parse(r).is_ok_and(|r| &r == signed),
            SignedIdentity::ExactRepository(r) => {
                Named::parse(r).is_ok_and(|r| r.name == signed.name)
            }
            SignedIdentity::RemapIdentity {
                prefix,
                signed_prefix,
            } => {
                let s = image.to_string();
                let remapped = match s.strip_prefix(prefix.as_str()) {
                    Some(rest) if rest.is_empty() || rest.starts_with(['/', ':', '@']) => {
                        match Named::parse(&format!("{signed_prefix}{rest}")) {
                            Ok(n) => n,
                            Err(_) => return false,
                        }
                    }
                    _ => image.clone(),
                };
                repo_digest_or_exact(&remapped, signed)
            }
        }
    }
}

fn repo_digest_or_exact(image: &Named, signed: &Named) -> bool {
    if image.digest.is_some() {
        return image.name == signed.name;
    }
    image.tag.is_some() && image == signed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Named {
        Named::parse(s).unwrap()
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn identities_as_containers_image_decides() {
        let tagged = n("registry.example.com/team/app:1.0");
        let by_digest = n(&format!("registry.example.com/team/app@{D}"));
        let repo = n("registry.example.com/team/app");
        let other = n("registry.example.com/team/other");
        use SignedIdentity::*;
        assert!(MatchRepository.matches(&tagged, &repo));
        assert!(!MatchRepository.matches(&tagged, &other));
        assert!(MatchRepoDigestOrExact.matches(&by_digest, &repo));
        assert!(!MatchRepoDigestOrExact.matches(&tagged, &repo));
        assert!(MatchRepoDigestOrExact.matches(&tagged, &tagged));
        assert!(MatchExact.matches(&tagged, &tagged));
        assert!(!MatchExact.matches(&repo, &repo));
        assert!(ExactRepository("registry.example.com/team/app".into()).matches(&other, &repo));
        assert!(
            ExactReference("registry.example.com/team/app:1.0".into()).matches(&other, &tagged)
        );
        let remap = RemapIdentity {
            prefix: "edge.local:5000/mirror".into(),
            signed_prefix: "registry.example.com".into(),
        };
        let mirrored = n(&format!("edge.local:5000/mirror/team/app@{D}"));
        assert!(remap.matches(&mirrored, &repo));
        assert!(!remap.matches(&mirrored, &other));
        // A prefix matches at a component boundary only.
        let near = n(&format!("edge.local:5000/mirrorx/team/app@{D}"));
        assert!(!remap.matches(&near, &repo));
        assert_eq!(n("nginx").name, "docker.io/library/nginx");
        assert_eq!(n("nginx").tag, None);
    }
}
