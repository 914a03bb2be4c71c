//! Layers: deterministic tar archives of real files (or of seeded random bytes), gzip
//! compressed as they stream into the layout, with their digest and diff_id.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use sha2::{Digest, Sha256};

use super::OciLayout;
use crate::hex;

/// A built layer (blob in the layout).
#[derive(Clone, Debug)]
pub(super) struct Layer {
    pub(super) digest: String,
    pub(super) size: u64,
    pub(super) diff_id: String,
    pub(super) label: String,
}

/// What a layer holds.
pub(super) enum Source<'a> {
    /// Real directories/files, relative to `/`. Missing ones are skipped (at least one
    /// must exist).
    Paths(&'a [&'a str]),
    /// Real paths plus empty OCI whiteout files (`dir/.wh.name`).
    PathsWithWhiteouts(&'a [&'a str], &'a [&'a str]),
    /// `models/weights.bin`: `mib` MiB from a seeded PRNG (incompressible, reproducible).
    Random { mib: usize, seed: u64 },
}

/// Writer adaptor: sha256 + byte count of what passes through.
struct HashCount<W> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for HashCount<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.hash.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> HashCount<W> {
    fn new(inner: W) -> Self {
        HashCount {
            inner,
            hash: Sha256::new(),
            n: 0,
        }
    }
    fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", hex(&self.hash.finalize())),
            self.n,
        )
    }
}

/// A deterministic, incompressible byte stream of a given length: the native-endian
/// words of wyrand (`fastrand`, seeded), which as a dependency is compiled optimised and
/// runs at GB/s even in debug test builds. Independent of the callers' read sizes.
struct Prng {
    rng: fastrand::Rng,
    left: u64,
    tail: [u8; 8],
    pos: usize,
}

impl Prng {
    fn new(seed: u64, len: u64) -> Prng {
        Prng {
            rng: fastrand::Rng::with_seed(seed),
            left: len,
            tail: [0; 8],
            pos: 8,
        }
    }
}

impl Read for Prng {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = (out.len() as u64).min(self.left) as usize;
        let mut i = 0;
        while i < want && self.pos < 8 {
            out[i] = self.tail[self.pos];
            self.pos += 1;
            i += 1;
        }
        let words = (want - i) & !7;
        // fill() draws one u64 per 8 bytes.
        self.rng.fill(&mut out[i..i + words]);
        i += words;
        if i < want {
            self.rng.fill(&mut self.tail);
            self.pos = 0;
            while i < want {
                out[i] = self.tail[self.pos];
                self.pos += 1;
                i += 1;
            }
        }
        self.left -= want as u64;
        Ok(want)
    }
}

enum Entry {
    Dir(u32),
    File(PathBuf, std::fs::Metadata),
    Symlink(PathBuf, u32),
    Empty,
}

fn collect(abs: &Path, rel: &str, out: &mut BTreeMap<String, Entry>) {
    let meta = match std::fs::symlink_metadata(abs) {
        Ok(m) => m,
        Err(_) => return,
    };
    let ft = meta.file_type();
    let mode = meta.mode() & 0o7777;
    if ft.is_symlink() {
        out.insert(rel.to_string(), Entry::Symlink(abs.to_path_buf(), mode));
    } else if ft.is_dir() {
        out.insert(format!("{rel}/"), Entry::Dir(mode));
        let mut names: Vec<_> = std::fs::read_dir(abs)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", abs.display()))
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            let n = n.to_string_lossy().into_owned();
            collect(&abs.join(&n), &format!("{rel}/{n}"), out);
        }
    } else if ft.is_file() {
        out.insert(rel.to_string(), Entry::File(abs.to_path_buf(), meta));
    }
    // sockets, fifos, devices: skipped
}

