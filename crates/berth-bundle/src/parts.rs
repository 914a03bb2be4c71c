//! Split bundles: `B.tar.zst.part00`, `.part01`, … hold consecutive byte ranges of the one
//! compressed stream. Readers take `B.tar.zst` or `B.tar.zst.part00` and see one stream.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::BundleError;

/// The name of part `n` of `base`.
pub fn part_path(base: &Path, n: usize) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(format!(".part{n:02}"));
    PathBuf::from(s)
}

/// The files that make up the bundle `path` names, in order: the file itself, or (when it
/// does not exist, or names `.part00`) every consecutive `.partNN`.
pub fn resolve(path: &Path) -> Result<Vec<PathBuf>, BundleError> {
    let name = path.display().to_string();
    let s = path.to_string_lossy();
    let base = match s.strip_suffix(".part00") {
        Some(b) => PathBuf::from(b),
        None if path.is_file() => return Ok(vec![path.to_path_buf()]),
        None => path.to_path_buf(),
    };
    let mut parts = Vec::new();
    while part_path(&base, parts.len()).is_file() {
        parts.push(part_path(&base, parts.len()));
    }
    if parts.is_empty() {
        return Err(BundleError::usage(
            &name,
            format!(
                "no such bundle: neither {} nor {} exists",
                base.display(),
                part_path(&base, 0).display()
            ),
        ));
    }
    Ok(parts)
}

/// The parts of a bundle read as one stream.
pub struct PartsReader {
    parts: Vec<PathBuf>,
    next: usize,
    current: Option<File>,
}

impl PartsReader {
    pub fn open(parts: Vec<PathBuf>) -> PartsReader {
        PartsReader {
            parts,
            next: 0,
            current: None,
        }
    }
}

impl Read for PartsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some(p) = self.parts.get(self.next) else {
                    return Ok(0);
                };
                let f = File::open(p)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
                self.current = Some(f);
                self.next += 1;
            }
            let n = self.current.as_mut().expect("open part").read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.current = None;
        }
    }
}

/// Writes a stream into `base` (no split) or into parts of at most `split` bytes. Files are
/// written under temporary names ([`berth_atomic`]) and renamed by [`SplitWriter::finish`],
/// which also removes parts of an earlier, longer bundle of the same name. Dropped before
/// that, every file it started is removed.
pub struct SplitWriter {
    base: PathBuf,
    split: Option<u64>,
    /// Every file written to the end, durable under its temporary name.
    done: Vec<berth_atomic::Synced>,
    current: Option<io::BufWriter<berth_atomic::AtomicFile>>,
    /// How many files were started.
    started: usize,
    written: u64,
}

/// An [`io::Error`] that keeps the atomic write's step and path in its message.
fn atomic_io(e: berth_atomic::Error) -> io::Error {
    io::Error::new(e.source.kind(), e)
}

impl SplitWriter {
    pub fn create(base: &Path, split: Option<u64>) -> Result<SplitWriter, BundleError> {
        if split == Some(0) {
            return Err(BundleError::usage(
                &base.display().to_string(),
                "--split-size must be more than 0",
            ));
        }
        Ok(SplitWriter {
            base: base.to_path_buf(),
            split,
            done: Vec::new(),
            current: None,
            started: 0,
            written: 0,
        })
    }

    /// Flushes and fsyncs the file being written.
    fn close_current(&mut self) -> io::Result<()> {
        if let Some(w) = self.current.take() {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            self.done.push(f.sync().map_err(atomic_io)?);
        }
        Ok(())
    }

    fn open_next(&mut self) -> io::Result<()> {
        self.close_current()?;
        let final_path = match self.split {
            Some(_) => part_path(&self.base, self.started),
            None => self.base.clone(),
        };
        let f = berth_atomic::Options::new()
            .create(&final_path)
            .map_err(atomic_io)?;
        self.started += 1;
        self.current = Some(io::BufWriter::with_capacity(1 << 20, f));
        self.written = 0;
        Ok(())
    }

    /// Flushes, fsyncs and renames every file into place; returns the final paths.
    pub fn finish(mut self) -> io::Result<Vec<PathBuf>> {
        if self.started == 0 {
            self.open_next()?;
        }
        self.close_current()?;
        let mut files = Vec::new();
        for f in std::mem::take(&mut self.done) {
            files.push(f.target().to_path_buf());
            f.rename().map_err(atomic_io)?;
        }
        // Stale parts of an earlier bundle, and the other form of the same name.
        if self.split.is_some() {
            let _ = std::fs::remove_file(&self.base);
            let mut n = files.len();
            while part_path(&self.base, n).is_file() {
                std::fs::remove_file(part_path(&self.base, n))?;
                n += 1;
            }
        } else {
            let mut n = 0;
            while part_path(&self.base, n).is_file() {
                std::fs::remove_file(part_path(&self.base, n))?;
                n += 1;
            }
        }
        berth_atomic::sync_dir(berth_atomic::parent_dir(&self.base)).map_err(atomic_io)?;
        Ok(files)
    }
}

impl Write for SplitWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let room = match self.split {
            Some(limit) => {
                if self.current.is_none() || self.written >= limit {
                    self.open_next()?;
                }
                (limit - self.written).min(buf.len() as u64) as usize
            }
            None => {
                if self.current.is_none() {
                    self.open_next()?;
                }
                buf.len()
            }
        };
        let n = self.current.as_mut().expect("open").write(&buf[..room])?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Parses `3G`, `500M`, `1.5GiB`, `4096` (bytes). K/M/G/T are powers of 1024.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}`; write a size such as 3G, 700M or 4096"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write a size such as 3G, 700M or 4096"))?;
    let bytes = (n * mult as f64).floor();
    if !(1.0..=1.8e19).contains(&bytes) {
        return Err(format!("`{s}`: the size must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("3G").unwrap(), 3 << 30);
        assert_eq!(parse_size("700m").unwrap(), 700 << 20);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("0").is_err());
        assert!(parse_size("3X").is_err());
        assert!(parse_size("G").is_err());
    }

    #[test]
    fn split_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.tar.zst");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let mut w = SplitWriter::create(&base, Some(3000)).unwrap();
        for chunk in data.chunks(777) {
            w.write_all(chunk).unwrap();
        }
        let parts = w.finish().unwrap();
        assert_eq!(parts.len(), 4);
        assert_eq!(std::fs::metadata(&parts[0]).unwrap().len(), 3000);
        for p in [&base, &parts[0]] {
            let mut back = Vec::new();
            PartsReader::open(resolve(p).unwrap())
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
        // A shorter rebuild removes the stale parts; an unsplit one removes them all.
        let mut w = SplitWriter::create(&base, Some(6000)).unwrap();
        w.write_all(&data).unwrap();
        assert_eq!(w.finish().unwrap().len(), 2);
        assert!(!part_path(&base, 2).exists());
        let mut w = SplitWriter::create(&base, None).unwrap();
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        assert!(!part_path(&base, 0).exists());
        assert_eq!(resolve(&base).unwrap(), vec![base.clone()]);
        assert!(resolve(&dir.path().join("nope.tar.zst")).is_err());
    }

    #[test]
    fn an_unfinished_bundle_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.tar.zst");
        let mut w = SplitWriter::create(&base, Some(3000)).unwrap();
        w.write_all(&[7u8; 10_000]).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
