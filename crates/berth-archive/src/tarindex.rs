//! A tar file indexed once (name → byte range), read by positional reads.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use berth_oci::ByteStream;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::ArchiveError;

const BLOCK: u64 = 512;
/// Bytes per read of a streamed blob.
const CHUNK: u64 = 256 << 10;
/// Links followed when resolving a name.
const MAX_LINKS: usize = 16;

/// How the archive file itself is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// What the first bytes of a file say it is.
pub(crate) fn sniff(head: &[u8]) -> Result<Compression, &'static str> {
    match head {
        [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Err("xz"),
        [b'B', b'Z', b'h', ..] => Err("bzip2"),
        _ => Ok(Compression::None),
    }
}

#[derive(Clone, Debug)]
enum Node {
    File {
        offset: u64,
        size: u64,
    },
    /// A symbolic or hard link, its target already made an archive-root-relative name.
    Link(String),
}

/// A byte range of the tar file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub offset: u64,
    pub size: u64,
}

/// An indexed tar (the archive itself, or its decompressed copy in an anonymous temp file).
pub(crate) struct TarIndex {
    name: String,
    file: Arc<File>,
    nodes: BTreeMap<String, Node>,
}

/// A tar entry name made archive-root-relative (`./a//b/` → `a/b`), or why it is refused:
/// it is absolute, has a `..` component, or has a component `refuse` gives a reason for.
/// The reason reads after the entry's name (`has an absolute path`).
pub fn relative_entry_name(
    raw: &str,
    refuse: impl Fn(&str) -> Option<&'static str>,
) -> Result<String, &'static str> {
    if raw.starts_with('/') {
        return Err("has an absolute path");
    }
    let mut parts = Vec::new();
    for p in raw.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err("has a `..` path component"),
            p => match refuse(p) {
                Some(why) => return Err(why),
                None => parts.push(p),
            },
        }
    }
    Ok(parts.join("/"))
}

/// [`relative_entry_name`] of an archive's entry.
fn normalize(archive: &str, raw: &str) -> Result<String, ArchiveError> {
    relative_entry_name(raw, |_| None).map_err(|why| ArchiveError::hostile(archive, raw, why))
}

