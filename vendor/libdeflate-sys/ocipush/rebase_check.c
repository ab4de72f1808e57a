/*
 * ocipush: checks that level 1's hash-table rebase (HT_REBASE_SIZE in
 * lib/ht_matchfinder.h) never changes the output. ocipush compresses 256 KiB
 * at a time, so its own tests never reach a rebase (one per 2^30 bytes); this
 * program, built once with the default and once with a rebase every few KiB
 * (rebase-check.sh), prints a hash of the output of one large call on text
 * and on mixed data, and the two builds must print the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include "libdeflate.h"

static unsigned long long fnv(const unsigned char *p, size_t n)
{
	unsigned long long h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int main(void)
{
	static const char *words[] = { "layer ", "image ", "registry ",
				       "digest ", "blob\n", "manifest " };
	const size_t n = 8u << 20;
	unsigned char *in = malloc(n);
	unsigned long long x = 7;
	size_t len = 0, i, bound, out_len;
	unsigned char *out;
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);

	if (!in || !c)
		return 2;
	/* Text, with a stretch of noise in the middle. */
	while (len < n) {
		const char *w;
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		w = words[(x >> 33) % 6];
		for (i = 0; w[i] && len < n; i++)
			in[len++] = (len > n / 2 && len < n / 2 + (1u << 20)) ?
				(unsigned char)(x >> (i % 7 * 8)) : (unsigned char)w[i];
	}
	bound = libdeflate_gzip_compress_bound(c, n);
	out = malloc(bound);
	if (!out)
		return 2;
	out_len = libdeflate_gzip_compress(c, in, n, out, bound);
	if (out_len == 0)
		return 3;
	printf("%zu %016llx\n", out_len, fnv(out, out_len));
	libdeflate_free_compressor(c);
	free(in);
	free(out);
	return 0;
}
