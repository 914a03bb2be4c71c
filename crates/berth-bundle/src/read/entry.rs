//! Entry names: checked (no absolute paths, `..`, backslashes or NUL) and classified; small
//! entries read whole.

use std::io::Read;

use berth_reference::{Algorithm, Digest};

use super::stream_err;
use crate::BundleError;
use crate::manifest::{
    INDEX_ENTRY, LAYOUT_ENTRY, MANIFEST_ENTRY, PROFILES_DIR, SIGNATURE_ENTRY, valid_profile_file,
};

/// Checks an entry name; returns it normalized (`./a` → `a`).
pub(super) fn entry_name(name: &str, raw: &[u8]) -> Result<String, BundleError> {
    let raw = std::str::from_utf8(raw).map_err(|_| {
        BundleError::hostile(
            name,
            String::from_utf8_lossy(raw),
            "has a name that is not UTF-8",
        )
    })?;
    if raw.starts_with('\\') || raw.contains(":\\") {
        return Err(BundleError::hostile(name, raw, "has an absolute path"));
    }
    berth_archive::relative_entry_name(raw, |p| {
        (p.contains('\\') || p.contains('\0')).then_some("has a backslash or NUL in its name")
    })
    .map_err(|why| BundleError::hostile(name, raw, why))
}

/// What an entry is.
pub(super) enum Kind {
    Manifest,
    Signature,
    Layout,
    Index,
    Profile(String),
    Blob(Digest),
}

pub(super) fn classify(name: &str, entry: &str) -> Result<Kind, BundleError> {
    Ok(match entry {
        MANIFEST_ENTRY => Kind::Manifest,
        SIGNATURE_ENTRY => Kind::Signature,
        LAYOUT_ENTRY => Kind::Layout,
        INDEX_ENTRY => Kind::Index,
        _ => {
            let parts: Vec<&str> = entry.split('/').collect();
            match parts.as_slice() {
                [PROFILES_DIR, f] if valid_profile_file(f) => Kind::Profile(f.to_string()),
                ["blobs", alg, hex] => {
                    let d = Digest::parse(&format!("{alg}:{hex}")).map_err(|_| {
                        BundleError::hostile(name, entry, "is not named blobs/ALGORITHM/HEX")
                    })?;
                    if d.hex() != *hex || d.algorithm().as_str() != *alg {
                        return Err(BundleError::hostile(
                            name,
                            entry,
                            "is not named blobs/ALGORITHM/HEX in lower case",
                        ));
                    }
                    if !matches!(d.algorithm(), Algorithm::Sha256 | Algorithm::Sha512) {
                        return Err(BundleError::damaged(
                            name,
                            entry,
                            "uses a digest algorithm Berth cannot verify (sha256 and sha512 are)",
                        ));
                    }
                    Kind::Blob(d)
                }
                _ => {
                    return Err(BundleError::hostile(
                        name,
                        entry,
                        "is not a bundle entry (bundle.json, bundle.json.sig, oci-layout, index.json, profiles/FILE, blobs/ALGORITHM/HEX)",
                    ));
                }
            }
        }
    })
}

pub(super) fn read_small(
    name: &str,
    entry: &str,
    r: &mut dyn Read,
    size: u64,
    max: u64,
) -> Result<Vec<u8>, BundleError> {
    if size > max {
        return Err(BundleError::damaged(
            name,
            entry,
            format!("is {size} bytes, more than the {max} Berth accepts"),
        ));
    }
    let mut v = Vec::with_capacity(size as usize);
    r.take(max + 1)
        .read_to_end(&mut v)
        .map_err(|e| stream_err(name, entry, e))?;
    if v.len() as u64 != size {
        return Err(BundleError::damaged(
            name,
            entry,
            "ended early: the bundle is truncated",
        ));
    }
    Ok(v)
}
