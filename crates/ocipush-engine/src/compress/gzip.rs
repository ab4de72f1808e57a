//! Block-parallel, deterministic gzip: the input is cut into fixed-size blocks, each compressed
//! into a complete gzip member by libdeflate on a shared pool, and the members are written in
//! order. Concatenated members are one valid gzip stream (RFC 1952 §2.2; what BGZF and pgzip's
//! multistream output rely on), read by Go's, zlib's, Python's and Java's decoders alike. The
//! output depends only on the input and the level — never on thread count or timing — so the
//! same layer always gets the same digest.
//!
//! Why home-made rather than a parallel-gzip crate: every layer of every image shares one pool
//! (the run's compression budget is the machine's cores, not cores per layer), and blocks that
//! look incompressible are stored, not deflated, so random data costs a copy, not deflate
//! effort. Why libdeflate: it is the fastest deterministic deflate measured here, and level 1
//! runs on a vendored copy with a lighter matchfinder (`vendor/libdeflate-sys/OCIPUSH.md`): on
//! layer text, 583 MB/s per core at a 0.261 ratio, against upstream's 330 MB/s at 0.245 and
//! zlib-rs's 320 MB/s at 0.361 (256 KiB blocks, this machine); a cold push is deflate-bound.
//! It compresses whole buffers only, hence whole members per block.
//! Block buffers are recycled from job to job: zeroing a fresh 256 KiB for every block cost
//! about 2% of a cold push (memset and page faults in the profile).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{mpsc, Arc, OnceLock};

use libdeflater::{CompressionLvl, Compressor};
use ocipush_oci::Sha256Pair;
use ocipush_source::read_up_to;

use super::schedule::{CompressionPool, HEAD_START_PER_THREAD};

/// Bytes of input per block (and gzip member).
pub(crate) const BLOCK_SIZE: usize = 256 * 1024;
/// Sample size for the incompressibility probe (three samples per block).
const PROBE: usize = 4 * 1024;
/// A sample that deflates to more than this fraction of itself is taken as incompressible.
const INCOMPRESSIBLE_RATIO: f64 = 0.97;
/// Samples whose byte values collide less often than uniform over 2^7.5 values would are taken
/// as random-looking: 2^7.5 as a fraction, so the decision is integer arithmetic, the same on
/// every machine. (Below that, Huffman coding alone saves over 6%: no trial deflate needed.)
const RANDOM_LOOKING_VALUES: (u64, u64) = (181_019_336, 1_000_000);

/// The pool every layer's blocks are compressed on: one thread per core for the whole run.
fn compression_pool() -> &'static Arc<CompressionPool> {
    static POOL: OnceLock<Arc<CompressionPool>> = OnceLock::new();
    POOL.get_or_init(|| CompressionPool::new(0, HEAD_START_PER_THREAD))
}

/// Compresses `input` into `out` as a gzip stream, and feeds `hashes` the input (first stream)
/// and the output (second) in step, block by block, so both digests cost little more than
/// one. `written` hears each block's input length once its member is written (input is read
/// several blocks ahead of that). Call it from outside the pool (it waits for the pool's work).
pub(crate) fn gzip_parallel(
    input: &mut dyn Read,
    out: &mut dyn Write,
    level: u32,
    hashes: &mut Sha256Pair,
    written: &mut dyn FnMut(u64),
) -> io::Result<()> {
    gzip_on(compression_pool(), input, out, level, hashes, written)
}

/// A block's input and its member's output, recycled from job to job so that no block pays for
/// zeroing fresh memory (the buffers keep their length; `filled`/`written` say what counts).
struct Buffers {
    input: Vec<u8>,
    filled: usize,
    output: Vec<u8>,
}

/// A finished block: its buffers back, and its member's length (or what went wrong).
type Done = (Buffers, io::Result<usize>);

