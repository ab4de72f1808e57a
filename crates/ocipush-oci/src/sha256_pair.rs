//! Two sha256 streams hashed side by side: a layer's uncompressed bytes (its diffID) and the
//! compressed bytes that leave (its digest), which a cold push computes in the same pass.
//!
//! Why not two `sha2::Sha256`: with the x86 SHA extensions one stream spends part of its time
//! waiting on the latency of each round instruction, which a second, independent stream
//! interleaved with it fills. On the bench machine, input in cache, one stream hashes at
//! 1.7 GB/s (as `sha2` does) and two interleaved at 2.2–2.3 GB/s together; in a cold push of the
//! bench's text image, sha256 went from 25% to 22% of ocipush's CPU (`BENCHMARKS.md`,
//! 2026-12-02 third session). Where the CPU lacks the extensions, the pair is two `sha2`
//! hashers.

use sha2::{Digest as _, Sha256};

use crate::digest::{from_hash, Digest};

/// Two sha256 hashes fed together; each also counts its bytes.
pub struct Sha256Pair {
    inner: Inner,
}

enum Inner {
    #[cfg(target_arch = "x86_64")]
    Interleaved([shani::Stream; 2]),
    Separate([(Sha256, u64); 2]),
}

impl Default for Sha256Pair {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256Pair {
    /// Two empty streams, interleaved on the SHA extensions when this CPU has them.
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(pair) = shani::Stream::pair() {
            return Sha256Pair {
                inner: Inner::Interleaved(pair),
            };
        }
        Self::separate()
    }

    /// Two plain `sha2` hashers, whatever the CPU has.
    fn separate() -> Self {
        Sha256Pair {
            inner: Inner::Separate([(Sha256::new(), 0), (Sha256::new(), 0)]),
        }
    }

    /// Appends `first` to the first stream and `second` to the second.
    pub fn update(&mut self, first: &[u8], second: &[u8]) {
        match &mut self.inner {
            #[cfg(target_arch = "x86_64")]
            Inner::Interleaved(streams) => {
                let [a, b] = streams;
                shani::update_pair(a, first, b, second);
            }
            Inner::Separate([a, b]) => {
                for ((hasher, len), bytes) in [(a, first), (b, second)] {
                    hasher.update(bytes);
                    *len += bytes.len() as u64;
                }
            }
        }
    }

    /// The digest and length of each stream.
    pub fn finish(self) -> [(Digest, u64); 2] {
        match self.inner {
            #[cfg(target_arch = "x86_64")]
            Inner::Interleaved(streams) => streams.map(|stream| {
                let len = stream.len();
                (from_hash(&stream.finish()), len)
            }),
            Inner::Separate(hashers) => {
                hashers.map(|(hasher, len)| (from_hash(hasher.finalize().as_slice()), len))
            }
        }
    }
}

/// sha256 on the x86 SHA extensions (Intel's "SHA extensions" paper, FIPS 180-4 for padding).
#[cfg(target_arch = "x86_64")]
mod shani {
    use std::arch::x86_64::*;

    const BLOCK: usize = 64;

    const INITIAL_STATE: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    const ROUND_CONSTANTS: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// One stream: its chaining state, the bytes of a block not yet complete, and its length.
    /// Made only by [`Stream::pair`], after the CPU was checked, which is what makes the
    /// `unsafe` calls below sound.
    pub(super) struct Stream {
        state: [u32; 8],
        pending: [u8; BLOCK],
        pending_len: usize,
        len: u64,
    }

    impl Stream {
        /// Two fresh streams, if this CPU has the instructions they use.
        pub(super) fn pair() -> Option<[Stream; 2]> {
            let supported = is_x86_feature_detected!("sha")
                && is_x86_feature_detected!("sse2")
                && is_x86_feature_detected!("ssse3")
                && is_x86_feature_detected!("sse4.1");
            supported.then(|| [Self::fresh(), Self::fresh()])
        }

        fn fresh() -> Self {
            Stream {
                state: INITIAL_STATE,
                pending: [0; BLOCK],
                pending_len: 0,
                len: 0,
            }
        }

        pub(super) fn len(&self) -> u64 {
            self.len
        }

        /// Completes the pending block from the front of `data` (hashing it once whole) and
        /// returns the rest of `data`.
        fn top_up<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
            if self.pending_len == 0 {
                return data;
            }
            let take = (BLOCK - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            if self.pending_len == BLOCK {
                // SAFETY: a `Stream` exists only where the CPU has the instructions.
                unsafe { compress_one(&mut self.state, &self.pending) };
                self.pending_len = 0;
            }
            &data[take..]
        }

