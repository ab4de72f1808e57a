//! Produces a blob's upload body on a blocking thread: reads the source, verifies what it reads
//! against the digest (or diffID) the source promised, compresses when the layer is stored
//! uncompressed, hashes the bytes as they leave, and hands them to the HTTP request through a
//! small bounded channel — so memory per blob is a few chunks, whatever the layer's size.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use flate2::write::MultiGzDecoder;
use ocipush_oci::{Digest, Sha256Pair, Sha256Writer, VerifyError, VerifyingReader};
use ocipush_registry::BodyChunk;
use ocipush_source::{read_up_to, BlobReader, SourceError};
use tokio::sync::mpsc;

use crate::compress::{gzip_parallel, zstd_compress};
use crate::error::PushError;
use crate::job::BlobJob;
use crate::sent_progress::SourceMarks;

/// Bytes per chunk handed to the HTTP body.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Chunks buffered between the producer and the request.
pub(crate) const CHANNEL_DEPTH: usize = 4;

/// What to do with a source file on its way to the registry.
#[derive(Debug, Clone)]
pub(crate) enum Transform {
    /// Send the bytes as stored; they must hash to `digest` and be `size` long.
    Verbatim { digest: Digest, size: u64 },
    /// An uncompressed layer: verify its diffID and gzip it at `level`.
    Gzip { diff_id: DiffId, level: u32 },
    /// A gzip-compressed layer: send as is; decompress alongside to verify its diffID.
    GzipPassthrough { diff_id: DiffId },
    /// An uncompressed layer: verify its diffID and zstd it at `level`.
    Zstd { diff_id: DiffId, level: u32 },
    /// A zstd-compressed layer: send as is; decompress alongside to verify its diffID.
    ZstdPassthrough { diff_id: DiffId },
}

/// A layer's diffID: promised by the source (and verified while reading), or — for a layer
/// streaming by in a daemon's export before the manifest that names it — learnt by hashing.
pub(crate) type DiffId = Option<Digest>;

impl Transform {
    /// Whether ocipush compresses the bytes on the way (rather than sending them as stored).
    pub fn compresses(&self) -> bool {
        matches!(self, Transform::Gzip { .. } | Transform::Zstd { .. })
    }

    /// How the produced blob is compressed.
    pub fn output_compression(&self) -> ocipush_oci::Compression {
        use ocipush_oci::Compression;
        match self {
            Transform::Verbatim { .. } => Compression::None,
            Transform::Gzip { .. } | Transform::GzipPassthrough { .. } => Compression::Gzip,
            Transform::Zstd { .. } | Transform::ZstdPassthrough { .. } => Compression::Zstd,
        }
    }
}

/// The digest and size of what was sent, and the layer's diffID (verified or learnt).
#[derive(Debug, Clone)]
pub(crate) struct Produced {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Option<Digest>,
}

#[derive(Debug)]
pub(crate) enum ProduceError {
    Verify(VerifyError),
    Read(io::Error),
    /// The request stopped taking bytes (it failed or was cancelled).
    Closed,
}

/// How a producer that made no blob ended: the source could not be opened (`Err`), or the
/// transform failed (`Ok`).
pub(crate) type ProduceFailure = Result<ProduceError, SourceError>;

/// Opens the job's source and runs its transform on a blocking thread, sending the output into
/// `tx`. A source that cannot be opened is said into the body too, so a request taking it
/// aborts.
pub(crate) fn spawn_producer(
    blobs: Arc<dyn BlobReader>,
    job: &BlobJob,
    tx: mpsc::Sender<BodyChunk>,
    marks: Arc<SourceMarks>,
) -> tokio::task::JoinHandle<Result<Produced, ProduceFailure>> {
    let path = job.path.clone();
    let transform = job.transform.clone();
    let what = job.label.clone();
    tokio::task::spawn_blocking(move || {
        let reader = match blobs.open(&path) {
            Ok(reader) => reader,
            Err(e) => {
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
                return Err(Err(e));
            }
        };
        produce(reader, &transform, &what, tx, marks).map_err(Ok)
    })
}

/// The push error a producer's failure is, for the blob labelled `blob`.
pub(crate) fn produce_failure(blob: &str, failure: ProduceFailure) -> PushError {
    match failure {
        Err(source) => PushError::Source(source),
        Ok(ProduceError::Verify(source)) => PushError::Verify {
            blob: blob.to_owned(),
            source: Box::new(source),
        },
        Ok(ProduceError::Read(source)) => PushError::Read {
            blob: blob.to_owned(),
            source,
        },
        Ok(ProduceError::Closed) => PushError::Internal("upload body closed early".into()),
    }
}

