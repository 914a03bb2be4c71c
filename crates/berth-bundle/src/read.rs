//! Reading a bundle: one pass over the decompressed stream (never a copy of the bundle),
//! every entry name checked, every blob hashed as it flows, then every reference checked.

mod entry;
mod references;
mod stream;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use berth_reference::{Algorithm, Digest};
use ed25519_dalek::VerifyingKey;

use crate::hash::{Hasher, HashingReader, digest_bytes};
use crate::manifest::{
    BundleManifest, FORMAT_VERSION, INDEX_ENTRY, LAYOUT_ENTRY, MANIFEST_ENTRY, PROFILES_DIR,
    SIGNATURE_ENTRY,
};
use crate::parts::resolve;
use crate::{BundleError, sign};
use entry::{Kind, classify, entry_name, read_small};
use references::check_references;
pub(crate) use stream::stream_err;
use stream::{ReadAhead, compressed_size, decoder};

/// Small documents are read whole, at most this big.
const MAX_DOC: u64 = 16 << 20;
/// Blobs up to this size that look like JSON are kept in memory to check references.
const MAX_JSON_BLOB: u64 = 4 << 20;

/// The metadata of a bundle, read from its first entries only.
#[derive(Clone, Debug)]
pub struct Head {
    pub manifest: BundleManifest,
    /// The exact bytes of `bundle.json` (what the signature covers).
    pub manifest_bytes: Vec<u8>,
    pub signature: Option<Vec<u8>>,
    /// The files of the bundle (one, or its parts).
    pub parts: Vec<PathBuf>,
    /// Sum of the sizes of the files.
    pub compressed_size: u64,
}

/// Everything but the blobs, after a full, verified pass.
#[derive(Clone, Debug)]
pub struct Contents {
    pub head: Head,
    /// The bytes of `index.json`.
    pub index: Vec<u8>,
    /// `(file name, bytes)` of every profile.
    pub profiles: Vec<(String, Vec<u8>)>,
    /// Whether the signature was checked against a public key.
    pub signature_verified: bool,
}

/// Receives every blob's bytes during [`scan`] (a hashing reader: the digest is checked after
/// the callback returns, whatever it read). A blob is good only once `scan` returns `Ok`.
pub type BlobSink<'a> = dyn FnMut(&Digest, u64, &mut dyn Read) -> Result<(), BundleError> + 'a;

/// Reads `bundle.json` (and its signature) from the start of the bundle only.
pub fn head(path: &Path) -> Result<Head, BundleError> {
    let name = path.display().to_string();
    let parts = resolve(path)?;
    let size = compressed_size(&parts);
    let mut archive = tar::Archive::new(decoder(&name, parts.clone())?);
    let mut manifest: Option<(BundleManifest, Vec<u8>)> = None;
    let mut signature = None;
    let entries = archive
        .entries()
        .map_err(|e| stream_err(&name, "the first entry", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| stream_err(&name, "an entry header", e))?;
        let n = entry_name(&name, &entry.path_bytes())?;
        let size = entry.size();
        match (n.as_str(), &manifest) {
            (MANIFEST_ENTRY, None) => {
                let bytes = read_small(&name, &n, &mut entry, size, MAX_DOC)?;
                manifest = Some((parse_manifest(&name, &bytes)?, bytes));
            }
            (SIGNATURE_ENTRY, Some(_)) if signature.is_none() => {
                signature = Some(read_small(&name, &n, &mut entry, size, 1024)?);
            }
            _ => break,
        }
    }
    let (manifest, manifest_bytes) = manifest.ok_or_else(|| {
        BundleError::damaged(
            &name,
            MANIFEST_ENTRY,
            "is not the first entry: this is not a Berth bundle (build one with `berth bundle build`)",
        )
    })?;
    Ok(Head {
        manifest,
        manifest_bytes,
        signature,
        parts,
        compressed_size: size,
    })
}

fn parse_manifest(name: &str, bytes: &[u8]) -> Result<BundleManifest, BundleError> {
    let m: BundleManifest = serde_json::from_slice(bytes).map_err(|e| {
        BundleError::damaged(
            name,
            MANIFEST_ENTRY,
            format!("is not a valid bundle manifest: {e}"),
        )
    })?;
    if m.format_version != FORMAT_VERSION {
        return Err(BundleError::damaged(
            name,
            MANIFEST_ENTRY,
            format!(
                "has format version {}; this Berth reads version {FORMAT_VERSION}: use a matching Berth release",
                m.format_version
            ),
        ));
    }
    Ok(m)
}

