//! Walking a `docker save` stream as it arrives, without seeking: the daemon's export is read
//! once, front to back. Small files (manifest.json, configs, legacy metadata) are kept whole;
//! big ones (layers) are handed to the caller as a reader over the entry while it streams by;
//! what was seen is kept in an [`ExportIndex`], which reads the manifest once the stream ends
//! (docker writes manifest.json after the layers).

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use crate::docker_archive::read_docker_archive;
use crate::error::SourceError;
use crate::store::BlobReader;
use crate::tar_guard::TarHeaderGuard;
use crate::tar_index::{normalize, read_up_to};
use crate::{AssembledImage, ImageContent};

/// Files up to this size are read whole: JSON documents and tiny layers.
pub const SMALL_ENTRY: u64 = 1024 * 1024;
/// Past this many bytes of small files, further ones stream like layers, so memory stays bounded.
const SMALL_TOTAL: u64 = 64 * 1024 * 1024;

/// A big file of the export while it streams by.
pub struct LargeEntry<'a> {
    /// Its path in the export, normalised (`a/b`).
    pub path: String,
    /// Its size in bytes, from the tar header.
    pub size: u64,
    /// Its first bytes, for sniffing compression.
    pub head: [u8; 4],
    /// The whole file, head included. What the visitor leaves unread is skipped.
    pub reader: &'a mut dyn Read,
}

/// What a walk saw: small files whole, big ones by size and head, links by target.
#[derive(Debug, Default)]
pub struct ExportIndex {
    small: HashMap<String, Vec<u8>>,
    large: HashMap<String, (u64, [u8; 4])>,
    links: HashMap<String, String>,
}

/// Reads the export from `reader`, calling `visit` for each big file in stream order.
pub fn walk_export(
    reader: Box<dyn Read + Send>,
    what: &str,
    mut visit: impl FnMut(LargeEntry<'_>) -> Result<(), SourceError>,
) -> Result<ExportIndex, SourceError> {
    let corrupt = |reason: String| SourceError::Daemon {
        detail: format!("{what}: the export stream is malformed: {reason}"),
    };
    let broken = |e: io::Error| SourceError::Daemon {
        detail: format!("{what}: reading the export stream: {e}"),
    };
    let mut index = ExportIndex::default();
    let mut archive = tar::Archive::new(TarHeaderGuard::new(reader));
    let mut small_total = 0u64;
    let entries = archive.entries().map_err(|e| corrupt(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(e.to_string()))?;
        let raw_path = entry
            .path()
            .map_err(|e| corrupt(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let Some(path) = normalize(&raw_path) else {
            return Err(corrupt(format!(
                "entry `{raw_path}` points outside the archive"
            )));
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let Some(link) = entry.link_name().map_err(|e| corrupt(e.to_string()))? else {
                continue;
            };
            let link = link.to_string_lossy().into_owned();
            // Symlinks are relative to their directory; hard links name an archive path.
            let joined = match path.rsplit_once('/') {
                Some((dir, _)) if kind.is_symlink() => format!("{dir}/{link}"),
                _ => link.clone(),
            };
            let Some(target) = normalize(&joined) else {
                return Err(corrupt(format!(
                    "link `{path}` -> `{link}` leaves the archive"
                )));
            };
            index.links.insert(path, target);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.size();
        if size <= SMALL_ENTRY && small_total + size <= SMALL_TOTAL {
            small_total += size;
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes).map_err(broken)?;
            if bytes.len() as u64 != size {
                return Err(broken(io::ErrorKind::UnexpectedEof.into()));
            }
            index.small.insert(path, bytes);
            continue;
        }
        let mut head = [0u8; 4];
        let got = read_up_to(&mut entry, &mut head).map_err(broken)?;
        index.large.insert(path.clone(), (size, head));
        let mut reader = Exact {
            inner: io::Cursor::new(head[..got].to_vec()).chain(&mut entry),
            left: size,
        };
        visit(LargeEntry {
            path,
            size,
            head,
            reader: &mut reader,
        })?;
        // Whatever the visitor did not want streams past unread.
        io::copy(&mut reader, &mut io::sink()).map_err(broken)?;
    }
    Ok(index)
}

/// Fails instead of ending early: a tar entry cut short by a broken stream would otherwise
/// read as a complete, shorter file.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the export stream ended {} bytes early", self.left),
            ));
        }
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

impl ExportIndex {
    /// Follows links to the file they name.
    pub fn resolve<'a>(&'a self, path: &'a str) -> &'a str {
        let mut current = path;
        for _ in 0..16 {
            match self.links.get(current) {
                Some(target) => current = target,
                None => break,
            }
        }
        current
    }

    /// Was this file streamed to the visitor (as opposed to kept whole)?
    pub fn is_large(&self, path: &str) -> bool {
        self.large.contains_key(self.resolve(path))
    }

    /// The one image of an export of one image: its config and layer files, checked against
    /// each other as for a `docker save` tarball.
    pub fn image(&self, what: &str) -> Result<AssembledImage, SourceError> {
        let origin = Path::new(what);
        let mut images = read_docker_archive(self, origin, None, what)?;
        if images.len() != 1 {
            return Err(SourceError::Daemon {
                detail: format!("{what}: the export holds {} images, not one", images.len()),
            });
        }
        match images.remove(0).content {
            ImageContent::Assembled(image) => Ok(image),
            _ => Err(SourceError::Daemon {
                detail: format!("{what}: the export is not a docker archive"),
            }),
        }
    }
}