/// Runs a transform to completion, sending the output into `tx`. On failure, an error is sent
/// into the body too, so the request aborts instead of the registry receiving a short blob.
pub(crate) fn produce(
    source: Box<dyn Read + Send>,
    transform: &Transform,
    what: &str,
    tx: mpsc::Sender<BodyChunk>,
    marks: Arc<SourceMarks>,
) -> Result<Produced, ProduceError> {
    // gzip reads blocks ahead of what it has written, so it counts its blocks as their members
    // are written instead; elsewhere what is read goes into the next bytes written.
    let counted = CountingReader {
        inner: source,
        marks: (!matches!(transform, Transform::Gzip { .. })).then(|| Arc::clone(&marks)),
    };
    // Verbatim bytes were verified against their digest on the way in, and gzip hashes what it
    // sends itself (in step with its input): hashing them again on the way out would only add
    // to the cost.
    let known_digest = match transform {
        Transform::Verbatim { digest, .. } => Some(digest.clone()),
        _ => None,
    };
    let sink_hashes = !matches!(
        transform,
        Transform::Verbatim { .. } | Transform::Gzip { .. }
    );
    let mut sink = ChannelWriter::new(tx.clone(), sink_hashes, marks);
    let result = run(counted, transform, what, &mut sink);
    match result {
        Ok(ran) => {
            let (hashed, size) = sink.finish().map_err(|_| ProduceError::Closed)?;
            let digest = known_digest
                .or(ran.sent_digest)
                .or(hashed)
                .expect("the sink hashes whenever nothing else did");
            Ok(Produced {
                digest,
                size,
                diff_id: ran.diff_id,
            })
        }
        Err(err) => {
            let message = match &err {
                ProduceError::Verify(v) => v.to_string(),
                ProduceError::Read(e) => e.to_string(),
                ProduceError::Closed => return Err(err),
            };
            let _ = tx.blocking_send(Err(io::Error::other(message)));
            Err(err)
        }
    }
}

/// What a transform learnt on the way.
struct Ran {
    /// The layer's diffID (none for verbatim blobs).
    diff_id: Option<Digest>,
    /// The digest of what was sent, when the transform hashed that itself.
    sent_digest: Option<Digest>,
}

impl Ran {
    fn diff_id(diff_id: Option<Digest>) -> Self {
        Ran {
            diff_id,
            sent_digest: None,
        }
    }
}

/// Runs the transform.
fn run(
    mut source: CountingReader,
    transform: &Transform,
    what: &str,
    sink: &mut ChannelWriter,
) -> Result<Ran, ProduceError> {
    match transform {
        Transform::Verbatim { digest, size } => {
            let mut reader = VerifyingReader::new(source, what, digest.clone(), Some(*size));
            send_in_pooled_chunks(&mut reader, sink).map(|()| Ran::diff_id(None))
        }
        Transform::Gzip { diff_id, level } => {
            let mut hashes = Sha256Pair::new();
            let marks = Arc::clone(&sink.marks);
            let mut written = |block: u64| marks.consumed(block);
            gzip_parallel(&mut source, sink, *level, &mut hashes, &mut written)
                .map_err(classify)?;
            let [(uncompressed, _), (sent, sent_len)] = hashes.finish();
            debug_assert_eq!(
                sent_len,
                sink.sent + sink.filled as u64,
                "hashed what is sent"
            );
            Ok(Ran {
                diff_id: Some(check_diff_id(uncompressed, diff_id, what)?),
                sent_digest: Some(sent),
            })
        }
        Transform::Zstd { diff_id, level } => {
            let mut reader = HashingReader {
                inner: source,
                hasher: Sha256Writer::new(),
            };
            zstd_compress(&mut reader, sink, *level).map_err(classify)?;
            let (uncompressed, _) = reader.hasher.finish();
            check_diff_id(uncompressed, diff_id, what).map(|d| Ran::diff_id(Some(d)))
        }
        Transform::GzipPassthrough { diff_id } => {
            let decoder = MultiGzDecoder::new(Sha256Writer::new());
            let hasher = passthrough(source, sink, decoder, what, |d| d.finish())?;
            let what = format!("{what} (uncompressed)");
            check_diff_id(hasher.finish().0, diff_id, &what).map(|d| Ran::diff_id(Some(d)))
        }
        Transform::ZstdPassthrough { diff_id } => {
            let decoder = zstd::stream::write::Decoder::new(Sha256Writer::new())
                .map_err(ProduceError::Read)?;
            let hasher = passthrough(source, sink, decoder, what, |mut d| {
                d.flush()?;
                Ok(d.into_inner())
            })?;
            let what = format!("{what} (uncompressed)");
            check_diff_id(hasher.finish().0, diff_id, &what).map(|d| Ran::diff_id(Some(d)))
        }
    }
}

/// Hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256Writer,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Sends already compressed bytes on untouched while a decoder decompresses a copy into a
/// hasher, so the layer's diffID is checked in the same pass.
fn passthrough<D: Write>(
    mut source: CountingReader,
    sink: &mut ChannelWriter,
    decoder: D,
    what: &str,
    finish: impl FnOnce(D) -> io::Result<Sha256Writer>,
) -> Result<Sha256Writer, ProduceError> {
    let mut tee = TeeWriter { sink, decoder };
    copy(&mut source, &mut tee)?;
    finish(tee.decoder).map_err(|e| {
        ProduceError::Read(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what}: not a valid compressed stream: {e}"),
        ))
    })
}

/// The layer's diffID: `actual`, the hash of its uncompressed bytes, if it is the one promised
/// (or nothing was). Checked before the sink sends its last chunk, so a mismatch aborts the
/// body instead of completing it.
fn check_diff_id(actual: Digest, diff_id: &DiffId, what: &str) -> Result<Digest, ProduceError> {
    match diff_id {
        Some(expected) if expected != &actual => Err(ProduceError::Verify(VerifyError::Digest {
            what: what.to_string(),
            expected: expected.clone(),
            actual,
        })),
        _ => Ok(actual),
    }
}

fn copy(reader: &mut impl Read, writer: &mut impl Write) -> Result<(), ProduceError> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(classify(e)),
        };
        writer.write_all(&buf[..n]).map_err(classify)?;
    }
}

/// Reads a blob that goes out as it is straight into chunk buffers the request sends from and
/// hands back when done: no copy into the body's buffer, no fresh pages to fault in and zero per
/// chunk (together 7% of a verbatim push's CPU in the profile). Reads to the reader's end (and
/// not past it), so the verifying reader sees its EOF and checks the digest.
fn send_in_pooled_chunks(
    reader: &mut impl Read,
    sink: &mut ChannelWriter,
) -> Result<(), ProduceError> {
    loop {
        let mut buf = sink.pool.take();
        let filled = read_up_to(reader, &mut buf).map_err(classify)?;
        if filled > 0 {
            let chunk = sink.pool.bytes(buf, filled);
            sink.send_owned(chunk).map_err(classify)?;
        }
        // A short fill means the reader returned its end, and the verifying reader checked the
        // digest there: reading again could only send bytes nothing checks.
        if filled < CHUNK {
            return Ok(());
        }
    }
}

/// `CHUNK`-sized buffers of one blob, back from the request once it has sent them.
#[derive(Clone, Default)]
struct ChunkPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl ChunkPool {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_else(|| vec![0u8; CHUNK])
    }

    /// The first `len` bytes of `buf` as a body chunk whose buffer comes back here when sent.
    fn bytes(&self, buf: Vec<u8>, len: usize) -> Bytes {
        Bytes::from_owner(PooledChunk {
            buf,
            len,
            pool: self.clone(),
        })
    }
}

/// A chunk on its way to the registry; its buffer returns to the pool when the body drops it.
struct PooledChunk {
    buf: Vec<u8>,
    len: usize,
    pool: ChunkPool,
}

