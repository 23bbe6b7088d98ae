/* Checks that the keys of a JSON object are among the names a caller knows: templates,
 * catalogue entries and request objects refuse a misspelt key instead of ignoring it. */
#ifndef ASYNCD_JSON_KEYS_H
#define ASYNCD_JSON_KEYS_H

#include <jansson.h>
#include <stddef.h>

#include "common/errors.h"

/* The first key of obj, in jansson's order (insertion), that is none of names[0..n); NULL when
 * every key is one of them or obj is not an object. The string is obj's (borrowed). */
const char *json_keys_unknown(const json_t *obj, const char *const *names, size_t n);

/* The same, the names being the keys of the object known (NULL or not an object: no names). */
const char *json_keys_unknown_in(const json_t *obj, const json_t *known);

/* Writes names[0..n) joined by ", " into buf (always NUL-terminated, cut to size); returns the
 * length the whole list needs, as snprintf does. */
size_t json_keys_join(const char *const *names, size_t n, char *buf, size_t size);

/* 0 when every key of obj is one of names[0..n); else ERR_INVALID_PARAMETER_VALUE with e filled:
 * "WHERE: unknown field \"KEY\" (known: NAME, NAME, ...)", the key cut to 64 bytes. */
int json_keys_check(const json_t *obj, const char *const *names, size_t n, const char *where,
                    struct err *e);

#endif
