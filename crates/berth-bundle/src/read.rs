//! Reading a bundle: one pass over the decompressed stream (never a copy of the bundle),
//! every entry name checked, every blob hashed as it flows, then every reference checked.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use berth_client::Manifest;
use berth_reference::{Algorithm, Digest};
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use sha2::Digest as _;

use crate::manifest::{
    BundleManifest, FORMAT_VERSION, INDEX_ENTRY, LAYOUT_ENTRY, MANIFEST_ENTRY, PROFILES_DIR,
    SIGNATURE_ENTRY, valid_profile_file,
};
use crate::parts::{PartsReader, resolve};
use crate::{BundleError, sign};

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

fn decoder(
    name: &str,
    parts: Vec<PathBuf>,
) -> Result<zstd::stream::read::Decoder<'static, io::BufReader<PartsReader>>, BundleError> {
    zstd::stream::read::Decoder::new(PartsReader::open(parts))
        .map_err(|e| BundleError::io(name, "starting the zstd decoder", e))
}

/// Size of the decompressed chunks handed from the decompression thread to the reader
/// (small enough to be read while still in the CPU's caches).
const CHUNK: usize = 256 << 10;
/// How many chunks the decompression thread may run ahead.
const CHUNKS_AHEAD: usize = 8;

/// Decompresses on its own thread, a few MiB ahead of the reader, so that decompression
/// and hashing/writing run on two cores. The thread ends when the reader is dropped.
/// Chunks go back to the thread once read, so the same few buffers are reused.
struct ReadAhead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    fn new(mut inner: impl Read + Send + 'static) -> ReadAhead {
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(CHUNKS_AHEAD);
        let (back, free) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS_AHEAD + 2);
        std::thread::spawn(move || {
            loop {
                let mut chunk = free.try_recv().unwrap_or_default();
                chunk.resize(CHUNK, 0);
                let mut n = 0;
                let r = loop {
                    match inner.read(&mut chunk[n..]) {
                        Ok(0) => break Ok(()),
                        Ok(k) => {
                            n += k;
                            if n == chunk.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                chunk.truncate(n);
                let end = n == 0;
                let msg = match r {
                    Ok(()) => Ok(chunk),
                    Err(e) => Err(e),
                };
                let failed = msg.is_err();
                if tx.send(msg).is_err() || end || failed {
                    return;
                }
            }
        });
        ReadAhead {
            rx,
            back,
            buf: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    if chunk.is_empty() {
                        self.done = true;
                    }
                    let used = std::mem::replace(&mut self.buf, chunk);
                    if used.capacity() > 0 {
                        let _ = self.back.try_send(used);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the decompression thread stopped"));
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// An I/O error while reading the stream: the bundle is truncated or corrupt (or a part
/// could not be read).
pub(crate) fn stream_err(name: &str, entry: &str, e: io::Error) -> BundleError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
            BundleError::io(name, format!("reading {entry}"), e)
        }
        _ => BundleError::damaged(
            name,
            entry,
            format!(
                "the compressed stream is corrupt or truncated ({e}); copy the bundle (every .partNN) again"
            ),
        ),
    }
}

fn compressed_size(parts: &[PathBuf]) -> u64 {
    parts
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Checks an entry name; returns it normalized (`./a` → `a`).
fn entry_name(name: &str, raw: &[u8]) -> Result<String, BundleError> {
    let raw = std::str::from_utf8(raw).map_err(|_| {
        BundleError::hostile(
            name,
            String::from_utf8_lossy(raw),
            "has a name that is not UTF-8",
        )
    })?;
    if raw.starts_with('/') || raw.starts_with('\\') || raw.contains(":\\") {
        return Err(BundleError::hostile(name, raw, "has an absolute path"));
    }
    let mut parts = Vec::new();
    for p in raw.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                return Err(BundleError::hostile(name, raw, "has a `..` path component"));
            }
            p if p.contains('\\') || p.contains('\0') => {
                return Err(BundleError::hostile(
                    name,
                    raw,
                    "has a backslash or NUL in its name",
                ));
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// What an entry is.
enum Kind {
    Manifest,
    Signature,
    Layout,
    Index,
    Profile(String),
    Blob(Digest),
}

fn classify(name: &str, entry: &str) -> Result<Kind, BundleError> {
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

fn read_small(
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

/// A hash of either algorithm.
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn new(alg: Algorithm) -> Hasher {
        match alg {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            // Refused by `classify` before any hashing.
            _ => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub(crate) fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    pub(crate) fn hex(self) -> String {
        let bytes: Vec<u8> = match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        hex(&bytes)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// `algorithm:hex` of `bytes`.
pub(crate) fn digest_bytes(alg: Algorithm, bytes: &[u8]) -> String {
    let mut h = Hasher::new(alg);
    h.update(bytes);
    format!("{}:{}", alg.as_str(), h.hex())
}

struct HashingReader<'a, R: Read> {
    inner: &'a mut R,
    hasher: Hasher,
    read: u64,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

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

/// `index.json` names every image of `bundle.json` with its digest, and every manifest's
/// children, configs and layers are in the bundle with the sizes the manifests give.
fn check_references(
    name: &str,
    manifest: &BundleManifest,
    index: &[u8],
    blobs: &BTreeMap<Digest, u64>,
    json: &BTreeMap<Digest, Vec<u8>>,
) -> Result<(), BundleError> {
    let v: serde_json::Value = serde_json::from_slice(index)
        .map_err(|e| BundleError::damaged(name, INDEX_ENTRY, format!("is not JSON: {e}")))?;
    let mut in_index: BTreeMap<String, String> = BTreeMap::new();
    for m in v["manifests"].as_array().into_iter().flatten() {
        let r = m["annotations"][berth_transfer::REF_NAME]
            .as_str()
            .unwrap_or_default()
            .to_string();
        in_index.insert(r, m["digest"].as_str().unwrap_or_default().to_string());
    }
    for img in &manifest.images {
        match in_index.get(&img.source) {
            Some(d) if *d == img.digest => {}
            Some(d) => {
                return Err(BundleError::damaged(
                    name,
                    INDEX_ENTRY,
                    format!(
                        "names {} with {d}, bundle.json with {}",
                        img.source, img.digest
                    ),
                ));
            }
            None => {
                return Err(BundleError::damaged(
                    name,
                    INDEX_ENTRY,
                    format!("does not name {} (listed in bundle.json)", img.source),
                ));
            }
        }
    }
    let mut stack: Vec<(Digest, String)> = Vec::new();
    for img in &manifest.images {
        let d = Digest::parse(&img.digest).map_err(|e| {
            BundleError::damaged(name, MANIFEST_ENTRY, format!("image {}: {e}", img.source))
        })?;
        stack.push((d, img.source.clone()));
    }
    let mut done = BTreeSet::new();
    while let Some((d, image)) = stack.pop() {
        if !done.insert(d.clone()) {
            continue;
        }
        let bytes = json.get(&d).ok_or_else(|| {
            BundleError::damaged(
                name,
                blob_entry(&d),
                format!("a manifest of {image}, is missing or not a JSON manifest"),
            )
        })?;
        let m = Manifest {
            media_type: berth_client::media_type_from_json(bytes)
                .unwrap_or_else(|| berth_client::OCI_MANIFEST.to_string()),
            bytes: Bytes::from(bytes.clone()),
            digest: d.clone(),
        };
        let parsed = berth_transfer::manifest::parse(&m, name, &image).map_err(|e| {
            BundleError::damaged(name, blob_entry(&d), format!("a manifest of {image}: {e}"))
        })?;
        let (children, is_index) = match parsed {
            berth_transfer::manifest::Parsed::Index(c) => (c, true),
            berth_transfer::manifest::Parsed::Image(c) => (c, false),
        };
        for c in children {
            match blobs.get(&c.digest) {
                Some(s) if *s == c.size => {}
                Some(s) => {
                    return Err(BundleError::damaged(
                        name,
                        blob_entry(&c.digest),
                        format!("is {s} bytes but manifest {d} of {image} says {}", c.size),
                    ));
                }
                None => {
                    return Err(BundleError::damaged(
                        name,
                        blob_entry(&c.digest),
                        format!("is missing: manifest {d} of {image} references it"),
                    ));
                }
            }
            if is_index {
                stack.push((c.digest, image.clone()));
            }
        }
    }
    Ok(())
}