impl AsRef<[u8]> for PooledChunk {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        if let Ok(mut free) = self.pool.0.lock() {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

/// Random-looking bytes (xorshift), the same on every run: data that gzip stores, for tests
/// (the pinned digests in `compress::gzip` depend on these bytes).
#[cfg(test)]
pub(crate) fn random_bytes(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Tells a verification failure and a closed body apart from other I/O errors.
fn classify(err: io::Error) -> ProduceError {
    if err.kind() == io::ErrorKind::BrokenPipe {
        return ProduceError::Closed;
    }
    if VerifyError::from_io(&err).is_some() {
        let inner = err
            .into_inner()
            .and_then(|e| e.downcast::<VerifyError>().ok())
            .expect("checked above");
        return ProduceError::Verify(*inner);
    }
    ProduceError::Read(err)
}

/// Counts the source bytes read into the body's marks (when it has them to count into).
struct CountingReader {
    inner: Box<dyn Read + Send>,
    marks: Option<Arc<SourceMarks>>,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(marks) = &self.marks {
            marks.consumed(n as u64);
        }
        Ok(n)
    }
}

/// Hashes what is written and sends it on in `CHUNK`-sized pieces, each in a buffer from the
/// blob's pool (so no chunk costs fresh pages), marking each with the source bytes behind it.
struct ChannelWriter {
    tx: mpsc::Sender<BodyChunk>,
    marks: Arc<SourceMarks>,
    pool: ChunkPool,
    /// The chunk being filled (empty until the first write after a send) and how much it holds.
    buf: Vec<u8>,
    filled: usize,
    hasher: Option<Sha256Writer>,
    sent: u64,
}

impl ChannelWriter {
    fn new(tx: mpsc::Sender<BodyChunk>, hash: bool, marks: Arc<SourceMarks>) -> Self {
        ChannelWriter {
            tx,
            marks,
            pool: ChunkPool::default(),
            buf: Vec::new(),
            filled: 0,
            hasher: hash.then(Sha256Writer::new),
            sent: 0,
        }
    }

    fn send_buffered(&mut self) -> io::Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        let chunk = self.pool.bytes(std::mem::take(&mut self.buf), self.filled);
        self.filled = 0;
        self.send_chunk(chunk)
    }

    /// Sends a chunk that is already in its own buffer, after anything still buffered.
    fn send_owned(&mut self, chunk: Bytes) -> io::Result<()> {
        self.send_buffered()?;
        self.send_chunk(chunk)
    }

