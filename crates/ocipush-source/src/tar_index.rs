//! An index of a tar archive's entries (plain or gzipped), built in one streaming pass, so blobs
//! can later be read in place: by seeking in a plain tar, or by re-decompressing up to the entry
//! in a gzipped one. Small files (manifests, configs) are kept in memory during that pass, which
//! spares a gzipped archive a second decompression to read its JSON.
//!
//! Entry names are normalised (`./a//b` -> `a/b`); names that climb out of the archive root are
//! refused, symlinks and hard links are resolved within the archive, never on the host.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use ocipush_oci::Compression;

use crate::error::SourceError;
use crate::tar_guard::{ExtensionTooLarge, TarHeaderGuard};

/// Files up to this size are kept in memory while indexing.
const SMALL_FILE: u64 = 256 * 1024;
/// Total bytes of small files kept, so a hostile archive cannot make the index large.
const SMALL_FILES_BUDGET: u64 = 32 * 1024 * 1024;
/// Symlink chains longer than this are treated as loops.
const MAX_LINK_DEPTH: usize = 16;

#[derive(Debug, Clone)]
enum Entry {
    File {
        offset: u64,
        size: u64,
        head: [u8; 4],
        bytes: Option<std::sync::Arc<[u8]>>,
    },
    Link(String),
}

/// Where a regular file's content lives in the (decompressed) archive stream.
#[derive(Debug, Clone)]
pub struct FileEntry {
    pub offset: u64,
    pub size: u64,
    /// The first bytes of the content (zero-padded), recorded while indexing so compression can
    /// be sniffed without reading a gzipped archive again.
    pub head: [u8; 4],
    pub bytes: Option<std::sync::Arc<[u8]>>,
}

#[derive(Debug)]
pub struct TarIndex {
    path: PathBuf,
    gzipped: bool,
    entries: HashMap<String, Entry>,
}

impl TarIndex {
    /// Reads the archive once, start to end, recording every entry.
    pub fn build(path: &Path) -> Result<TarIndex, SourceError> {
        let mut file = File::open(path).map_err(|e| SourceError::io(path, e))?;
        let mut head = [0u8; 4];
        let n = read_up_to(&mut file, &mut head).map_err(|e| SourceError::io(path, e))?;
        let gzipped = Compression::sniff(&head[..n]) == Compression::Gzip;
        let file = File::open(path).map_err(|e| SourceError::io(path, e))?;
        let scanned = if gzipped {
            let mut archive =
                tar::Archive::new(TarHeaderGuard::new(GzDecoder::new(BufReader::new(file))));
            let scanned = archive.entries().map_err(|e| e.to_string()).and_then(scan);
            // tar stops reading at its end-of-archive blocks; reading on to the end makes the
            // decoder check the gzip trailer (CRC-32 and length), so a damaged file is refused
            // as gunzip would refuse it, not pushed because the damage missed every entry.
            scanned.and_then(|entries| {
                io::copy(&mut archive.into_inner().into_inner(), &mut io::sink())
                    .map_err(|e| format!("damaged gzip stream: {e}"))?;
                Ok(entries)
            })
        } else {
            // A plain tar is indexed by seeking over content: a re-push of a large unchanged
            // archive reads its headers, not its layers.
            let mut archive = tar::Archive::new(TarHeaderGuard::new(BufReader::new(file)));
            archive
                .entries_with_seek()
                .map_err(|e| e.to_string())
                .and_then(scan)
        };
        let entries = scanned
            .and_then(|entries| {
                if gzipped {
                    return Ok(entries);
                }
                // Seeking past the end does not fail: check every entry fits in the file.
                let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
                match entries.iter().find_map(|(name, e)| match e {
                    Entry::File { offset, size, .. } if offset + size > len => Some(name),
                    _ => None,
                }) {
                    Some(name) => Err(format!(
                        "archive truncated: entry `{name}` ends past the end of the file"
                    )),
                    None => Ok(entries),
                }
            })
            .map_err(|reason| SourceError::Corrupt {
                path: path.to_path_buf(),
                reason,
            })?;
        if entries.is_empty() {
            return Err(SourceError::NotAnImage {
                path: path.to_path_buf(),
                reason: "not a tar archive (no entries)".into(),
            });
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            gzipped,
            entries,
        })
    }

    #[cfg(test)]
    pub fn is_gzipped(&self) -> bool {
        self.gzipped
    }

    pub fn contains(&self, name: &str) -> bool {
        self.lookup(name).is_ok()
    }

    /// Finds a regular file by name, following links.
    pub fn lookup(&self, name: &str) -> Result<FileEntry, SourceError> {
        let missing = || SourceError::MissingEntry {
            path: self.path.clone(),
            entry: name.to_string(),
        };
        let mut current = normalize(name).ok_or_else(missing)?;
        for _ in 0..MAX_LINK_DEPTH {
            match self.entries.get(&current).ok_or_else(missing)? {
                Entry::File {
                    offset,
                    size,
                    head,
                    bytes,
                } => {
                    return Ok(FileEntry {
                        offset: *offset,
                        size: *size,
                        head: *head,
                        bytes: bytes.clone(),
                    })
                }
                Entry::Link(target) => current = target.clone(),
            }
        }
        Err(SourceError::Corrupt {
            path: self.path.clone(),
            reason: format!("link loop at `{name}`"),
        })
    }

    /// Reads a whole (small) file, from memory when it was kept.
    pub fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        let entry = self.lookup(name)?;
        if entry.size > limit {
            return Err(SourceError::Corrupt {
                path: self.path.clone(),
                reason: format!("`{name}` is {} bytes, more than expected", entry.size),
            });
        }
        if let Some(bytes) = &entry.bytes {
            return Ok(bytes.to_vec());
        }
        let mut out = Vec::with_capacity(entry.size as usize);
        self.open_entry(&entry)?
            .read_to_end(&mut out)
            .map_err(|e| SourceError::io(&self.path, e))?;
        Ok(out)
    }

    /// Opens a file's content for streaming.
    pub fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, SourceError> {
        let entry = self.lookup(name)?;
        self.open_entry(&entry)
    }

    fn open_entry(&self, entry: &FileEntry) -> Result<Box<dyn Read + Send>, SourceError> {
        if let Some(bytes) = &entry.bytes {
            return Ok(Box::new(io::Cursor::new(bytes.clone())));
        }
        let file = File::open(&self.path).map_err(|e| SourceError::io(&self.path, e))?;
        let truncated = |path: &Path| SourceError::Corrupt {
            path: path.to_path_buf(),
            reason: "archive ends before an entry's content".into(),
        };
        if self.gzipped {
            // A gzip stream cannot seek: decompress and discard up to the entry.
            let mut decoder = GzDecoder::new(BufReader::with_capacity(256 * 1024, file));
            let skipped = io::copy(&mut (&mut decoder).take(entry.offset), &mut io::sink())
                .map_err(|e| SourceError::io(&self.path, e))?;
            if skipped != entry.offset {
                return Err(truncated(&self.path));
            }
            Ok(Box::new(ExactReader::new(
                decoder.take(entry.size),
                entry.size,
            )))
        } else {
            use std::io::{Seek, SeekFrom};
            let mut file = file;
            file.seek(SeekFrom::Start(entry.offset))
                .map_err(|e| SourceError::io(&self.path, e))?;
            let reader = BufReader::with_capacity(256 * 1024, file).take(entry.size);
            Ok(Box::new(ExactReader::new(reader, entry.size)))
        }
    }
}

