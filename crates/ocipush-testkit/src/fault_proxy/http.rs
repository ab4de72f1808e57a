//! Just enough HTTP/1.1 for a relaying proxy: read a message head, learn how its body is
//! framed (Content-Length, chunked, none, or until the connection closes), and copy a body
//! from one side to the other byte for byte, optionally stopping after a budget of bytes.

use std::io::{self, BufRead, Write};

/// Heads longer than this are refused (registries and clients send a few hundred bytes).
const MAX_HEAD: usize = 64 * 1024;

/// A request or response head: the raw bytes (to forward untouched) and what was parsed.
#[derive(Debug, Clone)]
pub struct Head {
    pub raw: Vec<u8>,
    /// Request: method, target, version. Response: version, status, reason.
    pub start: [String; 3],
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A response's status code (0 if unparsable).
    pub fn status(&self) -> u16 {
        self.start[1].parse().unwrap_or(0)
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }

    /// How a request's body is framed.
    pub fn request_body(&self) -> Body {
        if self.is_chunked() {
            Body::Chunked
        } else {
            match self.content_length() {
                Some(n) if n > 0 => Body::Length(n),
                _ => Body::None,
            }
        }
    }

    /// How a response's body is framed, given the request's method.
    pub fn response_body(&self, request_method: &str) -> Body {
        let status = self.status();
        if request_method == "HEAD" || (100..200).contains(&status) || matches!(status, 204 | 304) {
            Body::None
        } else if self.is_chunked() {
            Body::Chunked
        } else {
            match self.content_length() {
                Some(0) => Body::None,
                Some(n) => Body::Length(n),
                None => Body::UntilClose,
            }
        }
    }

    /// Whether the sender will close the connection after this message.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Body framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Reads one head; `Ok(None)` when the peer closed the connection before sending a byte.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        let n = reader.read_until(b'\n', &mut raw)?;
        if n == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "head cut off"))
            };
        }
        if raw.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        // A blank line (after at least the start line) ends the head.
        if before > 0 && (&raw[before..] == b"\r\n" || &raw[before..] == b"\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = text.lines();
    let mut start = lines
        .next()
        .unwrap_or("")
        .splitn(3, ' ')
        .map(str::to_string);
    let start = [
        start.next().unwrap_or_default(),
        start.next().unwrap_or_default(),
        start.next().unwrap_or_default(),
    ];
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Some(Head {
        raw,
        start,
        headers,
    }))
}

/// Copies a body framed as `body` from `from` to `to`, raw (chunk framing included), but at
/// most `budget` bytes. Returns the bytes copied and whether the whole body was copied.
pub fn copy_body(
    from: &mut impl BufRead,
    to: &mut impl Write,
    body: Body,
    budget: u64,
) -> io::Result<(u64, bool)> {
    let mut copier = Copier {
        to,
        copied: 0,
        budget,
    };
    let complete = match body {
        Body::None => true,
        Body::Length(n) => copier.exact(from, n)?,
        Body::UntilClose => copier.until_close(from)?,
        Body::Chunked => copier.chunked(from)?,
    };
    copier.to.flush()?;
    Ok((copier.copied, complete))
}

struct Copier<'a, W: Write> {
    to: &'a mut W,
    copied: u64,
    budget: u64,
}

impl<W: Write> Copier<'_, W> {
    /// Writes as much of `bytes` as the budget allows; false once it ran out.
    fn put(&mut self, bytes: &[u8]) -> io::Result<bool> {
        let room = self.budget.saturating_sub(self.copied);
        let take = (bytes.len() as u64).min(room) as usize;
        self.to.write_all(&bytes[..take])?;
        self.copied += take as u64;
        Ok(take == bytes.len())
    }

    fn exact(&mut self, from: &mut impl BufRead, mut n: u64) -> io::Result<bool> {
        while n > 0 {
            let buf = from.fill_buf()?;
            if buf.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut off"));
            }
            let take = (buf.len() as u64).min(n) as usize;
            let whole = self.put(&buf[..take])?;
            from.consume(take);
            n -= take as u64;
            if !whole {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn until_close(&mut self, from: &mut impl BufRead) -> io::Result<bool> {
        loop {
            let buf = from.fill_buf()?;
            if buf.is_empty() {
                return Ok(true);
            }
            let take = buf.len();
            let whole = self.put(buf)?;
            from.consume(take);
            if !whole {
                return Ok(false);
            }
        }
    }

    fn line(&mut self, from: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        if from.read_until(b'\n', &mut line)? == 0 || !line.ends_with(b"\n") {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "chunk cut off",
            ));
        }
        Ok(self.put(&line)?.then_some(line))
    }

    fn chunked(&mut self, from: &mut impl BufRead) -> io::Result<bool> {
        loop {
            let Some(size_line) = self.line(from)? else {
                return Ok(false);
            };
            let text = String::from_utf8_lossy(&size_line);
            let hex = text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(hex, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailer lines up to the blank line.
                loop {
                    let Some(line) = self.line(from)? else {
                        return Ok(false);
                    };
                    if line == b"\r\n" || line == b"\n" {
                        return Ok(true);
                    }
                }
            }
            if !self.exact(from, size)? || self.line(from)?.is_none() {
                return Ok(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn reads_heads_and_framing() {
        let mut input = BufReader::new(
            &b"PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
               3\r\nabc\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\n\r\n"[..],
        );
        let head = read_head(&mut input).unwrap().unwrap();
        assert_eq!(head.start[0], "PATCH");
        assert_eq!(head.request_body(), Body::Chunked);
        let mut out = Vec::new();
        let (n, complete) = copy_body(&mut input, &mut out, Body::Chunked, u64::MAX).unwrap();
        assert!(complete);
        assert_eq!(out, b"3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(n, out.len() as u64);
        let next = read_head(&mut input).unwrap().unwrap();
        assert_eq!(next.start[1], "/v2/");
        assert_eq!(next.request_body(), Body::None);
        assert!(read_head(&mut input).unwrap().is_none());
    }

    #[test]
    fn budgets_cut_bodies() {
        let mut input = BufReader::new(&b"0123456789"[..]);
        let mut out = Vec::new();
        let (n, complete) = copy_body(&mut input, &mut out, Body::Length(10), 4).unwrap();
        assert_eq!((n, complete, &out[..]), (4, false, &b"0123"[..]));
    }

    #[test]
    fn response_framing_depends_on_method_and_status() {
        let mut input = BufReader::new(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\nConnection: close\r\n\r\n"[..],
        );
        let head = read_head(&mut input).unwrap().unwrap();
        assert_eq!(head.status(), 200);
        assert!(head.closes());
        assert_eq!(head.response_body("HEAD"), Body::None);
        assert_eq!(head.response_body("GET"), Body::Length(42));
    }
}