    fn send_chunk(&mut self, chunk: Bytes) -> io::Result<()> {
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&chunk);
        }
        self.sent += chunk.len() as u64;
        self.marks.chunk_sent(self.sent);
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Sends what is left; the digest of everything sent (when hashing) and its size.
    fn finish(mut self) -> io::Result<(Option<Digest>, u64)> {
        self.send_buffered()?;
        Ok((self.hasher.map(|h| h.finish().0), self.sent))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk goes when more bytes come, not before: the last bytes written always
        // wait for `finish`, which runs only once the transform has checked what it read, so a
        // layer that fails its diffID never reaches the registry whole. (Verbatim blobs go as
        // owned chunks without this: the registry checks their digest, the one sent, itself.)
        if self.filled == CHUNK {
            self.send_buffered()?;
        }
        if self.buf.is_empty() {
            self.buf = self.pool.take();
        }
        let n = data.len().min(CHUNK - self.filled);
        self.buf[self.filled..self.filled + n].copy_from_slice(&data[..n]);
        self.filled += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends compressed bytes on while decompressing a copy to check the diffID.
struct TeeWriter<'a, D> {
    sink: &'a mut ChannelWriter,
    decoder: D,
}

impl<D: Write> Write for TeeWriter<'_, D> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.sink.write_all(data)?;
        self.decoder.write_all(data).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a valid compressed stream: {e}"),
            )
        })?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocipush_oci::sha256_of;

    fn run_to_end(
        data: Vec<u8>,
        transform: Transform,
    ) -> (Result<Produced, ProduceError>, Vec<u8>) {
        let (tx, mut rx) = mpsc::channel(1024);
        let result = produce(
            Box::new(io::Cursor::new(data)),
            &transform,
            "blob",
            tx,
            Arc::default(),
        );
        let mut out = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            match chunk {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(_) => out.extend_from_slice(b"<error>"),
            }
        }
        (result, out)
    }

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let data: Vec<u8> = (0..1_000_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let diff_id = sha256_of(&data);
        let (a, out_a) = run_to_end(
            data.clone(),
            Transform::Gzip {
                diff_id: Some(diff_id.clone()),
                level: 1,
            },
        );
        let (b, out_b) = run_to_end(
            data.clone(),
            Transform::Gzip {
                diff_id: Some(diff_id.clone()),
                level: 1,
            },
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.digest, b.digest);
        assert_eq!(out_a, out_b);
        assert_eq!(a.digest, sha256_of(&out_a));
        let mut round = Vec::new();
        flate2::read::MultiGzDecoder::new(&out_a[..])
            .read_to_end(&mut round)
            .unwrap();
        assert_eq!(round, data);

        // The compressed output passes through untouched and its diffID still verifies.
        let (c, out_c) = run_to_end(
            out_a.clone(),
            Transform::GzipPassthrough {
                diff_id: Some(diff_id.clone()),
            },
        );
        assert_eq!(c.unwrap().digest, a.digest);
        assert_eq!(out_c, out_a);
    }

    #[test]
    fn mismatches_abort_the_body() {
        let (r, out) = run_to_end(
            b"abc".to_vec(),
            Transform::Gzip {
                diff_id: Some(sha256_of(b"abd")),
                level: 1,
            },
        );
        assert!(matches!(r, Err(ProduceError::Verify(_))));
        assert!(out.ends_with(b"<error>"));

        let (r, _) = run_to_end(
            b"abc".to_vec(),
            Transform::Verbatim {
                digest: sha256_of(b"abc"),
                size: 4,
            },
        );
        assert!(matches!(
            r,
            Err(ProduceError::Verify(VerifyError::Size { .. }))
        ));

        let (r, _) = run_to_end(
            b"not gzip".to_vec(),
            Transform::GzipPassthrough {
                diff_id: Some(sha256_of(b"")),
            },
        );
        assert!(r.is_err());
    }

    #[test]
    fn the_last_bytes_wait_for_the_transform_to_check_its_input() {
        // Exactly whole chunks: without the hold-back the body would be complete before the
        // diffID check could stop it.
        let (tx, mut rx) = mpsc::channel(1024);
        let mut sink = ChannelWriter::new(tx, true, Arc::default());
        sink.write_all(&vec![7u8; 2 * CHUNK]).unwrap();
        let mut sent = 0;
        while let Ok(chunk) = rx.try_recv() {
            sent += chunk.unwrap().len();
        }
        assert_eq!(sent, CHUNK, "one chunk still held back");
        let (digest, size) = sink.finish().unwrap();
        assert_eq!(rx.try_recv().unwrap().unwrap().len(), CHUNK);
        assert_eq!(
            (digest, size),
            (Some(sha256_of(&vec![7u8; 2 * CHUNK])), 2 * CHUNK as u64)
        );
    }

    #[test]
    fn a_gzip_layer_failing_its_diff_id_is_never_sent_whole() {
        // Random bytes are stored, not deflated: the output is several chunks, so most of it is
        // sent before the check. (Output of exactly whole chunks is the unit test above.)
        let data = random_bytes(3 * CHUNK);
        let (good, whole) = run_to_end(
            data.clone(),
            Transform::Gzip {
                diff_id: None,
                level: 1,
            },
        );
        assert_eq!(good.unwrap().diff_id, Some(sha256_of(&data)));
        assert!(whole.len() > 2 * CHUNK, "{}", whole.len());
        let (bad, out) = run_to_end(
            data,
            Transform::Gzip {
                diff_id: Some(sha256_of(b"something else")),
                level: 1,
            },
        );
        match bad {
            Err(ProduceError::Verify(VerifyError::Digest { expected, .. })) => {
                assert_eq!(expected, sha256_of(b"something else"))
            }
            other => panic!("{other:?}"),
        }
        let sent = out
            .strip_suffix(b"<error>")
            .expect("the body ends in an error");
        assert!(!sent.is_empty(), "the bytes before the check were streamed");
        assert!(sent.len() < whole.len() && whole.starts_with(sent));
    }

    /// A file that grows while it is read: after its end (where the digest was checked) it
    /// hands out a few more bytes once, then ends again.
    struct Growing {
        first: io::Cursor<Vec<u8>>,
        reads_after_end: usize,
    }

    impl Read for Growing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.first.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.reads_after_end += 1;
            if self.reads_after_end == 2 {
                let extra = b"appended";
                let n = extra.len().min(buf.len());
                buf[..n].copy_from_slice(&extra[..n]);
                return Ok(n);
            }
            Ok(0)
        }
    }

    #[test]
    fn verbatim_blobs_stop_at_the_end_their_digest_was_checked_at() {
        for len in [10, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let (tx, mut rx) = mpsc::channel(1024);
            let produced = produce(
                Box::new(Growing {
                    first: io::Cursor::new(data.clone()),
                    reads_after_end: 0,
                }),
                &Transform::Verbatim {
                    digest: sha256_of(&data),
                    size: len as u64,
                },
                "blob",
                tx,
                Arc::default(),
            )
            .unwrap_or_else(|e| panic!("len {len}: {e:?}"));
            let mut sent = Vec::new();
            while let Ok(chunk) = rx.try_recv() {
                sent.extend_from_slice(&chunk.unwrap());
            }
            assert_eq!(sent, data, "len {len}");
            assert_eq!(produced.size, len as u64);
        }
    }
}
