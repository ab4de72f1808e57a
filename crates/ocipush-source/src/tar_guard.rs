//! A reader beneath the tar crate that follows the archive's framing and refuses an extension header
//! (GNU long name or long link, PAX local or global) that claims more than [`MAX_EXTENSION`] bytes.
//!
//! The tar crate reads such an entry whole into memory before it returns the entry it describes, so
//! a 4 KiB sparse file whose header claims a 1 GiB long name would cost 1 GiB. Go's `archive/tar`
//! caps these entries at 1 MiB; so does this guard, before the tar crate sees the bytes.
//!
//! Framing: a header block of 512 bytes, GNU sparse extension blocks when the header says so, then
//! the entry's data padded to 512 bytes; a PAX `size` record overrides the size of the entry after it,
//! so local PAX bodies (at most 1 MiB, as checked) are read along to learn it. The guard only watches
//! bytes the tar crate reads or seeks over; it never reads on its own.

use std::io::{self, Read, Seek, SeekFrom};

/// The most an extension entry may claim (Go's `archive/tar` has the same limit).
pub const MAX_EXTENSION: u64 = 1 << 20;

const BLOCK: u64 = 512;

/// What the guard refused, kept as the source of the `io::Error` it returns so that readers can
/// tell it from damage (see [`ExtensionTooLarge::find`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("a tar {kind} entry claims {claimed} bytes (at most {MAX_EXTENSION} are read)")]
pub struct ExtensionTooLarge {
    /// Which extension: "GNU long name", "GNU long link", "PAX" or "PAX global".
    pub kind: &'static str,
    /// The size its header claims.
    pub claimed: u64,
}

impl ExtensionTooLarge {
    /// The refusal inside an error the tar crate passed on, if that is what it is.
    pub fn find(error: &io::Error) -> Option<&ExtensionTooLarge> {
        error.get_ref()?.downcast_ref::<ExtensionTooLarge>()
    }
}

/// Where the next block of interest starts and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// An entry header at this offset.
    Header(u64),
    /// A GNU sparse extension block at this offset; the entry's data (of `data` bytes) follows the
    /// last one.
    SparseBlock { at: u64, data: u64 },
    /// The framing could not be followed (a seek past an unseen header): the guard stands aside.
    Lost,
}

/// See the module documentation.
#[derive(Debug)]
pub struct TarHeaderGuard<R> {
    inner: R,
    pos: u64,
    expect: Expect,
    block: [u8; BLOCK as usize],
    block_filled: usize,
    /// A local PAX body being read along: its first byte's offset and the bytes so far.
    pax_body: Option<(u64, u64, Vec<u8>)>,
    /// The `size` a PAX body gave for the next entry.
    pax_size: Option<u64>,
    refused: Option<ExtensionTooLarge>,
}

impl<R> TarHeaderGuard<R> {
    /// Guards an archive read from its first byte.
    pub fn new(inner: R) -> TarHeaderGuard<R> {
        TarHeaderGuard {
            inner,
            pos: 0,
            expect: Expect::Header(0),
            block: [0; BLOCK as usize],
            block_filled: 0,
            pax_body: None,
            pax_size: None,
            refused: None,
        }
    }