/// Fails with `UnexpectedEof` when the stream ends before `size` bytes: a truncated archive must
/// not pass for a short blob.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
}

impl<R> ExactReader<R> {
    fn new(inner: R, size: u64) -> Self {
        Self {
            inner,
            remaining: size,
        }
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "archive truncated: {} bytes of an entry missing",
                    self.remaining
                ),
            ));
        }
        self.remaining = self.remaining.saturating_sub(n as u64);
        Ok(n)
    }
}

/// What a failed tar header read says. The tar crate's own message quotes the header's raw
/// bytes, which for a file that is no archive at all (a `/etc/passwd` given by mistake) would
/// put its contents, newlines included, into the error: name the problem instead.
fn header_error(error: &io::Error) -> String {
    if let Some(refused) = ExtensionTooLarge::find(error) {
        return refused.to_string();
    }
    match error.kind() {
        io::ErrorKind::UnexpectedEof => "archive truncated inside a tar header".into(),
        io::ErrorKind::Other | io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            "not a tar archive, or a damaged tar header".into()
        }
        _ => format!("reading the archive: {error}"),
    }
}

fn scan<R: Read>(iter: tar::Entries<'_, R>) -> Result<HashMap<String, Entry>, String> {
    let mut entries = HashMap::new();
    let mut kept = 0u64;
    for entry in iter {
        let mut entry = entry.map_err(|e| header_error(&e))?;
        let raw_name = entry
            .path()
            .map_err(|e| format!("bad entry name: {e}"))?
            .to_string_lossy()
            .into_owned();
        let Some(name) = normalize(&raw_name) else {
            // Absolute or climbing names cannot refer to anything inside the image; a well-formed
            // image never has them, and they are never resolved on the host.
            return Err(format!(
                "entry name `{raw_name}` points outside the archive"
            ));
        };
        let kind = entry.header().entry_type();
        let parsed = if kind.is_symlink() {
            let target = link_target(&entry)?;
            let parent = name.rsplit_once('/').map_or("", |(dir, _)| dir);
            let joined = if target.starts_with('/') || parent.is_empty() {
                target
            } else {
                format!("{parent}/{target}")
            };
            let resolved = normalize(&joined)
                .ok_or_else(|| format!("link `{raw_name}` points outside the archive"))?;
            Entry::Link(resolved)
        } else if kind.is_hard_link() {
            let target = link_target(&entry)?;
            let resolved = normalize(&target)
                .ok_or_else(|| format!("link `{raw_name}` points outside the archive"))?;
            Entry::Link(resolved)
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let size = entry.size();
            let offset = entry.raw_file_position();
            let mut head = [0u8; 4];
            let bytes = if size <= SMALL_FILE && kept + size <= SMALL_FILES_BUDGET {
                let mut buf = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut buf)
                    .map_err(|e| format!("truncated entry `{name}`: {e}"))?;
                if buf.len() as u64 != size {
                    return Err(format!("truncated entry `{name}`"));
                }
                kept += size;
                let n = buf.len().min(4);
                head[..n].copy_from_slice(&buf[..n]);
                Some(buf.into())
            } else {
                read_up_to(&mut entry, &mut head)
                    .map_err(|e| format!("truncated entry `{name}`: {e}"))?;
                None
            };
            Entry::File {
                offset,
                size,
                head,
                bytes,
            }
        } else {
            continue;
        };
        entries.insert(name, parsed);
    }
    Ok(entries)
}