fn add_parents(rel: &str, out: &mut BTreeMap<String, Entry>) {
    let mut acc = String::new();
    let parts: Vec<&str> = rel.trim_end_matches('/').split('/').collect();
    for p in &parts[..parts.len().saturating_sub(1)] {
        acc.push_str(p);
        acc.push('/');
        out.entry(acc.clone()).or_insert(Entry::Dir(0o755));
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// Build one layer into the layout, streaming tar -> sha256 (diff_id) -> gzip -> sha256.
pub(super) fn build_layer(
    layout: &OciLayout,
    label: &str,
    source: &Source,
    level: Compression,
) -> Layer {
    let tmp = layout.tmp_path();
    let file = BufWriter::with_capacity(1 << 20, File::create(&tmp).expect("create layer"));
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(HashCount::new(file), level);
    let mut tb = tar::Builder::new(HashCount::new(gz));
    tb.mode(tar::HeaderMode::Complete);
    tb.follow_symlinks(false);

    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    let mut random = None;
    let (paths, whiteouts): (&[&str], &[&str]) = match source {
        Source::Paths(p) => (p, &[]),
        Source::PathsWithWhiteouts(p, w) => (p, w),
        Source::Random { mib, seed } => {
            random = Some((*mib, *seed));
            (&[], &[])
        }
    };
    for p in paths {
        let rel = p.trim_matches('/');
        let before = entries.len();
        collect(&Path::new("/").join(rel), rel, &mut entries);
        if entries.len() > before {
            add_parents(rel, &mut entries);
        }
    }
    if !paths.is_empty() && entries.is_empty() {
        panic!(
            "berth-testkit: none of the layer {label}'s source paths exist on this machine: {paths:?}"
        );
    }
    for w in whiteouts {
        add_parents(w, &mut entries);
        entries.insert(w.to_string(), Entry::Empty);
    }
    if random.is_some() {
        entries.insert("models/".into(), Entry::Dir(0o755));
    }

    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    for (path, e) in &entries {
        match e {
            Entry::Dir(mode) => {
                let mut h = header(tar::EntryType::Directory, *mode, 0);
                tb.append_data(&mut h, path, io::empty()).expect("tar dir");
            }
            Entry::Empty => {
                let mut h = header(tar::EntryType::Regular, 0o644, 0);
                tb.append_data(&mut h, path, io::empty())
                    .expect("tar whiteout");
            }
            Entry::Symlink(abs, mode) => {
                let target = std::fs::read_link(abs).expect("read_link");
                let mut h = header(tar::EntryType::Symlink, *mode, 0);
                tb.append_link(&mut h, path, &target).expect("tar symlink");
            }
            Entry::File(abs, meta) => {
                let mode = meta.mode() & 0o7777;
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = links.get(&key) {
                        let mut h = header(tar::EntryType::Link, mode, 0);
                        tb.append_link(&mut h, path, first).expect("tar hardlink");
                        continue;
                    }
                    links.insert(key, path.clone());
                }
                let f = File::open(abs).unwrap_or_else(|e| panic!("open {}: {e}", abs.display()));
                let mut h = header(tar::EntryType::Regular, mode, meta.len());
                tb.append_data(&mut h, path, f.take(meta.len()))
                    .unwrap_or_else(|e| panic!("tar {}: {e}", abs.display()));
            }
        }
    }
    if let Some((mib, seed)) = random {
        let len = (mib as u64) << 20;
        let mut h = header(tar::EntryType::Regular, 0o644, len);
        tb.append_data(&mut h, "models/weights.bin", Prng::new(seed, len))
            .expect("tar random");
    }

    let tar_hc = tb.into_inner().expect("finish tar");
    let (gz, diff_id, _tar_len) = tar_hc.finish();
    let file_hc = gz.finish().expect("finish gzip");
    let (mut file, digest, size) = file_hc.finish();
    file.flush().expect("flush layer");
    drop(file);
    let dst = layout.blob_path(&digest);
    std::fs::rename(&tmp, &dst).expect("rename layer blob");
    Layer {
        digest,
        size,
        diff_id,
        label: label.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prng_is_seeded_and_chunking_independent() {
        let mut a = Vec::new();
        Prng::new(7, 1000).read_to_end(&mut a).unwrap();
        let mut b = Vec::new();
        let mut p = Prng::new(7, 1000);
        let mut buf = [0u8; 13];
        loop {
            let n = p.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            b.extend_from_slice(&buf[..n]);
        }
        assert_eq!(a.len(), 1000);
        assert_eq!(a, b);
        let mut c = Vec::new();
        Prng::new(8, 1000).read_to_end(&mut c).unwrap();
        assert_ne!(a, c);
    }
}
