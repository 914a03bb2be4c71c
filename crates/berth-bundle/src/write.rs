//! Writing blobs off the reading thread: [`BlobWriter`] takes buffers of a blob being read
//! (and hashed) and writes them on a thread of its own, so decompression, hashing and
//! writing run at the same time. With `durable`, a second thread makes every finished file
//! durable (`fsync`) while later ones are written, and pushes a big file's written part to
//! the disk every few MiB instead of all at the end. [`BlobWriter::finish`] returns only
//! once every file is written (and synced): the caller makes the files visible (renames
//! their directory into place) only after that and after they were verified.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use crate::BundleError;

/// Size of the buffers handed to the writer thread. Small enough that the data is still in
/// the CPU's caches when the writer copies it into the page cache (measured: 64 KiB gave
/// steadier and lower CPU time than 1 MiB, whose copies ran from memory).
const BUF: usize = 64 << 10;
/// How many buffers may wait for the writer thread.
const QUEUE: usize = 16;
/// A big file's written part is handed to the disk every this many bytes.
const PUSH_EVERY: u64 = 16 << 20;
/// How many finished files may wait for their fsync.
const SYNC_QUEUE: usize = 64;

enum Job {
    Create { path: PathBuf, entry: String },
    Data(Vec<u8>),
    Close,
}

enum Sync {
    /// Write back what was written so far (a file still being written).
    Push(File, String),
    /// The file is complete: make it durable.
    Done(File, String),
}

type Failure = (String, io::Error);

/// Writes files from buffers on a thread of its own (see the module).
pub(crate) struct BlobWriter {
    name: String,
    tx: Option<SyncSender<Job>>,
    free: Receiver<Vec<u8>>,
    abort: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), Failure>>>,
}

impl BlobWriter {
    /// `name` is the bundle's (for errors). `durable`: fsync every file before `finish`
    /// returns.
    pub(crate) fn new(name: &str, durable: bool) -> BlobWriter {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let (back, free) = sync_channel::<Vec<u8>>(QUEUE + 2);
        let abort = Arc::new(AtomicBool::new(false));
        let stop = abort.clone();
        let thread = std::thread::spawn(move || write_loop(rx, back, durable, stop));
        BlobWriter {
            name: name.to_string(),
            tx: Some(tx),
            free,
            abort,
            thread: Some(thread),
        }
    }

    fn send(&mut self, job: Job) -> Result<(), BundleError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread stopped: it failed.
        Err(self.join().err().unwrap_or_else(|| {
            BundleError::io(
                &self.name,
                "writing blobs",
                io::Error::other("the writer thread stopped"),
            )
        }))
    }

    fn join(&mut self) -> Result<(), BundleError> {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err((what, e)))) => Err(BundleError::io(&self.name, what, e)),
            Some(Err(_)) => Err(BundleError::io(
                &self.name,
                "writing blobs",
                io::Error::other("the writer thread panicked"),
            )),
        }
    }

    /// Writes the blob `entry` (a name for errors) read from `r` to the new file `path`.
    /// Errors reading `r` are returned as they are (`Ok(Err(_))`): the caller knows what
    /// a failed read of the stream means.
    pub(crate) fn copy(
        &mut self,
        path: PathBuf,
        entry: &str,
        r: &mut dyn Read,
    ) -> Result<io::Result<()>, BundleError> {
        self.send(Job::Create {
            path,
            entry: entry.to_string(),
        })?;
        loop {
            let mut buf = self.free.try_recv().unwrap_or_default();
            buf.resize(BUF, 0);
            let mut n = 0;
            while n < buf.len() {
                match r.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.send(Job::Close)?;
                        return Ok(Err(e));
                    }
                }
            }
            if n == 0 {
                break;
            }
            buf.truncate(n);
            self.send(Job::Data(buf))?;
        }
        self.send(Job::Close)?;
        Ok(Ok(()))
    }

    /// Waits until every file is written (and, when durable, synced).
    pub(crate) fn finish(mut self) -> Result<(), BundleError> {
        self.join()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // Not finished (an error): skip what is queued, but wait for the threads so that
        // nothing writes into a directory the caller is about to remove.
        self.abort.store(true, Ordering::Relaxed);
        let _ = self.join();
    }
}

fn write_loop(
    rx: Receiver<Job>,
    back: SyncSender<Vec<u8>>,
    durable: bool,
    abort: Arc<AtomicBool>,
) -> Result<(), Failure> {
    let syncer = durable.then(|| {
        let (tx, rx) = sync_channel::<Sync>(SYNC_QUEUE);
        let stop = abort.clone();
        (tx, std::thread::spawn(move || sync_loop(rx, stop)))
    });
    let sync_tx = syncer.as_ref().map(|(tx, _)| tx.clone());
    let written = (|| {
        // (file, entry, bytes written, bytes handed to the disk)
        let mut cur: Option<(File, String, u64, u64)> = None;
        for job in rx {
            if abort.load(Ordering::Relaxed) {
                return Ok(());
            }
            match job {
                Job::Create { path, entry } => {
                    let f =
                        File::create_new(&path).map_err(|e| (format!("creating {entry}"), e))?;
                    cur = Some((f, entry, 0, 0));
                }
                Job::Data(buf) => {
                    if let Some((f, entry, n, pushed)) = &mut cur {
                        f.write_all(&buf)
                            .map_err(|e| (format!("writing {entry}"), e))?;
                        *n += buf.len() as u64;
                        if let Some(tx) = &sync_tx
                            && *n - *pushed >= PUSH_EVERY
                        {
                            *pushed = *n;
                            // Only when the syncer has room: a push is an optimisation.
                            if let Ok(dup) = f.try_clone() {
                                match tx.try_send(Sync::Push(dup, entry.clone())) {
                                    Ok(()) | Err(TrySendError::Full(_)) => {}
                                    Err(TrySendError::Disconnected(_)) => break,
                                }
                            }
                        }
                    }
                    let _ = back.try_send(buf);
                }
                Job::Close => {
                    if let Some((f, entry, _, _)) = cur.take()
                        && let Some(tx) = &sync_tx
                        && tx.send(Sync::Done(f, entry)).is_err()
                    {
                        break;
                    }
                }
            }
        }
        Ok(())
    })();
    drop(sync_tx);
    let synced = match syncer {
        Some((tx, t)) => {
            drop(tx);
            t.join().unwrap_or_else(|_| {
                Err((
                    "syncing blobs".to_string(),
                    io::Error::other("the sync thread panicked"),
                ))
            })
        }
        None => Ok(()),
    };
    written.and(synced)
}

fn sync_loop(rx: Receiver<Sync>, abort: Arc<AtomicBool>) -> Result<(), Failure> {
    for s in rx {
        if abort.load(Ordering::Relaxed) {
            return Ok(());
        }
        match s {
            Sync::Push(f, entry) => {
                // A failure counts: the handle shares the file's error state with the one
                // of the final sync, which might not see it again.
                f.sync_data().map_err(|e| (format!("syncing {entry}"), e))?;
            }
            Sync::Done(f, entry) => {
                f.sync_all().map_err(|e| (format!("syncing {entry}"), e))?;
            }
        }
    }
    Ok(())
}