/// One full pass over the bundle at `path` (a file, or `.part00` / the base name of split
/// parts). Every entry name is checked (no absolute paths, `..`, links, devices, duplicates
/// or unknown names), the signature is checked against `key` before any blob is read,
/// every blob is hashed and compared with its name and with `bundle.json`, and at the end
/// every image's manifests, configs and layers must be present. `on_blob` sees every blob.
pub fn scan(
    path: &Path,
    key: Option<&VerifyingKey>,
    on_blob: &mut BlobSink<'_>,
) -> Result<Contents, BundleError> {
    let name = path.display().to_string();
    let parts = resolve(path)?;
    let compressed = compressed_size(&parts);
    let mut archive = tar::Archive::new(ReadAhead::new(decoder(&name, parts.clone())?));
    let mut manifest: Option<(BundleManifest, Vec<u8>)> = None;
    let mut signature: Option<Vec<u8>> = None;
    let mut signature_checked = false;
    let mut listed: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut seen_names: BTreeSet<String> = BTreeSet::new();
    let mut seen_blobs: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut json_blobs: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
    let mut index: Option<Vec<u8>> = None;
    let mut layout = false;
    let mut profiles: Vec<(String, Vec<u8>)> = Vec::new();
    let mut last = String::from("the first entry");
    {
        let entries = archive.entries().map_err(|e| stream_err(&name, &last, e))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| stream_err(&name, &format!("the entry after {last}"), e))?;
            let n = entry_name(&name, &entry.path_bytes())?;
            let kind = entry.header().entry_type();
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                tar::EntryType::XGlobalHeader => continue,
                tar::EntryType::Directory => {
                    let ok = n.is_empty()
                        || n == "blobs"
                        || n == PROFILES_DIR
                        || n.strip_prefix("blobs/")
                            .is_some_and(|a| a == "sha256" || a == "sha512");
                    if ok {
                        continue;
                    }
                    return Err(BundleError::hostile(
                        &name,
                        n,
                        "is a directory no bundle has",
                    ));
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let what = if kind == tar::EntryType::Symlink {
                        "symbolic"
                    } else {
                        "hard"
                    };
                    return Err(BundleError::hostile(
                        &name,
                        n,
                        format!("is a {what} link to `{target}` (bundles hold regular files only)"),
                    ));
                }
                other => {
                    return Err(BundleError::hostile(
                        &name,
                        n,
                        format!("has type {other:?} (a device, FIFO, sparse or unknown entry)"),
                    ));
                }
            }
            if !seen_names.insert(n.clone()) {
                return Err(BundleError::hostile(&name, n, "appears twice"));
            }
            let size = entry.size();
            let class = classify(&name, &n)?;
            // bundle.json comes first, its signature second; check it before reading on.
            match (&class, &manifest) {
                (Kind::Manifest, None) => {}
                (_, None) => {
                    return Err(BundleError::damaged(
                        &name,
                        MANIFEST_ENTRY,
                        format!("is not the first entry (`{n}` is): this is not a Berth bundle"),
                    ));
                }
                (Kind::Signature, Some(_)) => {}
                (_, Some((_, bytes))) => {
                    if !signature_checked {
                        if let Some(k) = key {
                            sign::verify(&name, k, bytes, signature.as_deref())?;
                        }
                        signature_checked = true;
                    }
                }
            }
            match class {
                Kind::Manifest => {
                    let bytes = read_small(&name, &n, &mut entry, size, MAX_DOC)?;
                    let m = parse_manifest(&name, &bytes)?;
                    for b in &m.blobs {
                        let d = Digest::parse(&b.digest).map_err(|e| {
                            BundleError::damaged(
                                &name,
                                MANIFEST_ENTRY,
                                format!("lists blob `{}`: {e}", b.digest),
                            )
                        })?;
                        listed.insert(d, b.size);
                    }
                    manifest = Some((m, bytes));
                }
                Kind::Signature => {
                    if signature_checked {
                        return Err(BundleError::damaged(&name, n, "must follow bundle.json"));
                    }
                    signature = Some(read_small(&name, &n, &mut entry, size, 1024)?);
                }
                Kind::Layout => {
                    let bytes = read_small(&name, &n, &mut entry, size, 4096)?;
                    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                        BundleError::damaged(&name, &n, format!("is not JSON: {e}"))
                    })?;
                    if !v["imageLayoutVersion"].is_string() {
                        return Err(BundleError::damaged(&name, n, "has no imageLayoutVersion"));
                    }
                    layout = true;
                }
                Kind::Index => {
                    let bytes = read_small(&name, &n, &mut entry, size, MAX_DOC)?;
                    let want = &manifest.as_ref().expect("checked").0.index;
                    let got = digest_bytes(Algorithm::Sha256, &bytes);
                    if got != want.digest || bytes.len() as u64 != want.size {
                        return Err(BundleError::damaged(
                            &name,
                            n,
                            format!(
                                "hashes to {got} ({} bytes) but bundle.json says {} ({} bytes): the bundle was altered",
                                bytes.len(),
                                want.digest,
                                want.size
                            ),
                        ));
                    }
                    index = Some(bytes);
                }
                Kind::Profile(file) => {
                    let bytes = read_small(&name, &n, &mut entry, size, MAX_DOC)?;
                    let m = &manifest.as_ref().expect("checked").0;
                    let got = digest_bytes(Algorithm::Sha256, &bytes);
                    match m.profiles.iter().find(|p| p.file == file) {
                        Some(p) if p.digest == got && p.size == bytes.len() as u64 => {}
                        Some(p) => {
                            return Err(BundleError::damaged(
                                &name,
                                n,
                                format!(
                                    "hashes to {got} but bundle.json says {}: the bundle was altered",
                                    p.digest
                                ),
                            ));
                        }
                        None => {
                            return Err(BundleError::damaged(
                                &name,
                                n,
                                "is not listed in bundle.json",
                            ));
                        }
                    }
                    profiles.push((file, bytes));
                }
                Kind::Blob(d) => {
                    match listed.get(&d) {
                        Some(s) if *s == size => {}
                        Some(s) => {
                            return Err(BundleError::damaged(
                                &name,
                                n,
                                format!("is {size} bytes, bundle.json says {s}"),
                            ));
                        }
                        None => {
                            return Err(BundleError::damaged(
                                &name,
                                n,
                                "is not listed in bundle.json: the bundle was altered",
                            ));
                        }
                    }
                    let got = if size <= MAX_JSON_BLOB {
                        let bytes = read_small(&name, &n, &mut entry, size, MAX_JSON_BLOB)?;
                        let got = digest_bytes(d.algorithm(), &bytes);
                        if got == d.to_string() {
                            on_blob(&d, size, &mut io::Cursor::new(&bytes))?;
                            if bytes.first() == Some(&b'{') {
                                json_blobs.insert(d.clone(), bytes);
                            }
                        }
                        got
                    } else {
                        let mut hr = HashingReader {
                            inner: &mut entry,
                            hasher: Hasher::new(d.algorithm()),
                            read: 0,
                        };
                        let r = on_blob(&d, size, &mut hr);
                        // Whatever the sink read, hash the rest.
                        io::copy(&mut hr, &mut io::sink()).map_err(|e| stream_err(&name, &n, e))?;
                        r?;
                        if hr.read != size {
                            return Err(BundleError::damaged(
                                &name,
                                n,
                                "ended early: the bundle is truncated",
                            ));
                        }
                        format!("{}:{}", d.algorithm().as_str(), hr.hasher.hex())
                    };
                    if got != d.to_string() {
                        return Err(BundleError::damaged(
                            &name,
                            n,
                            format!(
                                "hashes to {got}, not to the digest it is named by: the blob is corrupt"
                            ),
                        ));
                    }
                    seen_blobs.insert(d, size);
                }
            }
            last = seen_names.last().cloned().unwrap_or_default();
        }
    }
    // The rest of the stream (tar padding, the zstd frame end and its checksum).
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| stream_err(&name, "the end of the bundle", e))?;
    let (manifest, manifest_bytes) = manifest.ok_or_else(|| {
        BundleError::damaged(
            &name,
            MANIFEST_ENTRY,
            "is missing: this is not a Berth bundle",
        )
    })?;
    if !signature_checked && let Some(k) = key {
        sign::verify(&name, k, &manifest_bytes, signature.as_deref())?;
    }
    if !layout {
        return Err(BundleError::damaged(&name, LAYOUT_ENTRY, "is missing"));
    }
    let index = index.ok_or_else(|| BundleError::damaged(&name, INDEX_ENTRY, "is missing"))?;
    for p in &manifest.profiles {
        if !profiles.iter().any(|(f, _)| *f == p.file) {
            return Err(BundleError::damaged(
                &name,
                format!("{PROFILES_DIR}/{}", p.file),
                "is missing",
            ));
        }
    }
    for d in listed.keys() {
        if !seen_blobs.contains_key(d) {
            return Err(BundleError::damaged(
                &name,
                blob_entry(d),
                "is listed in bundle.json but missing: the bundle is truncated or incomplete",
            ));
        }
    }
    check_references(&name, &manifest, &index, &seen_blobs, &json_blobs)?;
    profiles.sort();
    Ok(Contents {
        head: Head {
            manifest,
            manifest_bytes,
            signature,
            parts,
            compressed_size: compressed,
        },
        index,
        profiles,
        signature_verified: key.is_some(),
    })
}

/// The entry name of a blob.
pub fn blob_entry(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}
