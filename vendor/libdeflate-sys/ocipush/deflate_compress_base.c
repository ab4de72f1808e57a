/* ocipush: deflate_compress.c for any x86-64 CPU (see dispatch.c). */
#define OCIPUSH_VARIANT(name) ocipush_base_##name
#include "variant.h"
#include "../libdeflate/lib/deflate_compress.c"
