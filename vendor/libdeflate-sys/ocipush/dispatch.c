/*
 * ocipush: libdeflate's compression entry points, each passing on to the copy
 * of deflate_compress.c built for this CPU: the BMI2 one where the CPU has BMI2
 * (most x86-64 CPUs made since 2015), the baseline one elsewhere. The choice is
 * the same for every call of a process, so a compressor is always used and
 * freed by the copy that made it.
 *
 * Why: compiled with -mbmi2, the same C (variable shifts become shlx/shrx)
 * deflates layer text 2-3% faster, with the same output bytes: the code is
 * integer-only, so flags cannot change what it computes. Both copies are
 * checked to give the same bytes (crates/ocipush-engine/src/compress/gzip.rs).
 * Upstream dispatches its decompressor on BMI2 too (lib/x86/decompress_impl.h,
 * one function built with a target attribute); the compressor spans too many
 * functions for that, hence a second build of the file.
 */
#include "../libdeflate/lib/deflate_compress.h"
#include "../libdeflate/lib/x86/cpu_features.h"

#define OCIPUSH_VARIANT(name) ocipush_base_##name
#include "variant_prototypes.h"
#undef OCIPUSH_VARIANT
#define OCIPUSH_VARIANT(name) ocipush_bmi2_##name
#include "variant_prototypes.h"
#undef OCIPUSH_VARIANT

static int
use_bmi2(void)
{
	return HAVE_BMI2(get_x86_cpu_features()) != 0;
}

LIBDEFLATEAPI struct libdeflate_compressor *
libdeflate_alloc_compressor_ex(int compression_level,
			       const struct libdeflate_options *options)
{
	return use_bmi2() ?
		ocipush_bmi2_alloc_compressor_ex(compression_level, options) :
		ocipush_base_alloc_compressor_ex(compression_level, options);
}

LIBDEFLATEAPI struct libdeflate_compressor *
libdeflate_alloc_compressor(int compression_level)
{
	return use_bmi2() ? ocipush_bmi2_alloc_compressor(compression_level) :
			    ocipush_base_alloc_compressor(compression_level);
}

LIBDEFLATEAPI size_t
libdeflate_deflate_compress(struct libdeflate_compressor *c,
			    const void *in, size_t in_nbytes,
			    void *out, size_t out_nbytes_avail)
{
	return use_bmi2() ?
		ocipush_bmi2_deflate_compress(c, in, in_nbytes, out,
					      out_nbytes_avail) :
		ocipush_base_deflate_compress(c, in, in_nbytes, out,
					      out_nbytes_avail);
}

LIBDEFLATEAPI void
libdeflate_free_compressor(struct libdeflate_compressor *c)
{
	if (use_bmi2())
		ocipush_bmi2_free_compressor(c);
	else
		ocipush_base_free_compressor(c);
}

unsigned int
libdeflate_get_compression_level(struct libdeflate_compressor *c)
{
	return use_bmi2() ? ocipush_bmi2_get_compression_level(c) :
			    ocipush_base_get_compression_level(c);
}

LIBDEFLATEAPI size_t
libdeflate_deflate_compress_bound(struct libdeflate_compressor *c,
				  size_t in_nbytes)
{
	return use_bmi2() ? ocipush_bmi2_deflate_compress_bound(c, in_nbytes) :
			    ocipush_base_deflate_compress_bound(c, in_nbytes);
}

/* Whether the entry points above use the BMI2 copy: for a test. */
int
ocipush_libdeflate_uses_bmi2(void)
{
	return use_bmi2();
}