fn gzip_on(
    pool: &Arc<CompressionPool>,
    input: &mut dyn Read,
    out: &mut dyn Write,
    level: u32,
    hashes: &mut Sha256Pair,
    written: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let in_flight_limit = pool.thread_count() * 2 + 1;
    let mut stream = pool.stream();
    let mut pending: VecDeque<mpsc::Receiver<Done>> = VecDeque::new();
    let mut free: Vec<Buffers> = Vec::new();
    let mut first = true;
    loop {
        let mut buffers = free.pop().unwrap_or_else(|| Buffers {
            input: vec![0u8; BLOCK_SIZE],
            filled: 0,
            output: Vec::new(),
        });
        buffers.filled = read_up_to(input, &mut buffers.input)?;
        // An empty input still gets one (empty) member: a gzip stream is never zero bytes.
        if buffers.filled == 0 && !first {
            break;
        }
        let last = buffers.filled < BLOCK_SIZE;
        first = false;
        let (tx, rx) = mpsc::sync_channel(1);
        stream.spawn(move || {
            let mut buffers = buffers;
            let written = gzip_member(&buffers.input[..buffers.filled], level, &mut buffers.output);
            let _ = tx.send((buffers, written));
        });
        pending.push_back(rx);
        while pending.len() >= in_flight_limit {
            free.push(write_next(&mut pending, out, hashes, written)?);
        }
        if last {
            break;
        }
    }
    while !pending.is_empty() {
        write_next(&mut pending, out, hashes, written)?;
    }
    Ok(())
}

/// Hashes the oldest block and its member and writes the member out; returns the block's
/// buffers for the next block.
fn write_next(
    pending: &mut VecDeque<mpsc::Receiver<Done>>,
    out: &mut dyn Write,
    hashes: &mut Sha256Pair,
    written: &mut dyn FnMut(u64),
) -> io::Result<Buffers> {
    let rx = pending.pop_front().expect("caller checked");
    let (buffers, member_len) = rx
        .recv()
        .map_err(|_| io::Error::other("a compression worker stopped"))?;
    let member = &buffers.output[..member_len?];
    hashes.update(&buffers.input[..buffers.filled], member);
    out.write_all(member)?;
    written(buffers.filled as u64);
    Ok(buffers)
}

thread_local! {
    /// One compressor per pool thread and level: libdeflate's state is worth reusing.
    static COMPRESSORS: RefCell<Vec<(i32, Compressor)>> = const { RefCell::new(Vec::new()) };
}

fn with_compressor<T>(level: i32, f: impl FnOnce(&mut Compressor) -> T) -> io::Result<T> {
    let lvl = CompressionLvl::new(level)
        .map_err(|_| io::Error::other(format!("invalid gzip level {level}")))?;
    COMPRESSORS.with(|cell| {
        let mut compressors = cell.borrow_mut();
        let index = match compressors.iter().position(|(l, _)| *l == level) {
            Some(i) => i,
            None => {
                compressors.push((level, Compressor::new(lvl)));
                compressors.len() - 1
            }
        };
        Ok(f(&mut compressors[index].1))
    })
}

/// One block as a complete gzip member in `out` (grown as needed, never shrunk); returns the
/// member's length. Stored (level 0) when the block looks incompressible.
fn gzip_member(block: &[u8], level: u32, out: &mut Vec<u8>) -> io::Result<usize> {
    let level = if level > 0 && looks_incompressible(block) {
        0
    } else {
        level
    };
    with_compressor(level as i32, |c| {
        grow(out, c.gzip_compress_bound(block.len()));
        c.gzip_compress(block, out)
            .map_err(|e| io::Error::other(format!("gzip: {e:?}")))
    })?
}

/// Makes `buf` at least `len` long; zeroes only the part it never had.
fn grow(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}