fn link_target<R: Read>(entry: &tar::Entry<R>) -> Result<String, String> {
    entry
        .link_name()
        .map_err(|e| format!("bad link target: {e}"))?
        .map(|p| p.to_string_lossy().into_owned())
        .ok_or_else(|| "link without target".to_string())
}

/// Normalises an entry name to `a/b/c`; `None` if it is empty or leaves the archive root.
/// A leading `/` is taken as the archive root, as tar tools do when extracting.
pub(crate) fn normalize(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

/// Fills `buf` from `reader` as far as it goes; fewer bytes only at end of stream. (Layers are
/// read in whole blocks and chunks, whatever sizes the reader hands out.)
pub fn read_up_to(reader: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses_escapes() {
        assert_eq!(normalize("./a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("/blobs/x").as_deref(), Some("blobs/x"));
        assert_eq!(normalize("../etc/passwd"), None);
        assert_eq!(normalize("a/../../b"), None);
        assert_eq!(normalize("./"), None);
    }

    fn tar_with(entries: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            builder.append_data(&mut h, name, *data).unwrap();
        }
        for (name, target) in links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            builder.append_link(&mut h, name, target).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn resolves_symlinks_and_reads_big_entries_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![42u8; 300 * 1024];
        let bytes = tar_with(
            &[("blobs/sha256/aa", b"small"), ("blobs/sha256/bb", &big)],
            &[("layer1/layer.tar", "../blobs/sha256/bb")],
        );
        let path = dir.path().join("x.tar");
        std::fs::write(&path, &bytes).unwrap();
        let index = TarIndex::build(&path).unwrap();
        assert_eq!(index.read_small("./blobs/sha256/aa", 10).unwrap(), b"small");
        let mut out = Vec::new();
        index
            .open("layer1/layer.tar")
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, big);

        // Gzipped, the same content comes back through decompression.
        let gz_path = dir.path().join("x.tar.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &bytes).unwrap();
        std::fs::write(&gz_path, enc.finish().unwrap()).unwrap();
        let index = TarIndex::build(&gz_path).unwrap();
        assert!(index.is_gzipped());
        let mut out = Vec::new();
        index
            .open("layer1/layer.tar")
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, big);
    }

    #[test]
    fn refuses_links_out_of_the_archive_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evil.tar");
        std::fs::write(&path, tar_with(&[], &[("a", "../../etc/passwd")])).unwrap();
        assert!(matches!(
            TarIndex::build(&path),
            Err(SourceError::Corrupt { .. })
        ));

        let big = vec![1u8; 400 * 1024];
        let bytes = tar_with(&[("big", &big)], &[]);
        std::fs::write(&path, &bytes[..200 * 1024]).unwrap();
        assert!(matches!(
            TarIndex::build(&path),
            Err(SourceError::Corrupt { .. })
        ));
    }

    #[test]
    fn refuses_a_damaged_gzip_trailer() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar_with(&[("manifest.json", b"[]")], &[]))
            .unwrap();
        let mut bytes = gz.finish().unwrap();
        std::fs::write(&path, &bytes).unwrap();
        assert!(TarIndex::build(&path).is_ok());
        // The CRC-32 is the trailer's first 4 of 8 bytes; the entries themselves are intact.
        let crc = bytes.len() - 8;
        bytes[crc] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        match TarIndex::build(&path) {
            Err(SourceError::Corrupt { reason, .. }) => {
                assert!(reason.contains("gzip"), "{reason}")
            }
            other => panic!("a bad CRC was accepted: {:?}", other.map(|_| ())),
        }
    }
}
