/* ocipush: the entry points of one copy of deflate_compress.c (see dispatch.c). */
struct libdeflate_compressor *
OCIPUSH_VARIANT(alloc_compressor_ex)(int compression_level,
				     const struct libdeflate_options *options);
struct libdeflate_compressor *
OCIPUSH_VARIANT(alloc_compressor)(int compression_level);
size_t
OCIPUSH_VARIANT(deflate_compress)(struct libdeflate_compressor *c,
				  const void *in, size_t in_nbytes,
				  void *out, size_t out_nbytes_avail);
void
OCIPUSH_VARIANT(free_compressor)(struct libdeflate_compressor *c);
unsigned int
OCIPUSH_VARIANT(get_compression_level)(struct libdeflate_compressor *c);
size_t
OCIPUSH_VARIANT(deflate_compress_bound)(struct libdeflate_compressor *c,
					size_t in_nbytes);
