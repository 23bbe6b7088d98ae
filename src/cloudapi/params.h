/* Request parameters: application/x-www-form-urlencoded decoding (query strings and form
 * bodies), duplicate and encoding checks, sorting for v1 signatures, and turning the flattened
 * names the SDK sends ("Accounts.0.User") back into JSON. */
#ifndef ASYNCD_PARAMS_H
#define ASYNCD_PARAMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/errors.h"

/* Bounds on what a form may hold, checked while it is decoded, so a hostile request costs time and
 * memory proportional to its size before anyone knows who sent it. Tencent's own deepest names
 * have a few parts ("Filters.0.Values.1"); its largest requests a few hundred parameters. */
#define PARAMS_MAX_COUNT      1000  /* parameters in one form */
#define PARAMS_MAX_NAME_LEN   256   /* bytes of one decoded name */
#define PARAMS_MAX_NAME_DEPTH 8     /* dot-separated parts of one name */
#define PARAMS_MAX_VALUE_LEN  65536 /* bytes of one decoded value */
#define PARAMS_MAX_JSON_DEPTH 16    /* nested arrays and objects in a JSON body */

struct param {
    char *key;   /* decoded, NUL-terminated, heap */
    char *value; /* decoded, NUL-terminated, heap */
};

struct param_list {
    struct param *items;
    size_t n, cap;
};

/* Decodes "a=1&b=x%20y+z" into out (appending, in order). '+' is a space. A key without '=' has
 * value "". Empty pieces ("a=1&&b=2") are skipped. Fails with ERR_INVALID_PARAMETER on a bad
 * %-escape, on a NUL byte, or on bytes that are not valid UTF-8, naming the parameter; and on the
 * PARAMS_MAX_* bounds: ERR_REQUEST_SIZE_LIMIT past PARAMS_MAX_COUNT parameters (counted before
 * anything is decoded), ERR_INVALID_PARAMETER for a name too long or too deep,
 * ERR_INVALID_PARAMETER_VALUE for a value too long. On failure out is left as it was. */
int params_parse_form(const char *s, size_t len, struct param_list *out, struct err *e);
/* Appends copies of key and value. */
void params_add(struct param_list *l, const char *key, const char *value);
/* First parameter with this exact key, or NULL. */
const struct param *params_find(const struct param_list *l, const char *key);
/* ERR_INVALID_PARAMETER "parameter X is given more than once" when any key repeats. */
int params_check_unique(const struct param_list *l, struct err *e);
/* Sorts by key, bytewise (what the v1 signature needs). */
void params_sort(struct param_list *l);
/* Frees every item and resets l to empty. */
void params_free(struct param_list *l);

/* Builds a JSON object from the parameters, skipping names listed in skip (NULL-terminated).
 * "A.0.B=x" becomes {"A":[{"B":"x"}]}; values stay strings. Conflicting shapes ("A=1" and
 * "A.0=2"), array indexes that are not 0..n-1 in order, or empty segments fail with
 * ERR_INVALID_PARAMETER naming the parameter. *out is a new reference the caller decrefs. */
int params_to_json(const struct param_list *l, const char *const *skip, json_t **out,
                   struct err *e);

/* Checks that the JSON text s[0..len) nests arrays and objects at most max_depth deep, in one
 * pass without recursion or allocation (strings and escapes are skipped, the rest is left to the
 * JSON parser). ERR_INVALID_PARAMETER naming the limit when deeper. */
int params_json_depth_check(const char *s, size_t len, int max_depth, struct err *e);

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool params_utf8_valid(const char *s, size_t len);
/* The common body of a poll, {"AsyncRequestId":"..."}: a JSON object whose values are all strings
 * of printable ASCII without escapes, and no key twice. Returns that object, or NULL for anything
 * else (the caller then asks jansson, whose answer and errors stay the reference). */
json_t *params_json_flat_strings(const char *s, size_t len);

#endif
