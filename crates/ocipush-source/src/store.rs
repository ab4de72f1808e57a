//! Where a source's files live: a directory (OCI layout) or a tar archive read in place. Both
//! answer the same question — "give me a fresh reader for this file" — so every open starts the
//! content over, which is what a retried upload needs.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::SourceError;
use crate::tar_index::{normalize, read_up_to, TarIndex};

/// Opens files of a source by their path relative to the source's root.
pub trait BlobReader: Send + Sync {
    /// A fresh reader over the whole file.
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, SourceError>;
    /// Reads a small file (JSON) whole; refuses files over `limit` bytes.
    fn read_small(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError>;
    /// Does the file exist?
    fn exists(&self, path: &str) -> bool;
    /// The size of the file, if it exists.
    fn size(&self, path: &str) -> Option<u64>;
    /// The first bytes of the file (up to 4, zero-padded), to sniff its compression.
    fn head(&self, path: &str) -> Result<[u8; 4], SourceError>;
    /// Bytes of the file fetched over the network so far (a registry source's), counting
    /// every read of it; 0 for files on this machine.
    fn fetched(&self, _path: &str) -> u64 {
        0
    }
}

/// Files of a directory tree.
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    fn resolve(&self, path: &str) -> Result<PathBuf, SourceError> {
        // Paths come from manifests and index.json: never let one climb out of the layout.
        let rel = normalize(path).ok_or_else(|| SourceError::Corrupt {
            path: self.root.clone(),
            reason: format!("path `{path}` points outside the layout"),
        })?;
        Ok(self.root.join(rel))
    }
}

impl BlobReader for DirStore {
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, SourceError> {
        let full = self.resolve(path)?;
        match File::open(&full) {
            Ok(f) => Ok(Box::new(BufReader::with_capacity(256 * 1024, f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SourceError::MissingEntry {
                path: self.root.clone(),
                entry: path.to_string(),
            }),
            Err(e) => Err(SourceError::io(full, e)),
        }
    }

    fn read_small(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        let full = self.resolve(path)?;
        let size = self.size(path).ok_or_else(|| SourceError::MissingEntry {
            path: self.root.clone(),
            entry: path.to_string(),
        })?;
        if size > limit {
            return Err(SourceError::Corrupt {
                path: full,
                reason: format!("{size} bytes, more than expected for a JSON document"),
            });
        }
        std::fs::read(&full).map_err(|e| SourceError::io(full, e))
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).map(|p| p.is_file()).unwrap_or(false)
    }

    fn size(&self, path: &str) -> Option<u64> {
        let meta = std::fs::metadata(self.resolve(path).ok()?).ok()?;
        meta.is_file().then_some(meta.len())
    }

    fn head(&self, path: &str) -> Result<[u8; 4], SourceError> {
        let mut head = [0u8; 4];
        let mut reader = self.open(path)?;
        read_up_to(&mut reader, &mut head).map_err(|e| SourceError::io(self.root.join(path), e))?;
        Ok(head)
    }
}

/// Files inside a tar archive (plain or gzipped), read in place.
#[derive(Debug)]
pub struct ArchiveStore {
    index: TarIndex,
}

impl ArchiveStore {
    pub fn new(index: TarIndex) -> Self {
        Self { index }
    }
}

impl BlobReader for ArchiveStore {
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, SourceError> {
        self.index.open(path)
    }

    fn read_small(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        self.index.read_small(path, limit)
    }

    fn exists(&self, path: &str) -> bool {
        self.index.contains(path)
    }

    fn size(&self, path: &str) -> Option<u64> {
        self.index.lookup(path).ok().map(|e| e.size)
    }

    fn head(&self, path: &str) -> Result<[u8; 4], SourceError> {
        Ok(self.index.lookup(path)?.head)
    }
}

/// A source without files of its own (a daemon: its bytes come from an export stream).
#[derive(Debug)]
pub struct NoFiles;

impl BlobReader for NoFiles {
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, SourceError> {
        Err(SourceError::Reread {
            path: path.to_string(),
        })
    }

    fn read_small(&self, path: &str, _limit: u64) -> Result<Vec<u8>, SourceError> {
        self.open(path).map(|_| Vec::new())
    }

    fn exists(&self, _path: &str) -> bool {
        false
    }

    fn size(&self, _path: &str) -> Option<u64> {
        None
    }

    fn head(&self, path: &str) -> Result<[u8; 4], SourceError> {
        self.open(path).map(|_| [0; 4])
    }
}