        /// Hashes the whole blocks of `data` and keeps the rest pending. Bytes left over by
        /// `top_up` mean its pending block was completed, so nothing pending is overwritten.
        fn absorb(&mut self, data: &[u8]) {
            if data.is_empty() {
                return;
            }
            debug_assert_eq!(self.pending_len, 0);
            let whole = data.len() / BLOCK * BLOCK;
            // SAFETY: as in `top_up`.
            unsafe { compress_one(&mut self.state, &data[..whole]) };
            let tail = &data[whole..];
            self.pending[..tail.len()].copy_from_slice(tail);
            self.pending_len = tail.len();
        }

        /// Pads the last block (a 1 bit, zeros, the length in bits) and returns the hash.
        pub(super) fn finish(mut self) -> [u8; 32] {
            let bits = self.len.wrapping_mul(8);
            let mut tail = [0u8; 2 * BLOCK];
            tail[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            tail[self.pending_len] = 0x80;
            let end = if self.pending_len < BLOCK - 8 {
                BLOCK
            } else {
                2 * BLOCK
            };
            tail[end - 8..end].copy_from_slice(&bits.to_be_bytes());
            // SAFETY: as in `top_up`.
            unsafe { compress_one(&mut self.state, &tail[..end]) };
            let mut hash = [0u8; 32];
            for (out, word) in hash.chunks_exact_mut(4).zip(self.state) {
                out.copy_from_slice(&word.to_be_bytes());
            }
            hash
        }
    }

    /// Appends `first` to `a` and `second` to `b`, hashing the two streams' blocks in step for
    /// as long as both have whole blocks.
    pub(super) fn update_pair(a: &mut Stream, first: &[u8], b: &mut Stream, second: &[u8]) {
        a.len += first.len() as u64;
        b.len += second.len() as u64;
        let first = a.top_up(first);
        let second = b.top_up(second);
        // A stream whose pending block is still not whole has no bytes left here.
        let in_step = (first.len() / BLOCK).min(second.len() / BLOCK) * BLOCK;
        let (first_together, first_rest) = first.split_at(in_step);
        let (second_together, second_rest) = second.split_at(in_step);
        // SAFETY: as in `Stream::top_up`.
        unsafe { compress_two(&mut a.state, first_together, &mut b.state, second_together) };
        a.absorb(first_rest);
        b.absorb(second_rest);
    }

