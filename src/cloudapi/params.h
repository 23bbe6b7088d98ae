/* Request parameters: application/x-www-form-urlencoded decoding (query strings and form
 * bodies), duplicate and encoding checks, sorting for v1 signatures, and turning the flattened
 * names the SDK sends ("Accounts.0.User") back into JSON. */
#ifndef ASYNCD_PARAMS_H
#define ASYNCD_PARAMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/errors.h"

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
 * %-escape, on a NUL byte, or on bytes that are not valid UTF-8, naming the parameter. */
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

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool params_utf8_valid(const char *s, size_t len);

#endif
