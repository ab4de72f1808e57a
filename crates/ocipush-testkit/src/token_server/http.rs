//! The token server's HTTP: one request head read from a connection, one JSON answer
//! written back, and the query and Basic-auth decoding a token request needs.

use std::io::Read;
use std::net::TcpStream;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::json;

use super::MAX_HEAD;

/// The parts of an HTTP request the server looks at.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) authorization: Option<String>,
}

/// Reads one request head (and drains a `Content-Length` body). `Ok(None)` when the peer
/// closed before sending anything; `Err(status)` for a malformed one.
pub(super) fn read_request(stream: &mut TcpStream) -> Result<Option<Request>, u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(400),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if buf.is_empty() => return Ok(None),
            Err(_) => return Err(400),
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| 400u16)?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(_version)) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return Err(400);
    };
    let mut authorization = None;
    let mut content_length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(400);
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| 400u16)?;
        }
    }
    let mut body_left = content_length.saturating_sub(buf.len() - head_end - 4);
    while body_left > 0 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body_left = body_left.saturating_sub(n),
        }
    }
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        authorization,
    }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub(super) struct Response {
    pub(super) status: u16,
    pub(super) extra_headers: Vec<(&'static str, String)>,
    pub(super) body: String,
}

impl Response {
    pub(super) fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            extra_headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub(super) fn error(status: u16, message: &str) -> Self {
        let code = match status {
            401 => "UNAUTHORIZED",
            404 => "NOT_FOUND",
            405 => "UNSUPPORTED",
            _ => "INVALID_REQUEST",
        };
        Self::json(
            status,
            json!({"errors": [{"code": code, "message": message}]}),
        )
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.body.len()
        );
        for (name, value) in &self.extra_headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&self.body);
        out.into_bytes()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// `application/x-www-form-urlencoded` query pairs, decoded.
pub(super) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `user:password` from the base64 part of a Basic header.
pub(super) fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let raw = STANDARD.decode(encoded).ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (user, password) = raw.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}
