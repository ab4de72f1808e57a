/*
 * ocipush: renames deflate_compress.c's entry points to OCIPUSH_VARIANT(name),
 * so that it can be compiled twice (baseline x86-64, and with BMI2) and
 * dispatch.c can choose one at run time. Include before deflate_compress.c.
 */
#define libdeflate_alloc_compressor_ex		OCIPUSH_VARIANT(alloc_compressor_ex)
#define libdeflate_alloc_compressor		OCIPUSH_VARIANT(alloc_compressor)
#define libdeflate_deflate_compress		OCIPUSH_VARIANT(deflate_compress)
#define libdeflate_free_compressor		OCIPUSH_VARIANT(free_compressor)
#define libdeflate_get_compression_level	OCIPUSH_VARIANT(get_compression_level)
#define libdeflate_deflate_compress_bound	OCIPUSH_VARIANT(deflate_compress_bound)
