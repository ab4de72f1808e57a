//! Reading a blob that the registry redirects to a storage service (as registries backed by
//! S3 or GCS do): the redirect is followed, the registry's credentials go to the registry only,
//! and a body cut off at the storage side is resumed with `Range`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use ocipush_oci::parse_sha256;
use ocipush_registry::{ClientOptions, Credentials, RegistryClient, Repository};
use ocipush_testkit::sha256_digest;

/// One request as a server saw it: its first line and headers, lower-cased names.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A one-request-per-connection HTTP server answering with `answer`.
fn serve(
    answer: impl Fn(&Seen) -> Vec<u8> + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let log = log.clone();
            let answer = answer.clone();
            std::thread::spawn(move || handle(stream, &*answer, &log));
        }
    });
    (addr, seen)
}

fn handle(stream: TcpStream, answer: &dyn Fn(&Seen) -> Vec<u8>, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let seen = Seen {
        line: line.trim_end().to_string(),
        headers,
    };
    log.lock().unwrap().push(seen.clone());
    let mut stream = stream;
    let _ = stream.write_all(&answer(&seen));
    let _ = stream.flush();
}

fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn redirected_blob_reads_keep_credentials_home_and_resume() {
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = parse_sha256(&sha256_digest(&blob)).unwrap();
    let served = blob.clone();
    // Storage: the first GET is cut off after 50,000 bytes (a Content-Length it does not
    // keep); a ranged GET gets the rest as 206.
    let (storage, storage_seen) = serve(move |seen| {
        let start: usize = seen
            .header("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse().ok())
            .unwrap_or(0);
        if start == 0 {
            let mut out = response("200 OK", &[], &served);
            let head = out.len() - served.len();
            out.truncate(head + 50_000);
            out
        } else {
            response(
                "206 Partial Content",
                &[(
                    "Content-Range",
                    format!("bytes {start}-{}/{}", served.len() - 1, served.len()),
                )],
                &served[start..],
            )
        }
    });
    let location = format!("http://{storage}/bucket/blob");
    let (registry, registry_seen) = serve(move |seen| {
        if seen.header("authorization").is_none() {
            return response(
                "401 Unauthorized",
                &[("WWW-Authenticate", "Basic realm=\"test\"".into())],
                b"",
            );
        }
        if seen.line.starts_with("GET /v2/ ") {
            return response("200 OK", &[], b"{}");
        }
        response(
            "307 Temporary Redirect",
            &[("Location", location.clone())],
            b"",
        )
    });

    let options = ClientOptions {
        plain_http: true,
        credentials: Some(Credentials::new("alice", "redirect-pw")),
        ..ClientOptions::default()
    };
    let client = RegistryClient::connect(&registry, &options).await.unwrap();
    let repository = Repository::for_pull(client, "team/app");

    let mut body = repository.get_blob(&digest, 0).await.unwrap();
    let mut read = Vec::new();
    let cut = loop {
        match body.chunk().await {
            Ok(Some(chunk)) => read.extend_from_slice(&chunk),
            Ok(None) => break false,
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                break true;
            }
        }
    };
    assert!(cut, "the storage cut the first body short");
    assert_eq!(read.len(), 50_000);
    let mut rest = repository
        .get_blob(&digest, read.len() as u64)
        .await
        .unwrap();
    assert_eq!(rest.start, 50_000);
    while let Some(chunk) = rest.chunk().await.unwrap() {
        read.extend_from_slice(&chunk);
    }
    assert_eq!(read, blob);

    let registry_seen = registry_seen.lock().unwrap().clone();
    assert!(
        registry_seen
            .iter()
            .any(|s| s.line.starts_with("GET /v2/team/app/blobs/")
                && s.header("authorization").is_some()),
        "{registry_seen:#?}"
    );
    let storage_seen = storage_seen.lock().unwrap().clone();
    assert_eq!(storage_seen.len(), 2, "{storage_seen:#?}");
    for seen in &storage_seen {
        assert_eq!(seen.header("authorization"), None, "{seen:#?}");
    }
    assert_eq!(storage_seen[1].header("range"), Some("bytes=50000-"));
}