    /// The reader underneath.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn refusal(&self) -> Option<io::Error> {
        self.refused
            .clone()
            .map(|refused| io::Error::new(io::ErrorKind::InvalidData, refused))
    }

    /// Follows the framing over `data`, which was just read at `self.pos`.
    fn observe(&mut self, data: &[u8]) {
        let start = self.pos;
        let end = start + data.len() as u64;
        let mut cursor = start;
        loop {
            // A PAX body announced by a header of this very read comes before the next header.
            self.read_along_pax_body(start, data);
            if cursor >= end || self.refused.is_some() {
                return;
            }
            let at = match self.expect {
                Expect::Header(at) | Expect::SparseBlock { at, .. } => at,
                Expect::Lost => return,
            };
            let wanted = at + self.block_filled as u64;
            if wanted < cursor {
                // The block's first bytes were skipped by a seek: the tar crate did not read this
                // header either, so there is nothing to guard from here on.
                self.expect = Expect::Lost;
                return;
            }
            if wanted >= end {
                return;
            }
            let take = (BLOCK as usize - self.block_filled).min((end - wanted) as usize);
            let from = (wanted - start) as usize;
            self.block[self.block_filled..self.block_filled + take]
                .copy_from_slice(&data[from..from + take]);
            self.block_filled += take;
            cursor = wanted + take as u64;
            if self.block_filled == BLOCK as usize {
                self.block_filled = 0;
                self.on_block(at);
            }
        }
    }

    /// Appends what `data` (read at `start`) holds of the PAX body being read along.
    fn read_along_pax_body(&mut self, start: u64, data: &[u8]) {
        let Some((body_start, body_len, body)) = &mut self.pax_body else {
            return;
        };
        let end = start + data.len() as u64;
        let from = *body_start + body.len() as u64;
        let to = end.min(*body_start + *body_len);
        if from >= start && from < to {
            body.extend_from_slice(&data[(from - start) as usize..(to - start) as usize]);
        }
        if body.len() as u64 == *body_len {
            self.pax_size = pax_size(body);
            self.pax_body = None;
        }
    }

    fn on_block(&mut self, at: u64) {
        let after = at + BLOCK;
        match self.expect {
            Expect::SparseBlock { data, .. } => {
                // Byte 504 of a sparse extension block: whether another one follows.
                self.expect = if self.block[504] != 0 {
                    Expect::SparseBlock { at: after, data }
                } else {
                    Expect::Header(after + padded(data))
                };
            }
            Expect::Header(_) => self.on_header(at),
            Expect::Lost => {}
        }
    }

    fn on_header(&mut self, at: u64) {
        let after = at + BLOCK;
        if self.block.iter().all(|&b| b == 0) {
            // End-of-archive blocks; the tar crate stops at them.
            self.expect = Expect::Header(after);
            return;
        }
        let Some(size) = header_size(&self.block[124..136]) else {
            // The tar crate refuses a header it cannot read; nothing to follow after it.
            self.expect = Expect::Lost;
            return;
        };
        let extension = match self.block[156] {
            b'L' => Some("GNU long name"),
            b'K' => Some("GNU long link"),
            b'x' | b'X' => Some("PAX"),
            b'g' => Some("PAX global"),
            _ => None,
        };
        if let Some(kind) = extension {
            if size > MAX_EXTENSION {
                self.refused = Some(ExtensionTooLarge {
                    kind,
                    claimed: size,
                });
                return;
            }
            if matches!(self.block[156], b'x' | b'X') {
                // An empty PAX body says no size; any other is read along to learn it.
                self.pax_size = None;
                self.pax_body =
                    (size > 0).then(|| (after, size, Vec::with_capacity(size as usize)));
            }
            self.expect = Expect::Header(after + padded(size));
            return;
        }
        let data = self.pax_size.take().unwrap_or(size);
        // An old GNU sparse entry ('S') with `isextended` set is followed by extension blocks.
        self.expect = if self.block[156] == b'S' && self.block[482] != 0 {
            Expect::SparseBlock { at: after, data }
        } else {
            Expect::Header(after + padded(data))
        };
    }
}

impl<R: Read> Read for TarHeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(refused) = self.refusal() {
            return Err(refused);
        }
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n]);
        self.pos += n as u64;
        match self.refusal() {
            Some(refused) => Err(refused),
            None => Ok(n),
        }
    }
}

impl<R: Seek> Seek for TarHeaderGuard<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

/// Data sizes are padded to whole blocks.
fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK).saturating_mul(BLOCK)
}

/// A header's size field: octal digits (NUL- or space-terminated), or GNU's base-256 form (top bit set).
fn header_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        // Base-256: the remaining bits, big-endian; more than 64 bits of magnitude cannot be a size.
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for &byte in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(byte))?;
        }
        return Some(value);
    }
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