/// Resolves a symbolic link target relative to the link's directory, within the archive.
fn resolve_symlink(archive: &str, link: &str, target: &str) -> Result<String, ArchiveError> {
    if target.starts_with('/') {
        return Err(ArchiveError::hostile(
            archive,
            link,
            format!("is a symbolic link to the absolute path `{target}`"),
        ));
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ArchiveError::hostile(
                        archive,
                        link,
                        format!("is a symbolic link leaving the archive (`{target}`)"),
                    ));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

impl TarIndex {
    /// Opens and indexes `path` (blocking). `name` is used in messages.
    pub(crate) fn open(path: &Path, name: &str) -> Result<TarIndex, ArchiveError> {
        let mut file =
            File::open(path).map_err(|e| ArchiveError::io(name, "opening the archive", e))?;
        let mut head = [0u8; 6];
        let n = read_up_to(&mut file, &mut head)
            .map_err(|e| ArchiveError::io(name, "reading the archive", e))?;
        if n == 0 {
            return Err(ArchiveError::invalid(
                name,
                "the file is empty: not an archive",
            ));
        }
        let compression = sniff(&head[..n]).map_err(|alg| {
            ArchiveError::invalid(
                name,
                format!("the archive is compressed with {alg}, which Berth does not read; decompress it first (gzip and zstd are read)"),
            )
        })?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| ArchiveError::io(name, "reading the archive", e))?;
        let file = match compression {
            Compression::None => file,
            Compression::Gzip => decompress(
                name,
                flate2::read::MultiGzDecoder::new(io::BufReader::new(file)),
                "gzip",
            )?,
            Compression::Zstd => {
                let d = zstd::stream::read::Decoder::new(file)
                    .map_err(|e| ArchiveError::io(name, "starting zstd", e))?;
                decompress(name, d, "zstd")?
            }
        };
        let nodes = index(name, &file)?;
        Ok(TarIndex {
            name: name.to_string(),
            file: Arc::new(file),
            nodes,
        })
    }

    /// Every regular file's name (links not included), sorted.
    pub(crate) fn files(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .iter()
            .filter(|(_, n)| matches!(n, Node::File { .. }))
            .map(|(k, _)| k.as_str())
    }

    /// The byte range of `name` (a path as in `manifest.json`; links are followed).
    pub(crate) fn find(&self, name: &str) -> Result<Option<Range>, ArchiveError> {
        let mut cur = normalize(&self.name, name)?;
        for _ in 0..MAX_LINKS {
            match self.nodes.get(&cur) {
                None => return Ok(None),
                Some(Node::File { offset, size }) => {
                    return Ok(Some(Range {
                        offset: *offset,
                        size: *size,
                    }));
                }
                Some(Node::Link(t)) => cur = t.clone(),
            }
        }
        Err(ArchiveError::hostile(
            &self.name,
            name,
            format!("is a chain of more than {MAX_LINKS} links"),
        ))
    }

    /// Like [`TarIndex::find`], an error when absent.
    pub(crate) fn require(&self, name: &str, what: &str) -> Result<Range, ArchiveError> {
        self.find(name)?.ok_or_else(|| {
            ArchiveError::invalid(&self.name, format!("{what} `{name}` is not in the archive"))
        })
    }

    /// Reads a small entry whole (at most `max` bytes).
    pub(crate) fn read(&self, r: Range, what: &str, max: u64) -> Result<Vec<u8>, ArchiveError> {
        if r.size > max {
            return Err(ArchiveError::invalid(
                &self.name,
                format!(
                    "{what} is {} bytes, more than the {max} Berth accepts",
                    r.size
                ),
            ));
        }
        let mut buf = vec![0u8; r.size as usize];
        read_exact_at(&self.file, &mut buf, r.offset)
            .map_err(|e| ArchiveError::io(&self.name, format!("reading {what}"), e))?;
        Ok(buf)
    }

    /// A blocking reader of the range.
    /// Reads and parses the archive's top-level JSON file `file` (`index.json` for an
    /// oci-archive, `manifest.json` for a docker-archive). When it is missing but the other
    /// format's file (`other`) is there, the error says to use `other_transport` instead.
    pub(crate) fn read_top_json(
        &self,
        name: &str,
        file: &str,
        (this_transport, other, other_transport): (&str, &str, &str),
        max: u64,
    ) -> Result<serde_json::Value, ArchiveError> {
        let Some(r) = self.find(file)? else {
            let hint = if self.find(other)?.is_some() {
                format!("; it has {other}: read it as {other_transport}:FILE")
            } else {
                String::new()
            };
            return Err(ArchiveError::invalid(
                name,
                format!("there is no {file}: this is not a valid {this_transport}{hint}"),
            ));
        };
        let bytes = self.read(r, file, max)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ArchiveError::invalid(name, format!("{file} is not valid JSON: {e}")))
    }

    pub(crate) fn reader(&self, r: Range) -> RangeReader {
        RangeReader {
            file: self.file.clone(),
            pos: r.offset,
            left: r.size,
        }
    }

    /// The range as a stream of chunks; each read runs on a blocking thread.
    pub(crate) fn stream(&self, r: Range) -> ByteStream {
        let start = (self.file.clone(), r.offset, r.size);
        futures_util::stream::try_unfold(start, |(file, pos, left)| async move {
            if left == 0 {
                return Ok(None);
            }
            let n = left.min(CHUNK) as usize;
            let (file, buf) = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                read_exact_at(&file, &mut buf, pos).map(|()| (file, buf))
            })
            .await
            .map_err(io::Error::other)??;
            Ok(Some((
                Bytes::from(buf),
                (file, pos + n as u64, left - n as u64),
            )))
        })
        .boxed()
    }
}

/// A `Read` over a byte range of a shared file (positional reads: no shared offset).
pub(crate) struct RangeReader {
    file: Arc<File>,
    pos: u64,
    left: u64,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = read_at(&self.file, &mut buf[..n], self.pos)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive file ended early",
            ));
        }
        self.pos += got as u64;
        self.left -= got as u64;
        Ok(got)
    }
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, pos)
}

#[cfg(windows)]
fn read_at(f: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, pos)
}

fn read_exact_at(f: &File, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match read_at(f, buf, pos) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the archive file ended early",
                ));
            }
            Ok(n) => {
                buf = &mut buf[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Decompresses a whole archive into an anonymous temporary file.
fn decompress(name: &str, mut r: impl Read, alg: &str) -> Result<File, ArchiveError> {
    let mut tmp = tempfile::tempfile().map_err(|e| {
        ArchiveError::io(
            name,
            "creating a temporary file in the system temporary directory ($TMPDIR) for the decompressed archive",
            e,
        )
    })?;
    io::copy(&mut r, &mut tmp).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::InvalidData
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::Other => ArchiveError::invalid(
            name,
            format!("the {alg} stream is corrupt or truncated: {e}"),
        ),
        _ => ArchiveError::io(
            name,
            format!("decompressing ({alg}) into a temporary file"),
            e,
        ),
    })?;
    Ok(tmp)
}