/// Whether a block is not worth deflating: three samples' bytes spread almost evenly over all
/// 256 values (the signature of compressed or encrypted data), and deflating the samples does
/// not shrink them by 3%. The byte count is cheap; only random-looking blocks pay for the trial
/// deflate, so compressible layers no longer spend 5% of their deflate effort on probing.
fn looks_incompressible(block: &[u8]) -> bool {
    if block.len() < 3 * PROBE {
        return false;
    }
    let offsets = [0, block.len() / 2 - PROBE / 2, block.len() - PROBE];
    let samples = offsets.map(|offset| &block[offset..offset + PROBE]);
    if !random_looking(&samples) {
        return false;
    }
    let result = with_compressor(1, |c| {
        let mut out = vec![0u8; c.deflate_compress_bound(PROBE)];
        let mut compressed = 0usize;
        for sample in samples {
            match c.deflate_compress(sample, &mut out) {
                Ok(n) => compressed += n,
                Err(_) => return false,
            }
        }
        compressed as f64 > (3 * PROBE) as f64 * INCOMPRESSIBLE_RATIO
    });
    result.unwrap_or(false)
}

/// Whether the samples' bytes spread like random data: their collision entropy (Rényi order 2,
/// `log2(n² / Σ count²)`: 8 bits for uniformly random bytes, 4 to 5 for text) is over 7.5 bits.
fn random_looking(samples: &[&[u8]]) -> bool {
    let mut counts = [0u64; 256];
    let mut total = 0u64;
    for sample in samples {
        for &byte in *sample {
            counts[byte as usize] += 1;
        }
        total += sample.len() as u64;
    }
    let collisions: u64 = counts.iter().map(|c| c * c).sum();
    // n² / Σc² > 2^7.5  <=>  Σc² · 2^7.5 < n²
    let (num, den) = RANDOM_LOOKING_VALUES;
    u128::from(collisions) * u128::from(num) < u128::from(total * total) * u128::from(den)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocipush_oci::sha256_of;

    fn gz(data: &[u8], level: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut hashes = Sha256Pair::new();
        gzip_parallel(&mut &data[..], &mut out, level, &mut hashes, &mut |_| {}).unwrap();
        let [input, output] = hashes.finish();
        assert_eq!(input, (sha256_of(data), data.len() as u64), "input hash");
        assert_eq!(output, (sha256_of(&out), out.len() as u64), "output hash");
        out
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
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
        crate::producer::random_bytes(len)
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
            let pool = CompressionPool::new(threads, HEAD_START_PER_THREAD);
            let mut out = Vec::new();
            gzip_on(
                &pool,
                &mut &data[..],
                &mut out,
                1,
                &mut Sha256Pair::new(),
                &mut |_| {},
            )
            .unwrap();
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
        assert!(random_looking(&[&noise[..3 * PROBE]]));
        assert!(!random_looking(&[&data[..3 * PROBE]]));
        // Random-looking bytes that repeat within a sample: entropy alone would store them;
        // the trial deflate sees the repeats and the block is compressed.
        let repeated: Vec<u8> = noise[..1024]
            .iter()
            .copied()
            .cycle()
            .take(BLOCK_SIZE)
            .collect();
        assert!(random_looking(&[&repeated[..3 * PROBE]]));
        assert!(!looks_incompressible(&repeated));
        assert!(gz(&repeated, 1).len() < BLOCK_SIZE / 10);
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
    fn output_bytes_are_pinned() {
        // The digest cache and every earlier push rely on these exact bytes: a change in block
        // size, probe, library version, the vendored libdeflate patch (vendor/libdeflate-sys) or
        // member framing must show up here (and then change `CompressionSettings::cache_id`),
        // never pass silently.
        let mut data = text(3 * BLOCK_SIZE + 4321);
        data.extend_from_slice(&random(BLOCK_SIZE));
        let digest = sha256_of(&gz(&data, 1));
        assert_eq!(
            digest.to_string(),
            "sha256:6b519fdcd8d58313d569d7e171a23431854d00b062a494b80af6a548aa95847b"
        );
    }

    /// The entry points of the copy of libdeflate's compressor whose symbols start with
    /// `$prefix` (vendor/libdeflate-sys/ocipush/variant.h): one declaration for both copies.
    #[cfg(all(target_arch = "x86_64", not(target_env = "msvc")))]
    macro_rules! compressor_copy {
        ($prefix:literal) => {{
            use std::ffi::c_void;
            extern "C" {
                #[link_name = concat!($prefix, "alloc_compressor")]
                fn alloc(level: i32) -> *mut c_void;
                #[link_name = concat!($prefix, "deflate_compress")]
                fn compress(
                    c: *mut c_void,
                    input: *const u8,
                    in_len: usize,
                    out: *mut u8,
                    out_len: usize,
                ) -> usize;
                #[link_name = concat!($prefix, "free_compressor")]
                fn free(c: *mut c_void);
            }
            CompressorCopy {
                alloc,
                compress,
                free,
            }
        }};
    }

    /// The entry points of one copy of libdeflate's compressor (vendor/libdeflate-sys/ocipush).
    #[cfg(all(target_arch = "x86_64", not(target_env = "msvc")))]
    struct CompressorCopy {
        alloc: unsafe extern "C" fn(i32) -> *mut std::ffi::c_void,
        compress:
            unsafe extern "C" fn(*mut std::ffi::c_void, *const u8, usize, *mut u8, usize) -> usize,
        free: unsafe extern "C" fn(*mut std::ffi::c_void),
    }

    #[cfg(all(target_arch = "x86_64", not(target_env = "msvc")))]
    impl CompressorCopy {
        fn deflate(&self, data: &[u8], level: i32) -> Vec<u8> {
            let mut out = vec![0u8; data.len() + data.len() / 8 + 1024];
            // SAFETY: the compressor is used and freed by the copy that made it; the buffers
            // are valid for the lengths given.
            unsafe {
                let c = (self.alloc)(level);
                assert!(!c.is_null(), "level {level}");
                let n = (self.compress)(c, data.as_ptr(), data.len(), out.as_mut_ptr(), out.len());
                (self.free)(c);
                assert!(n > 0, "deflate output fits");
                out.truncate(n);
            }
            out
        }
    }

    #[test]
    #[cfg(all(target_arch = "x86_64", not(target_env = "msvc")))]
    fn both_copies_of_libdeflate_give_the_same_bytes() {
        // vendor/libdeflate-sys/ocipush/dispatch.c picks the BMI2 build of the compressor
        // where the CPU has BMI2: its bytes must be the baseline build's, or a layer's digest
        // would depend on the machine that compressed it.
        extern "C" {
            fn ocipush_libdeflate_uses_bmi2() -> i32;
        }
        let has_bmi2 = std::arch::is_x86_feature_detected!("bmi2");
        // SAFETY: a plain query without arguments.
        let uses_bmi2 = unsafe { ocipush_libdeflate_uses_bmi2() } != 0;
        assert_eq!(uses_bmi2, has_bmi2, "the copy in use follows the CPU");
        let base = compressor_copy!("ocipush_base_");
        let bmi2 = compressor_copy!("ocipush_bmi2_");
        let mut mixed = text(2 * BLOCK_SIZE + 999);
        mixed.extend_from_slice(&random(BLOCK_SIZE / 2));
        mixed.extend_from_slice(&text(BLOCK_SIZE / 3));
        let inputs = [text(BLOCK_SIZE), random(BLOCK_SIZE), mixed];
        // Every level: 1 is the fastest path, 2-4 greedy, 5-7 lazy, 8-9 lazy2, 10-12 optimal.
        for level in 0..=12 {
            for data in &inputs {
                let from_base = base.deflate(data, level);
                // What ocipush calls: the dispatched entry points, through libdeflater.
                let mut dispatched = vec![0u8; from_base.len() + 1024];
                let n = Compressor::new(CompressionLvl::new(level).unwrap())
                    .deflate_compress(data, &mut dispatched)
                    .unwrap();
                assert_eq!(&dispatched[..n], &from_base[..], "level {level}");
                if has_bmi2 {
                    assert_eq!(bmi2.deflate(data, level), from_base, "level {level}");
                }
            }
        }
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