/// The `size` record of a PAX body (`"<len> size=<decimal>\n"` records).
fn pax_size(body: &[u8]) -> Option<u64> {
    let mut rest = body;
    let mut found = None;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len <= space || len > rest.len() {
            return found;
        }
        let record = &rest[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(value) = record.strip_prefix(b"size=") {
            found = std::str::from_utf8(value).ok()?.parse().ok();
        }
        rest = &rest[len..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u8, name: &str, size: u64) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::new(kind));
        header.set_size(size);
        header.set_path(name).unwrap();
        header.set_mode(0o644);
        header.set_cksum();
        header.as_bytes().to_vec()
    }

    /// A tar holding one extension header that claims `claimed` bytes, followed by only 4 KiB.
    fn lying_archive(kind: u8, claimed: u64) -> Vec<u8> {
        let mut archive = header(kind, "././@LongLink", claimed);
        archive.extend(vec![b'a'; 4096]);
        archive
    }

    fn list(archive: &[u8]) -> io::Result<Vec<String>> {
        let mut archive = tar::Archive::new(TarHeaderGuard::new(archive));
        let mut names = Vec::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            names.push(entry.path()?.to_string_lossy().into_owned());
            io::copy(&mut entry, &mut io::sink())?;
        }
        Ok(names)
    }

    #[test]
    fn extension_headers_claiming_more_than_a_mebibyte_are_refused() {
        for (kind, name) in [
            (b'L', "GNU long name"),
            (b'K', "GNU long link"),
            (b'x', "PAX"),
            (b'g', "PAX global"),
        ] {
            let err = list(&lying_archive(kind, 1 << 30)).unwrap_err();
            let refused = ExtensionTooLarge::find(&err).expect("the guard's refusal");
            assert_eq!(refused.kind, name);
            assert_eq!(refused.claimed, 1 << 30);
        }
    }

    #[test]
    fn archives_with_long_names_pax_sizes_and_big_entries_read_as_before() {
        let mut builder = tar::Builder::new(Vec::new());
        let long = format!("{}/file", "d".repeat(300));
        let data = vec![7u8; 70_000];
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        builder.append_data(&mut h, &long, &data[..]).unwrap();
        // A PAX header whose size record is the one that counts.
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(tar::EntryType::XHeader);
        let mut body = Vec::new();
        body.extend_from_slice(b"15 size=100000\n");
        pax.set_size(body.len() as u64);
        pax.set_path("pax").unwrap();
        pax.set_cksum();
        builder.append(&pax, &body[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(0); // overridden by the PAX record
        h.set_path("big").unwrap();
        h.set_mode(0o644);
        h.set_cksum();
        let mut raw = builder.into_inner().unwrap();
        raw.truncate(raw.len() - 1024); // the end-of-archive blocks `into_inner` wrote
        raw.extend_from_slice(h.as_bytes());
        raw.extend(vec![1u8; 100_000]);
        raw.extend(vec![0u8; padded(100_000) as usize - 100_000]);
        raw.extend(header(b'0', "after", 3));
        raw.extend(b"xyz");
        raw.extend(vec![0u8; 509 + 1024]);
        let names = list(&raw).expect("a well-formed archive");
        assert_eq!(names, vec![long, "big".to_owned(), "after".to_owned()]);
        // A long name just under the limit is read.
        let mut archive = header(b'L', "././@LongLink", MAX_EXTENSION);
        let mut name = vec![b'n'; MAX_EXTENSION as usize - 1];
        name.push(0);
        archive.extend(&name);
        archive.extend(header(b'0', "short", 0));
        archive.extend(vec![0u8; 1024]);
        let names = list(&archive).expect("1 MiB long name");
        assert_eq!(names[0].len(), MAX_EXTENSION as usize - 1);
    }

    #[test]
    fn sizes_in_octal_and_base_256() {
        assert_eq!(header_size(b"00000001750\0"), Some(1000));
        assert_eq!(header_size(b"        \0\0\0\0"), Some(0));
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[8..].copy_from_slice(&(1u32 << 31).to_be_bytes());
        assert_eq!(header_size(&field), Some(1 << 31));
        assert_eq!(header_size(b"0000000x750\0"), None);
        assert_eq!(
            pax_size(b"15 size=100000\n20 path=abcdefghijk\n"),
            Some(100_000)
        );
    }
}
