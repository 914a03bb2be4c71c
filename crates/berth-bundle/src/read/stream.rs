//! The decompressed stream of a bundle's files: zstd on its own thread, a few MiB ahead.

use std::io::{self, Read};
use std::path::PathBuf;

use crate::BundleError;
use crate::parts::PartsReader;

pub(super) fn decoder(
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
pub(super) struct ReadAhead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    pub(super) fn new(mut inner: impl Read + Send + 'static) -> ReadAhead {
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

pub(super) fn compressed_size(parts: &[PathBuf]) -> u64 {
    parts
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}
