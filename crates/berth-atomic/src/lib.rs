//! Atomic, durable file writes, the one way Berth puts a file in place: the content goes to
//! a temporary file created with `O_EXCL` beside the target (or in a directory the caller
//! names, on the same file system), is fsynced, renamed over the target, and the directory
//! is fsynced. A crash or an error at any moment leaves either the old file or the complete
//! new one, never a mix; the temporary file is removed on every failure and when a writer is
//! dropped without being committed.
//!
//! - [`write`]: bytes to a path, with the defaults.
//! - [`Options`]: a file mode (0600 for secrets; set past the umask), the directory of the
//!   temporary file, then [`Options::write`] or [`Options::create`] for an [`AtomicFile`]
//!   to stream into.
//! - [`AtomicFile::commit`] puts a streamed file in place; [`AtomicFile::sync`] makes it
//!   durable without renaming yet ([`Synced`]), for writers that put several files in place
//!   together.
//!
//! - [`temp_dir_beside`]: a directory to build something in before renaming it into place.
//!
//! Every error is an [`Error`] naming the step and the path, with the I/O error as source.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What failed, where: `{step} {path}: {source}`.
#[derive(Debug, thiserror::Error)]
#[error("{step} {}: {source}", path.display())]
pub struct Error {
    /// The step, in words (`writing`, `renaming into place`, …).
    pub step: &'static str,
    /// The file or directory it failed on (the target, not the temporary file, for the
    /// steps the caller thinks of as writing the target).
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl Error {
    fn new(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error { step, path, source }
    }
}

/// Writes `bytes` to `path` atomically with the defaults of [`Options`].
pub fn write(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), Error> {
    Options::new().write(path, bytes)
}

/// Replaces the file at `path` atomically, keeping its permission bits (a new file gets
/// the defaults of [`Options`]).
pub fn replace(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let path = path.as_ref();
    let opts = match std::fs::metadata(path) {
        Ok(meta) => Options::new().mode(meta.permissions().mode() & 0o7777),
        Err(_) => Options::new(),
    };
    opts.write(path, bytes)
}

/// How to write: the file's mode and where the temporary file goes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    mode: Option<u32>,
    temp_dir: Option<PathBuf>,
}

impl Options {
    /// Mode from the umask; the temporary file beside the target; missing directories
    /// above the target created (each fsynced into its parent).
    pub fn new() -> Options {
        Options::default()
    }

    /// The file's permission bits (Unix), set on the temporary file whatever the umask.
    pub fn mode(mut self, mode: u32) -> Options {
        self.mode = Some(mode);
        self
    }

    /// Creates the temporary file in `dir` instead of beside the target (`dir` must be on
    /// the same file system; e.g. a store's own `tmp/`, which it cleans on start).
    pub fn temp_dir(mut self, dir: impl Into<PathBuf>) -> Options {
        self.temp_dir = Some(dir.into());
        self
    }

    /// Writes `bytes` to `path` atomically.
    pub fn write(&self, path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), Error> {
        let mut f = self.create(path)?;
        f.write_all(bytes)
            .map_err(Error::new("writing", &f.target))?;
        f.commit()
    }

    /// Starts writing `path`: a new temporary file, put in place by [`AtomicFile::commit`].
    pub fn create(&self, path: impl AsRef<Path>) -> Result<AtomicFile, Error> {
        let target = path.as_ref().to_path_buf();
        let dir = parent_dir(&target).to_path_buf();
        create_dir_all_synced(&dir)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Error::new("writing", &target)(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the path does not name a file",
                ))
            })?;
        let temp_dir = self.temp_dir.clone().unwrap_or_else(|| dir.clone());
        let (file, temp) = self.create_temp(&temp_dir, &name, &target)?;
        Ok(AtomicFile {
            file: Some(file),
            temp,
            target,
            dir,
        })
    }

    fn create_temp(
        &self,
        temp_dir: &Path,
        name: &str,
        target: &Path,
    ) -> Result<(File, PathBuf), Error> {
        static N: AtomicU64 = AtomicU64::new(0);
        let mut tries = 0;
        loop {
            let temp = temp_dir.join(format!(
                ".{name}.tmp-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let mut opts = OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            if let Some(mode) = self.mode {
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
            }
            match opts.open(&temp) {
                Ok(f) => {
                    #[cfg(unix)]
                    if let Some(mode) = self.mode {
                        use std::os::unix::fs::PermissionsExt;
                        if let Err(e) = f.set_permissions(std::fs::Permissions::from_mode(mode)) {
                            drop(f);
                            let _ = std::fs::remove_file(&temp);
                            return Err(Error::new("setting the mode of", target)(e));
                        }
                    }
                    return Ok((f, temp));
                }
                // A leftover of a process that had the same id: take the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
                Err(e) => return Err(Error::new("creating a temporary file for", target)(e)),
            }
        }
    }
}

