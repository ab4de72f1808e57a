/*
 * ocipush: deflate_compress.c compiled with -mbmi2 (build.rs), used only on
 * CPUs that have BMI2 (see dispatch.c).
 */
#define OCIPUSH_VARIANT(name) ocipush_bmi2_##name
#include "variant.h"
#include "../libdeflate/lib/deflate_compress.c"
