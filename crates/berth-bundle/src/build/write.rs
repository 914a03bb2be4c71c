//! The bundle file: one deterministic tar streamed through a multi-threaded zstd encoder
//! into the output file or its parts.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use berth_reference::Digest;
use berth_transfer::OciLayout;

use super::ProfileFile;
use crate::BundleError;
use crate::manifest::{
    INDEX_ENTRY, LAYOUT_ENTRY, MANIFEST_ENTRY, OCI_LAYOUT, PROFILES_DIR, SIGNATURE_ENTRY,
};
use crate::parts::SplitWriter;
use crate::read::blob_entry;

pub(super) struct WriteJob {
    pub name: String,
    pub out: PathBuf,
    pub layout: OciLayout,
    pub manifest_bytes: Vec<u8>,
    pub signature: Option<Vec<u8>>,
    pub index: Vec<u8>,
    pub profiles: Vec<ProfileFile>,
    pub blobs: Vec<(Digest, u64)>,
    pub split: Option<u64>,
    pub level: i32,
    pub threads: u32,
}

/// A tar header as every bundle entry has it: regular file, mode 0644, mtime 0, uid/gid 0.
fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h
}

impl WriteJob {
    pub(super) fn write(self) -> Result<Vec<PathBuf>, BundleError> {
        let name = self.name.clone();
        let ioe = |what: &str| {
            let name = name.clone();
            let what = what.to_string();
            move |e: io::Error| BundleError::io(&name, what.clone(), e)
        };
        let split = SplitWriter::create(&self.out, self.split)?;
        let mut enc =
            zstd::stream::write::Encoder::new(split, self.level).map_err(ioe("starting zstd"))?;
        enc.multithread(self.threads)
            .map_err(ioe("starting zstd worker threads"))?;
        enc.include_checksum(true)
            .map_err(ioe("configuring zstd"))?;
        let mut tar = tar::Builder::new(enc);
        tar.mode(tar::HeaderMode::Deterministic);
        let small = |tar: &mut tar::Builder<_>, path: &str, bytes: &[u8]| {
            let mut h = header(bytes.len() as u64);
            tar.append_data(&mut h, path, bytes)
                .map_err(ioe(&format!("writing {path}")))
        };
        small(&mut tar, MANIFEST_ENTRY, &self.manifest_bytes)?;
        if let Some(sig) = &self.signature {
            small(&mut tar, SIGNATURE_ENTRY, sig)?;
        }
        small(&mut tar, LAYOUT_ENTRY, OCI_LAYOUT)?;
        small(&mut tar, INDEX_ENTRY, &self.index)?;
        for p in &self.profiles {
            small(&mut tar, &format!("{PROFILES_DIR}/{}", p.file), &p.bytes)?;
        }
        for (d, size) in &self.blobs {
            let entry = blob_entry(d);
            let f = std::fs::File::open(self.layout.blob_path(d))
                .map_err(ioe(&format!("opening staged {entry}")))?;
            let mut h = header(*size);
            // Exactly `size` bytes, read in large chunks.
            let r = io::BufReader::with_capacity(1 << 20, f).take(*size);
            tar.append_data(&mut h, &entry, r)
                .map_err(ioe(&format!("writing {entry}")))?;
        }
        let enc = tar.into_inner().map_err(ioe("finishing the tar stream"))?;
        let mut split = enc.finish().map_err(ioe("finishing the zstd stream"))?;
        split.flush().map_err(ioe("writing the bundle"))?;
        split.finish().map_err(ioe("writing the bundle"))
    }
}
