//! Block-parallel, deterministic gzip in the style of pigz: the input is cut into fixed-size
//! blocks, each deflated on the shared rayon pool with the previous block's last 32 KiB as its
//! dictionary and ended with a sync flush, and the blocks are written in order behind one gzip
//! header and followed by one trailer. The output depends only on the input and the level —
//! never on thread count or timing — so the same layer always gets the same digest.
//!
//! Why home-made rather than a parallel-gzip crate: every layer of every image shares one pool
//! (the run's compression budget is the machine's cores, not cores per layer), and blocks that
//! look incompressible are stored instead of deflated, so random data costs a copy, not deflate
//! effort. Both need control of the block loop.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use flate2::{Compress, Compression, FlushCompress};
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Bytes of input per block.
pub(crate) const BLOCK_SIZE: usize = 256 * 1024;
/// The deflate window: the dictionary carried from one block to the next.
const DICTIONARY: usize = 32 * 1024;
/// Sample size and count for the incompressibility probe.
const PROBE: usize = 4 * 1024;
/// A sample that deflates to more than this fraction of itself is taken as incompressible.
const INCOMPRESSIBLE_RATIO: f64 = 0.97;

/// gzip header: no name, no mtime (0), unknown OS — nothing that varies between runs.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// An empty final fixed-Huffman block: ends the deflate stream after the sync-flushed blocks.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// The pool every layer's blocks are compressed on: one thread per core for the whole run.
fn compression_pool() -> &'static ThreadPool {
    static POOL: OnceLock<ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        ThreadPoolBuilder::new()
            .thread_name(|i| format!("ocipush-gzip-{i}"))
            .build()
            .expect("the compression pool starts")
    })
}

/// Compresses `input` into `out` as one gzip member. Call it from outside the pool (it waits
/// for the pool's work).
pub(crate) fn gzip_parallel(
    input: &mut dyn Read,
    out: &mut dyn Write,
    level: u32,
) -> io::Result<()> {
    gzip_on(compression_pool(), input, out, level)
}

fn gzip_on(
    pool: &ThreadPool,
    input: &mut dyn Read,
    out: &mut dyn Write,
    level: u32,
) -> io::Result<()> {
    out.write_all(&HEADER)?;
    let in_flight_limit = pool.current_num_threads() * 2 + 1;
    let mut pending: VecDeque<mpsc::Receiver<io::Result<Vec<u8>>>> = VecDeque::new();
    let mut crc = crc32fast::Hasher::new();
    let mut total: u64 = 0;
    let mut dictionary: Option<Arc<[u8]>> = None;
    loop {
        let block = read_block(input)?;
        if block.is_empty() {
            break;
        }
        crc.update(&block);
        total += block.len() as u64;
        let next_dictionary: Arc<[u8]> = block[block.len().saturating_sub(DICTIONARY)..].into();
        let (tx, rx) = mpsc::sync_channel(1);
        let previous = dictionary.replace(next_dictionary);
        pool.spawn(move || {
            let _ = tx.send(deflate_block(&block, previous.as_deref(), level));
        });
        pending.push_back(rx);
        while pending.len() >= in_flight_limit {
            write_next(&mut pending, out)?;
        }
    }
    while !pending.is_empty() {
        write_next(&mut pending, out)?;
    }
    out.write_all(&FINAL_BLOCK)?;
    out.write_all(&crc.finalize().to_le_bytes())?;
    // ISIZE is the input size modulo 2^32, as RFC 1952 says.
    out.write_all(&(total as u32).to_le_bytes())?;
    Ok(())
}

fn write_next(
    pending: &mut VecDeque<mpsc::Receiver<io::Result<Vec<u8>>>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let rx = pending.pop_front().expect("caller checked");
    let compressed = rx
        .recv()
        .map_err(|_| io::Error::other("a compression worker stopped"))??;
    out.write_all(&compressed)
}