/// A file being written under a temporary name; [`commit`](Self::commit) puts it in place.
/// Dropped before that, the temporary file is removed and the target is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    temp: PathBuf,
    target: PathBuf,
    dir: PathBuf,
}

impl AtomicFile {
    /// The file the content goes to (e.g. to read its metadata).
    pub fn file(&self) -> &File {
        self.file.as_ref().expect("open until commit or sync")
    }

    /// Where the file will be.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// fsyncs and closes the file without renaming it yet.
    pub fn sync(mut self) -> Result<Synced, Error> {
        let file = self.file.take().expect("open until commit or sync");
        file.sync_all()
            .map_err(Error::new("writing", &self.target))?;
        drop(file);
        Ok(Synced {
            temp: std::mem::take(&mut self.temp),
            target: std::mem::take(&mut self.target),
            dir: std::mem::take(&mut self.dir),
        })
    }

    /// fsyncs the file, renames it over the target and fsyncs the directory.
    pub fn commit(self) -> Result<(), Error> {
        self.sync()?.commit()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("open").write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.file.as_mut().expect("open").write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// A durable temporary file not yet in place. Dropped without
/// [`rename`](Self::rename) or [`commit`](Self::commit), it is removed.
#[derive(Debug)]
pub struct Synced {
    temp: PathBuf,
    target: PathBuf,
    dir: PathBuf,
}

impl Synced {
    /// Where the file will be.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the file over the target; returns the directory, to fsync with
    /// [`sync_dir`] once every file of a batch is renamed.
    pub fn rename(mut self) -> Result<PathBuf, Error> {
        let temp = std::mem::take(&mut self.temp);
        if let Err(e) = std::fs::rename(&temp, &self.target) {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::new("renaming into place", &self.target)(e));
        }
        Ok(std::mem::take(&mut self.dir))
    }

    /// Renames the file over the target and fsyncs the directory.
    pub fn commit(self) -> Result<(), Error> {
        let dir = self.rename()?;
        sync_dir(&dir)
    }
}

impl Drop for Synced {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// The directory of `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsyncs a directory, so that a rename or create in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::new("syncing the directory", dir))
}

/// Creates `dir` and its missing parents, fsyncing each new directory's parent, so that
/// the directories survive a crash with what is then written in them.
pub fn create_dir_all_synced(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = vec![];
    let mut d = dir;
    while !d.is_dir() {
        missing.push(d.to_path_buf());
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p,
            _ => break,
        }
    }
    std::fs::create_dir_all(dir).map_err(Error::new("creating the directory", dir))?;
    for m in missing.iter().rev() {
        sync_dir(parent_dir(m))?;
    }
    Ok(())
}

/// A new temporary directory beside `target` (`.NAME.berth-WHAT-XXXXXX`, on the same file
/// system, so what is built in it can be renamed into place), removed when dropped.
pub fn temp_dir_beside(target: &Path, what: &str) -> Result<tempfile::TempDir, Error> {
    let parent = parent_dir(target);
    let name = target
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}.berth-{what}-"))
        .tempdir_in(parent)
        .map_err(Error::new("creating a temporary directory in", parent))
}

#[cfg(test)]
mod tests;