/// One pass over the headers: name → range or link.
fn index(name: &str, file: &File) -> Result<BTreeMap<String, Node>, ArchiveError> {
    let len = file
        .metadata()
        .map_err(|e| ArchiveError::io(name, "reading the archive's size", e))?
        .len();
    let corrupt = |e: io::Error| {
        ArchiveError::invalid(
            name,
            format!("not a valid tar archive (corrupt or truncated): {e}"),
        )
    };
    let mut seekable = file;
    seekable.seek(SeekFrom::Start(0)).map_err(corrupt)?;
    let mut archive = tar::Archive::new(seekable);
    let mut nodes = BTreeMap::new();
    let mut end = 0u64;
    let mut count = 0usize;
    for entry in archive.entries_with_seek().map_err(corrupt)? {
        let entry = entry.map_err(corrupt)?;
        count += 1;
        let raw = String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| {
            ArchiveError::hostile(
                name,
                &String::from_utf8_lossy(e.as_bytes()),
                "has a name that is not UTF-8",
            )
        })?;
        let offset = entry.raw_file_position();
        let size = entry.size();
        let data_end = offset
            .checked_add(size)
            .ok_or_else(|| ArchiveError::hostile(name, &raw, "has an impossible size"))?;
        if data_end > len {
            return Err(ArchiveError::invalid(
                name,
                format!(
                    "entry `{raw}` needs {size} bytes at offset {offset}, but the file is {len} bytes: the archive is truncated"
                ),
            ));
        }
        end = data_end.div_ceil(BLOCK) * BLOCK;
        let kind = entry.header().entry_type();
        let key = normalize(name, &raw)?;
        let node = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => Node::File { offset, size },
            tar::EntryType::Directory | tar::EntryType::XGlobalHeader => continue,
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .ok_or_else(|| {
                        ArchiveError::hostile(name, &raw, "is a link without a target")
                    })?;
                let resolved = if kind == tar::EntryType::Symlink {
                    resolve_symlink(name, &raw, &target)?
                } else {
                    // A hard link names another entry of the archive.
                    normalize(name, &target).map_err(|_| {
                        ArchiveError::hostile(
                            name,
                            &raw,
                            format!("is a hard link to `{target}`, outside the archive"),
                        )
                    })?
                };
                Node::Link(resolved)
            }
            other => {
                return Err(ArchiveError::hostile(
                    name,
                    &raw,
                    format!("has type {other:?} (a device, FIFO, sparse or unknown entry)"),
                ));
            }
        };
        if key.is_empty() {
            continue;
        }
        if nodes.insert(key.clone(), node).is_some() {
            return Err(ArchiveError::hostile(name, &raw, "appears twice"));
        }
    }
    if count == 0 {
        return Err(ArchiveError::invalid(
            name,
            "not a tar archive (no entries)",
        ));
    }
    // The end-of-archive marker (two zero blocks) must follow the last entry.
    let mut trailer = [0u8; 2 * BLOCK as usize];
    if end + trailer.len() as u64 > len
        || read_exact_at(file, &mut trailer, end).is_err()
        || trailer.iter().any(|b| *b != 0)
    {
        return Err(ArchiveError::invalid(
            name,
            "the tar end-of-archive marker is missing after the last entry: the archive is truncated",
        ));
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_and_escapes_refused() {
        assert_eq!(
            normalize("a", "./blobs//sha256/x/").unwrap(),
            "blobs/sha256/x"
        );
        assert!(normalize("a", "../x").is_err());
        assert!(normalize("a", "blobs/../../x").is_err());
        assert!(normalize("a", "/etc/passwd").is_err());
        assert_eq!(
            resolve_symlink("a", "abc/layer.tar", "../def/layer.tar").unwrap(),
            "def/layer.tar"
        );
        assert!(resolve_symlink("a", "abc/layer.tar", "../../x").is_err());
        assert!(resolve_symlink("a", "x", "/etc/passwd").is_err());
    }

    #[test]
    fn magic_bytes_decide() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Ok(Compression::Gzip));
        assert_eq!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Ok(Compression::Zstd));
        assert_eq!(sniff(b"index.json"), Ok(Compression::None));
        assert_eq!(sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Err("xz"));
    }
}