fn read_block(input: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut block = vec![0u8; BLOCK_SIZE];
    let mut filled = 0;
    while filled < BLOCK_SIZE {
        match input.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    block.truncate(filled);
    Ok(block)
}

/// Deflates one block, ending on a byte boundary (sync flush) so blocks concatenate.
fn deflate_block(block: &[u8], dictionary: Option<&[u8]>, level: u32) -> io::Result<Vec<u8>> {
    let level = if level > 0 && looks_incompressible(block) {
        0
    } else {
        level
    };
    let mut compressor = Compress::new(Compression::new(level), false);
    if let (Some(dictionary), true) = (dictionary, level > 0) {
        compressor
            .set_dictionary(dictionary)
            .map_err(|e| io::Error::other(format!("deflate dictionary: {e}")))?;
    }
    let mut out = Vec::with_capacity(block.len() / 2 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(block.len() / 4 + 1024);
        }
        let consumed = compressor.total_in() as usize;
        compressor
            .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync)
            .map_err(|e| io::Error::other(format!("deflate: {e}")))?;
        // Done when all input is taken and the flush fit with room to spare.
        if compressor.total_in() as usize == block.len() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

/// Deflates three small samples fast; if they do not shrink, the block is stored instead.
fn looks_incompressible(block: &[u8]) -> bool {
    if block.len() < 3 * PROBE {
        return false;
    }
    let offsets = [0, block.len() / 2 - PROBE / 2, block.len() - PROBE];
    let mut sampled = 0usize;
    let mut compressed = 0usize;
    for offset in offsets {
        let sample = &block[offset..offset + PROBE];
        let mut c = Compress::new(Compression::fast(), false);
        let mut out = Vec::with_capacity(PROBE + 256);
        if c.compress_vec(sample, &mut out, FlushCompress::Finish)
            .is_err()
        {
            return false;
        }
        sampled += sample.len();
        compressed += out.len();
    }
    compressed as f64 > sampled as f64 * INCOMPRESSIBLE_RATIO
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8], level: u32) -> Vec<u8> {
        let mut out = Vec::new();
        gzip_parallel(&mut &data[..], &mut out, level).unwrap();
        out
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn text(len: usize) -> Vec<u8> {
        let words = [
            "layer ",
            "image ",
            "registry ",
            "digest ",
            "blob\n",
            "manifest ",
        ];
        let mut out = Vec::with_capacity(len);
        let mut i = 7u64;
        while out.len() < len {
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(words[(i >> 33) as usize % words.len()].as_bytes());
        }
        out.truncate(len);
        out
    }

    fn random(len: usize) -> Vec<u8> {
        let mut x = 0x9e3779b97f4a7c15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn round_trips_at_every_size_boundary() {
        for len in [
            0,
            1,
            100,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            3 * BLOCK_SIZE + 17,
        ] {
            let data = text(len);
            assert_eq!(gunzip(&gz(&data, 1)), data, "len {len}");
            assert_eq!(gunzip(&gz(&data, 6)), data, "len {len} level 6");
        }
    }

    #[test]
    fn output_is_deterministic_across_pool_sizes() {
        let data = text(5 * BLOCK_SIZE + 123);
        let default_pool = gz(&data, 1);
        let on = |threads| {
            let pool = ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = Vec::new();
            gzip_on(&pool, &mut &data[..], &mut out, 1).unwrap();
            out
        };
        let one_thread = on(1);
        let seven_threads = on(7);
        assert_eq!(default_pool, one_thread);
        assert_eq!(default_pool, seven_threads);
    }

    #[test]
    fn text_shrinks_and_random_is_stored() {
        let data = text(4 * BLOCK_SIZE);
        assert!(gz(&data, 1).len() < data.len() / 2);
        let noise = random(4 * BLOCK_SIZE);
        assert!(looks_incompressible(&noise[..BLOCK_SIZE]));
        assert!(!looks_incompressible(&data[..BLOCK_SIZE]));
        let packed = gz(&noise, 6);
        // Stored blocks cost a few bytes each, never deflate's expansion.
        assert!(
            packed.len() < noise.len() + 1024,
            "{} vs {}",
            packed.len(),
            noise.len()
        );
        assert_eq!(gunzip(&packed), noise);
    }

    #[test]
    fn gzip_tool_reads_it_too() {
        // An independent decoder: the system's gzip.
        let data = text(2 * BLOCK_SIZE + 5);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        std::fs::write(&path, gz(&data, 1)).unwrap();
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(&path)
            .output()
            .expect("gzip runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, data);
    }
}
