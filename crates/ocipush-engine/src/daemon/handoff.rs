//! How a layer streaming by in a daemon's export reaches its blob push: the thread walking the
//! export pumps the entry's bytes, a chunk at a time, to the blob's producer on another
//! thread, and the bytes are handed out once (a stream cannot be read again; a retry needs
//! another export).

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Mutex;

use bytes::Bytes;
use ocipush_source::{BlobReader, SourceError};

use crate::producer::CHUNK;

/// Moves an entry's bytes from the walking thread to the blob's producer, a chunk at a time.
/// Stops quietly when the producer hangs up (it skipped the layer, or failed).
///
/// Each chunk is filled before it goes (the export stream yields a few KiB per read, as the
/// daemon wrote them): one hand-off, one wake-up of the producer per [`CHUNK`], not per read.
/// The chunk's buffer is handed over as it is, not copied.
pub(super) fn pump(reader: &mut dyn Read, chunks: &SyncSender<io::Result<Bytes>>) {
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        // `read_to_end` reads again after an interrupted read, and keeps what it read before
        // an error.
        let filled = reader.take(CHUNK as u64).read_to_end(&mut chunk);
        let end = chunk.len() < CHUNK;
        if !chunk.is_empty() && chunks.send(Ok(Bytes::from(chunk))).is_err() {
            return;
        }
        if let Err(e) = filled {
            let _ = chunks.send(Err(e));
            return;
        }
        if end {
            return;
        }
    }
}

/// The producer's side of [`pump`].
pub(super) struct ChunkReader {
    chunks: Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChunkReader {
    pub(super) fn new(chunks: Receiver<io::Result<Bytes>>) -> Self {
        ChunkReader {
            chunks,
            current: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.recv() {
                Ok(chunk) => self.current = chunk?,
                // The walker finished the entry (a cut stream arrives as an error first).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The bytes of one streamed entry, handed out once: a retry cannot read them again.
pub(super) struct OneShot {
    reader: Mutex<Option<ChunkReader>>,
}

impl OneShot {
    pub(super) fn new(reader: ChunkReader) -> Self {
        OneShot {
            reader: Mutex::new(Some(reader)),
        }
    }
}

impl BlobReader for OneShot {
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, SourceError> {
        match self.reader.lock().expect("not poisoned").take() {
            Some(reader) => Ok(Box::new(reader)),
            None => Err(SourceError::Reread {
                path: path.to_string(),
            }),
        }
    }

    fn read_small(&self, path: &str, _limit: u64) -> Result<Vec<u8>, SourceError> {
        Err(SourceError::Reread {
            path: path.to_string(),
        })
    }

    fn exists(&self, _path: &str) -> bool {
        true
    }

    fn size(&self, _path: &str) -> Option<u64> {
        None
    }

    fn head(&self, path: &str) -> Result<[u8; 4], SourceError> {
        Err(SourceError::Reread {
            path: path.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::*;

    #[test]
    fn chunks_cross_threads_and_errors_arrive() {
        let (tx, rx) = sync_channel(2);
        let writer = std::thread::spawn(move || {
            let mut data = io::Cursor::new(vec![5u8; CHUNK * 3 + 7]);
            pump(&mut data, &tx);
            tx.send(Err(io::Error::other("cut"))).unwrap();
        });
        let mut reader = ChunkReader::new(rx);
        let mut got = vec![0u8; CHUNK * 3 + 7];
        reader.read_exact(&mut got).unwrap();
        assert!(got.iter().all(|&b| b == 5));
        assert!(reader.read(&mut [0u8; 8]).is_err());
        writer.join().unwrap();
    }
}