impl BlobReader for ExportIndex {
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, SourceError> {
        match self.small.get(self.resolve(path)) {
            Some(bytes) => Ok(Box::new(io::Cursor::new(bytes.clone()))),
            None => Err(SourceError::Reread {
                path: path.to_string(),
            }),
        }
    }

    fn read_small(&self, path: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
        match self.small.get(self.resolve(path)) {
            Some(bytes) if bytes.len() as u64 <= limit => Ok(bytes.clone()),
            Some(bytes) => Err(SourceError::Daemon {
                detail: format!("`{path}` of the export is {} bytes, too big", bytes.len()),
            }),
            None if self.is_large(path) => Err(SourceError::Daemon {
                detail: format!("`{path}` of the export is too big for a JSON document"),
            }),
            None => Err(SourceError::MissingEntry {
                path: "the daemon's export".into(),
                entry: path.to_string(),
            }),
        }
    }

    fn exists(&self, path: &str) -> bool {
        let path = self.resolve(path);
        self.small.contains_key(path) || self.large.contains_key(path)
    }

    fn size(&self, path: &str) -> Option<u64> {
        let path = self.resolve(path);
        self.small
            .get(path)
            .map(|b| b.len() as u64)
            .or_else(|| self.large.get(path).map(|(size, _)| *size))
    }

    fn head(&self, path: &str) -> Result<[u8; 4], SourceError> {
        let path = self.resolve(path);
        if let Some((_, head)) = self.large.get(path) {
            return Ok(*head);
        }
        let bytes = self
            .small
            .get(path)
            .ok_or_else(|| SourceError::MissingEntry {
                path: "the daemon's export".into(),
                entry: path.to_string(),
            })?;
        let mut head = [0u8; 4];
        let n = bytes.len().min(4);
        head[..n].copy_from_slice(&bytes[..n]);
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, Vec<u8>)], links: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, &data[..]).unwrap();
        }
        for (path, target) in links {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, target).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn small_files_whole_big_ones_streamed_links_resolved() {
        let big: Vec<u8> = (0..(SMALL_ENTRY as usize + 10)).map(|i| i as u8).collect();
        let bytes = archive(
            &[
                ("manifest.json", b"[]".to_vec()),
                ("abc/layer.tar", big.clone()),
            ],
            &[("def/layer.tar", "../abc/layer.tar")],
        );
        let mut seen = Vec::new();
        let index = walk_export(Box::new(io::Cursor::new(bytes)), "test", |entry| {
            let mut all = Vec::new();
            entry.reader.read_to_end(&mut all).unwrap();
            assert_eq!(all, big);
            assert_eq!(entry.head, [0, 1, 2, 3]);
            seen.push(format!("{} {}", entry.path, entry.size));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![format!("abc/layer.tar {}", big.len())]);
        assert_eq!(index.resolve("def/layer.tar"), "abc/layer.tar");
        assert!(index.is_large("def/layer.tar"));
        assert_eq!(index.read_small("manifest.json", 10).unwrap(), b"[]");
        assert_eq!(index.size("def/layer.tar"), Some(big.len() as u64));
        assert!(matches!(
            index.open("abc/layer.tar"),
            Err(SourceError::Reread { .. })
        ));
    }

    #[test]
    fn unread_large_entries_are_skipped_and_escapes_refused() {
        let big = vec![7u8; SMALL_ENTRY as usize + 1];
        let bytes = archive(&[("a/layer.tar", big), ("b.json", b"{}".to_vec())], &[]);
        let mut paths = Vec::new();
        let index = walk_export(Box::new(io::Cursor::new(bytes)), "test", |entry| {
            paths.push(entry.path);
            Ok(())
        })
        .unwrap();
        assert_eq!(paths, ["a/layer.tar"]);
        assert!(index.exists("b.json"));

        let bytes = archive(&[], &[("x/layer.tar", "../../etc/passwd")]);
        let err = walk_export(Box::new(io::Cursor::new(bytes)), "test", |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("leaves the archive"), "{err}");
    }

    #[test]
    fn a_stream_cut_inside_a_layer_is_an_error() {
        let big = vec![7u8; SMALL_ENTRY as usize + 4096];
        let mut bytes = archive(&[("a/layer.tar", big)], &[]);
        bytes.truncate(SMALL_ENTRY as usize);
        let result = walk_export(Box::new(io::Cursor::new(bytes)), "test", |entry| {
            io::copy(entry.reader, &mut io::sink())
                .map(|_| ())
                .map_err(|e| SourceError::Daemon {
                    detail: e.to_string(),
                })
        });
        assert!(result.is_err());
    }

    #[test]
    fn an_export_with_a_huge_long_name_header_is_refused_without_reading_it() {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::GNULongName);
        header.set_size(1 << 30);
        header.set_path("././@LongLink").unwrap();
        header.set_cksum();
        // A stream that would deliver the whole gibibyte if asked: only its first bytes are read.
        let stream = io::Cursor::new(header.as_bytes().to_vec()).chain(io::repeat(b'n'));
        let err = walk_export(Box::new(stream), "test", |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("GNU long name"), "{err}");
        assert!(err.to_string().contains("1073741824"), "{err}");
    }
}