    /// The SHA instructions keep the state as ABEF and CDGH; FIPS order is ABCDEFGH.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn load_state(state: &[u32; 8]) -> (__m128i, __m128i) {
        let dcba = _mm_loadu_si128(state.as_ptr().cast());
        let hgfe = _mm_loadu_si128(state.as_ptr().add(4).cast());
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
        (
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xF0),
        )
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn store_state(abef: __m128i, cdgh: __m128i, state: &mut [u32; 8]) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        _mm_storeu_si128(state.as_mut_ptr().cast(), _mm_blend_epi16(feba, dchg, 0xF0));
        _mm_storeu_si128(
            state.as_mut_ptr().add(4).cast(),
            _mm_alignr_epi8(dchg, feba, 8),
        );
    }

    /// The 64 message words of a 64-byte block, four to a vector, each plus its round constant.
    /// All computed before the rounds: the schedule does not wait on the rounds, so the CPU
    /// runs it alongside them (measured faster than computing each group just in time).
    #[inline(always)]
    unsafe fn message_schedule(block: &[u8]) -> [__m128i; 16] {
        debug_assert_eq!(block.len(), BLOCK);
        // Big-endian words.
        let swap = _mm_set_epi64x(0x0c0d0e0f08090a0b, 0x0405060700010203);
        let mut w = [_mm_setzero_si128(); 16];
        for (j, words) in w.iter_mut().take(4).enumerate() {
            *words = _mm_shuffle_epi8(_mm_loadu_si128(block.as_ptr().add(16 * j).cast()), swap);
        }
        for j in 4..16 {
            let partial = _mm_add_epi32(
                _mm_sha256msg1_epu32(w[j - 4], w[j - 3]),
                _mm_alignr_epi8(w[j - 1], w[j - 2], 4),
            );
            w[j] = _mm_sha256msg2_epu32(partial, w[j - 1]);
        }
        for (j, words) in w.iter_mut().enumerate() {
            let k = _mm_loadu_si128(ROUND_CONSTANTS.as_ptr().add(4 * j).cast());
            *words = _mm_add_epi32(*words, k);
        }
        w
    }

    /// Four rounds on words plus constants `wk`.
    #[inline(always)]
    unsafe fn four_rounds(abef: &mut __m128i, cdgh: &mut __m128i, wk: __m128i) {
        *cdgh = _mm_sha256rnds2_epu32(*cdgh, *abef, wk);
        *abef = _mm_sha256rnds2_epu32(*abef, *cdgh, _mm_shuffle_epi32(wk, 0x0E));
    }

    /// Hashes whole 64-byte blocks of one stream.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn compress_one(state: &mut [u32; 8], blocks: &[u8]) {
        let (mut abef, mut cdgh) = load_state(state);
        for block in blocks.chunks_exact(BLOCK) {
            let (abef_before, cdgh_before) = (abef, cdgh);
            for wk in message_schedule(block) {
                four_rounds(&mut abef, &mut cdgh, wk);
            }
            abef = _mm_add_epi32(abef, abef_before);
            cdgh = _mm_add_epi32(cdgh, cdgh_before);
        }
        store_state(abef, cdgh, state);
    }

    /// Hashes whole blocks of two streams of equal length, their rounds interleaved so that
    /// each stream's instructions fill the other's latency.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn compress_two(a: &mut [u32; 8], a_blocks: &[u8], b: &mut [u32; 8], b_blocks: &[u8]) {
        debug_assert_eq!(a_blocks.len(), b_blocks.len());
        let (mut a_abef, mut a_cdgh) = load_state(a);
        let (mut b_abef, mut b_cdgh) = load_state(b);
        for (a_block, b_block) in a_blocks
            .chunks_exact(BLOCK)
            .zip(b_blocks.chunks_exact(BLOCK))
        {
            let before = (a_abef, a_cdgh, b_abef, b_cdgh);
            let (a_w, b_w) = (message_schedule(a_block), message_schedule(b_block));
            for (a_wk, b_wk) in a_w.into_iter().zip(b_w) {
                a_cdgh = _mm_sha256rnds2_epu32(a_cdgh, a_abef, a_wk);
                b_cdgh = _mm_sha256rnds2_epu32(b_cdgh, b_abef, b_wk);
                a_abef = _mm_sha256rnds2_epu32(a_abef, a_cdgh, _mm_shuffle_epi32(a_wk, 0x0E));
                b_abef = _mm_sha256rnds2_epu32(b_abef, b_cdgh, _mm_shuffle_epi32(b_wk, 0x0E));
            }
            a_abef = _mm_add_epi32(a_abef, before.0);
            a_cdgh = _mm_add_epi32(a_cdgh, before.1);
            b_abef = _mm_add_epi32(b_abef, before.2);
            b_cdgh = _mm_add_epi32(b_cdgh, before.3);
        }
        store_state(a_abef, a_cdgh, a);
        store_state(b_abef, b_cdgh, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256_of;

    /// Bytes that are not all alike, so a wrong word order or shift shows.
    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Feeds both streams in pieces cut at `cuts` (the same cut points for both, so the two
    /// streams are at different offsets within their blocks) and checks both digests.
    fn check(mut pair: Sha256Pair, first: &[u8], second: &[u8], piece: usize) {
        let mut a = first.chunks(piece.max(1));
        let mut b = second.chunks((piece / 3).max(1));
        loop {
            match (a.next(), b.next()) {
                (None, None) => break,
                (x, y) => pair.update(x.unwrap_or(&[]), y.unwrap_or(&[])),
            }
        }
        let [(da, la), (db, lb)] = pair.finish();
        assert_eq!(
            (da, la),
            (sha256_of(first), first.len() as u64),
            "first, {} bytes in pieces of {piece}",
            first.len()
        );
        assert_eq!(
            (db, lb),
            (sha256_of(second), second.len() as u64),
            "second, {} bytes",
            second.len()
        );
    }

    type MakePair = fn() -> Sha256Pair;

    fn pairs() -> Vec<(&'static str, MakePair)> {
        vec![
            ("default", Sha256Pair::new),
            ("separate", Sha256Pair::separate),
        ]
    }

    #[test]
    fn both_streams_match_sha2_at_every_padding_boundary() {
        // 55/56 and 119/120: where the length field still fits in the last block or needs
        // another; 64k±1: whole blocks and one byte either side.
        let lengths = [
            0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 65535, 65536,
        ];
        for (name, make) in pairs() {
            for &len_a in &lengths {
                for &len_b in &[0, 56, 64, 4097] {
                    let first = bytes(len_a, len_a as u64 + 1);
                    let second = bytes(len_b, len_b as u64 + 99);
                    for piece in [1, 64, 100, 4096, usize::MAX] {
                        let piece = piece.min(len_a.max(1));
                        check(make(), &first, &second, piece);
                    }
                }
            }
            eprintln!("{name}: ok");
        }
    }

    #[test]
    fn long_uneven_streams_match_sha2() {
        // The shape ocipush feeds: 256 KiB of layer against a shorter, odd-length member.
        let first = bytes(4 * 262_144 + 17, 7);
        let second = bytes(300_001, 8);
        for (_, make) in pairs() {
            check(make(), &first, &second, 262_144);
            check(make(), &second, &first, 65_537);
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_sha_extensions_are_used_where_the_cpu_has_them() {
        let interleaved = matches!(Sha256Pair::new().inner, Inner::Interleaved(_));
        assert_eq!(interleaved, is_x86_feature_detected!("sha"));
    }
}
