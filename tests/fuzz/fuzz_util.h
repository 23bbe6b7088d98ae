/* Helpers shared by the fuzz targets: the input size bound, NUL-terminated copies, multi-part
 * inputs, and HTTP-like framing of headers and body. */
#ifndef ASYNCD_FUZZ_UTIL_H
#define ASYNCD_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- framing like HTTP/1.1: head lines, "Name: value" header lines, an empty line, then the
 * body (any bytes, to the end of the input) ---- */

#define FUZZ_MAX_HEADERS 64

struct fuzz_headers {
    const char *name[FUZZ_MAX_HEADERS], *value[FUZZ_MAX_HEADERS];
    size_t n;
};

/* How much of the wire a target sees. FUZZ_AS_SERVED: what an HTTP server hands on, a '\r' before
 * each '\n' and the blanks before a header value dropped. FUZZ_AS_SENT: every byte kept, for code
 * that must cope with them itself (the signer trims and canonicalises on its own). */
enum fuzz_wire { FUZZ_AS_SERVED, FUZZ_AS_SENT };

/* Cuts the line at *p (ending in '\n' or at the end of the buffer) and moves *p past it. */
static inline char *fuzz_next_line(char **p, enum fuzz_wire wire)
{
    char *line = *p, *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = line + strlen(line);
    }
    size_t n = strlen(line);
    if (wire == FUZZ_AS_SERVED && n && line[n - 1] == '\r')
        line[n - 1] = '\0';
    return line;
}

/* Reads header lines from *p up to an empty line (or the end) into h, keeping the first max
 * (<= FUZZ_MAX_HEADERS); a line without ':' is skipped. *p is left at the body. */
static inline void fuzz_read_headers(char **p, struct fuzz_headers *h, size_t max,
                                     enum fuzz_wire wire)
{
    while (**p) {
        char *line = fuzz_next_line(p, wire);
        if (!*line)
            break;
        char *colon = strchr(line, ':');
        if (!colon || h->n == max)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (wire == FUZZ_AS_SERVED && (*v == ' ' || *v == '\t'))
            v++;
        h->name[h->n] = line;
        h->value[h->n++] = v;
    }
}

/* The value of header name (any case) in h, a struct fuzz_headers *; NULL when absent. Its
 * signature is the one the request and signer callbacks take. */
static inline const char *fuzz_header(void *h, const char *name)
{
    const struct fuzz_headers *hs = h;
    for (size_t i = 0; i < hs->n; i++)
        if (strcasecmp(hs->name[i], name) == 0)
            return hs->value[i];
    return NULL;
}

#endif
