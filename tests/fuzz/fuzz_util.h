/* Helpers shared by the fuzz targets: the input size bound, NUL-terminated copies, framing. */
#ifndef ASYNCD_FUZZ_UTIL_H
#define ASYNCD_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* Every target ignores inputs above this (also passed as -max_len by tests/fuzz/run.sh). */
#define FUZZ_MAX_INPUT (1u << 20)

/* The separator between the parts of a multi-part input ("template\n@@\nargs"). */
#define FUZZ_SEP "\n@@\n"

/* A NUL-terminated heap copy of data[0..n); the caller frees it. */
static inline char *fuzz_strndup(const uint8_t *data, size_t n)
{
    char *s = xmalloc(n + 1);
    if (n)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* Splits s (NUL-terminated, modified in place) at the first FUZZ_SEP: returns the part after it,
 * or "" when there is none (s then keeps everything). */
static inline char *fuzz_split(char *s)
{
    char *sep = strstr(s, FUZZ_SEP);
    if (!sep)
        return s + strlen(s);
    *sep = '\0';
    return sep + strlen(FUZZ_SEP);
}

#endif
