/* Request parameters: form decoding, UTF-8 and duplicate checks, v1 sorting, JSON unflattening. */
#include "cloudapi/params.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hex.h"
#include "common/xalloc.h"

/* Copies s[0..len) into dst for an error message: printable ASCII only, truncated with "...". */
static const char *shown(char *dst, size_t cap, const char *s, size_t len)
{
    size_t j = 0;
    for (; j < len && j + 4 < cap; j++)
        dst[j] = (s[j] >= 0x20 && s[j] < 0x7f) ? s[j] : '?';
    if (j < len) {
        memcpy(dst + j, "...", 3);
        j += 3;
    }
    dst[j] = '\0';
    return dst;
}

static size_t utf8_seq_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* E0 80..9F would be overlong */
        hi = c == 0xED ? 0x9F : 0xBF; /* ED A0..BF would be a surrogate */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80; /* F0 80..8F would be overlong */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* above U+10FFFF */
    } else
        return 0; /* 80..C1 (continuation or overlong lead), F5..FF */
    if (left < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

bool params_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Decodes one key or value into a new heap string (*out). "Bad escape" / "NUL" / "bad UTF-8"
 * come back as a static reason; *out is then NULL. */
static const char *form_decode(const char *s, size_t len, char **out)
{
    char *d = xmalloc(len + 1);
    size_t j = 0;
    const char *why = NULL;
    for (size_t i = 0; i < len && !why; i++) {
        char c = s[i];
        if (c == '+')
            c = ' ';
        else if (c == '%') {
            int hi = i + 2 < len ? hex_digit_value(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_digit_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                why = "a bad %-escape (expected % and two hex digits)";
                break;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0')
            why = "a NUL byte";
        d[j++] = c;
    }
    d[j] = '\0';
    if (!why && !params_utf8_valid(d, j))
        why = "bytes that are not valid UTF-8";
    if (why) {
        free(d);
        d = NULL;
    }
    *out = d;
    return why;
}

static void truncate_list(struct param_list *l, size_t n)
{
    while (l->n > n) {
        l->n--;
        free(l->items[l->n].key);
        free(l->items[l->n].value);
    }
}

/* Fails when the name (raw bytes p[0..klen), decoded key) passes the length or depth bound. The raw
 * length is checked first: a %-escape is 3 bytes for 1, so a longer raw name cannot fit. */
static int check_name_bounds(const char *p, size_t klen, const char *key, struct err *e)
{
    char name[96];
    size_t len = key ? strlen(key) : klen;
    if (klen > 3 * PARAMS_MAX_NAME_LEN || len > PARAMS_MAX_NAME_LEN)
        return err_set(e, ERR_INVALID_PARAMETER,
                       "the name of parameter \"%s\" is longer than the limit of %d bytes",
                       shown(name, sizeof name, p, klen), PARAMS_MAX_NAME_LEN);
    size_t parts = 1;
    for (size_t i = 0; key && key[i]; i++)
        parts += key[i] == '.';
    if (parts > PARAMS_MAX_NAME_DEPTH)
        return err_set(e, ERR_INVALID_PARAMETER,
                       "parameter \"%s\" has %zu name parts; the limit is a depth of %d parts "
                       "(like Filters.0.Values.1)",
                       shown(name, sizeof name, p, klen), parts, PARAMS_MAX_NAME_DEPTH);
    return 0;
}

/* One "key=value" piece; appends it to out or fails naming the parameter. */
static int parse_piece(const char *p, size_t n, struct param_list *out, struct err *e)
{
    char name[96];
    const char *eq = memchr(p, '=', n);
    size_t klen = eq ? (size_t)(eq - p) : n;
    char *key, *value;
    int brc = check_name_bounds(p, klen, NULL, e);
    if (brc)
        return brc;
    if (eq && n - klen - 1 > 3 * (size_t)PARAMS_MAX_VALUE_LEN)
        goto value_too_long;
    const char *why = form_decode(p, klen, &key);
    if (why)
        return err_set(e, ERR_INVALID_PARAMETER, "the name of parameter \"%s\" contains %s",
                       shown(name, sizeof name, p, klen), why);
    if (*key == '\0') {
        free(key);
        return err_set(e, ERR_INVALID_PARAMETER, "a parameter has an empty name (\"%s\")",
                       shown(name, sizeof name, p, n));
    }
    if ((brc = check_name_bounds(p, klen, key, e))) {
        free(key);
        return brc;
    }
    if (eq)
        why = form_decode(eq + 1, n - klen - 1, &value);
    else
        value = xstrdup("");
    if (why) {
        int rc = err_set(e, ERR_INVALID_PARAMETER, "the value of parameter \"%s\" contains %s",
                         shown(name, sizeof name, key, strlen(key)), why);
        free(key);
        return rc;
    }
    if (strlen(value) > PARAMS_MAX_VALUE_LEN) {
        free(key);
        free(value);
        goto value_too_long;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 16;
        out->items = xrealloc(out->items, out->cap * sizeof *out->items);
    }
    out->items[out->n].key = key;
    out->items[out->n].value = value;
    out->n++;
    return 0;
value_too_long:
    return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                   "the value of parameter \"%s\" is longer than the limit of %d bytes",
                   shown(name, sizeof name, p, klen), PARAMS_MAX_VALUE_LEN);
}

/* Non-empty "&"-separated pieces of s[0..len): one pass, nothing decoded. */
static size_t count_pieces(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t plen = amp ? (size_t)(amp - (s + i)) : len - i;
        n += plen > 0;
        i += plen + 1;
    }
    return n;
}

int params_parse_form(const char *s, size_t len, struct param_list *out, struct err *e)
{
    size_t first = out->n, pieces = count_pieces(s, len);
    if (pieces > PARAMS_MAX_COUNT)
        return err_set(e, ERR_REQUEST_SIZE_LIMIT,
                       "the request has %zu parameters, more than the limit of %d parameters",
                       pieces, PARAMS_MAX_COUNT);
    for (size_t i = 0; i < len;) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t n = amp ? (size_t)(amp - (s + i)) : len - i;
        if (n > 0) {
            int rc = parse_piece(s + i, n, out, e);
            if (rc != 0) {
                truncate_list(out, first); /* all or nothing */
                return rc;
            }
        }
        i += n + 1;
    }
    return 0;
}

void params_add(struct param_list *l, const char *key, const char *value)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
    }
    l->items[l->n].key = xstrdup(key);
    l->items[l->n].value = xstrdup(value);
    l->n++;
}

const struct param *params_find(const struct param_list *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0)
            return &l->items[i];
    return NULL;
}

static int cmp_param_ptr(const void *a, const void *b)
{
    const struct param *const *pa = a, *const *pb = b;
    return strcmp((*pa)->key, (*pb)->key);
}

int params_check_unique(const struct param_list *l, struct err *e)
{
    if (l->n < 2)
        return 0;
    const struct param **v = xmalloc(l->n * sizeof *v);
    for (size_t i = 0; i < l->n; i++)
        v[i] = &l->items[i];
    qsort(v, l->n, sizeof *v, cmp_param_ptr);
    int rc = 0;
    for (size_t i = 1; i < l->n && rc == 0; i++) {
        if (strcmp(v[i - 1]->key, v[i]->key) == 0) {
            char name[96];
            rc = err_set(e, ERR_INVALID_PARAMETER, "parameter \"%s\" is given more than once",
                         shown(name, sizeof name, v[i]->key, strlen(v[i]->key)));
        }
    }
    free(v);
    return rc;
}

static int cmp_param(const void *a, const void *b)
{
    return strcmp(((const struct param *)a)->key, ((const struct param *)b)->key);
}

void params_sort(struct param_list *l)
{
    if (l->n > 1)
        qsort(l->items, l->n, sizeof *l->items, cmp_param);
}

void params_free(struct param_list *l)
{
    truncate_list(l, 0);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

/* ---- params_to_json: "A.0.B=x" -> {"A":[{"B":"x"}]} ----
 * Entries are sorted segment by segment (list indexes numerically), so the children of one
 * list or object arrive together and list indexes arrive in ascending order: each one must then
 * be the next index (0, 1, 2, ...) of its list, and a gap shows up as an index beyond the end.
 * This makes the result independent of the order the parameters came in (a v1 caller may have
 * sorted them bytewise, which puts "A.10" before "A.2"). */
struct flat {
    const struct param *p;
    char *buf;        /* copy of the key with '.' replaced by NUL */
    const char **seg; /* segment starts inside buf */
    size_t nseg;
};

/* A segment below the top level made only of digits is a list index. */
static bool is_index(const char *seg, size_t depth)
{
    if (depth == 0 || !*seg)
        return false;
    for (const char *c = seg; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    return true;
}

static int flat_split(struct flat *f, const struct param *p, struct err *e)
{
    char name[96];
    size_t len = strlen(p->key), nseg = 1;
    for (size_t i = 0; i < len; i++)
        nseg += p->key[i] == '.';
    f->p = p;
    f->buf = xstrdup(p->key);
    f->seg = xmalloc(nseg * sizeof *f->seg);
    f->nseg = nseg;
    char *s = f->buf;
    for (size_t d = 0; d < nseg; d++) {
        char *dot = strchr(s, '.');
        if (dot)
            *dot = '\0';
        f->seg[d] = s;
        if (*s == '\0')
            return err_set(e, ERR_INVALID_PARAMETER,
                           "parameter \"%s\" has an empty name part (check for a stray '.')",
                           shown(name, sizeof name, p->key, len));
        if (is_index(s, d) && (strlen(s) > 9 || (s[0] == '0' && s[1] != '\0')))
            return err_set(e, ERR_INVALID_PARAMETER,
                           "parameter \"%s\": list index \"%s\" must be a plain number 0, 1, "
                           "2, ...",
                           shown(name, sizeof name, p->key, len), s);
        s = dot ? dot + 1 : s + strlen(s);
    }
    return 0;
}

static int cmp_seg(const char *a, const char *b, size_t depth)
{
    bool ia = is_index(a, depth), ib = is_index(b, depth);
    if (ia && ib) {
        size_t la = strlen(a), lb = strlen(b); /* no leading zeros: longer is larger */
        if (la != lb)
            return la < lb ? -1 : 1;
        return strcmp(a, b);
    }
    if (ia != ib)
        return ia ? -1 : 1;
    return strcmp(a, b);
}

static int cmp_flat(const void *pa, const void *pb)
{
    const struct flat *a = pa, *b = pb;
    for (size_t d = 0; d < a->nseg && d < b->nseg; d++) {
        int c = cmp_seg(a->seg[d], b->seg[d], d);
        if (c)
            return c;
    }
    return a->nseg < b->nseg ? -1 : a->nseg > b->nseg;
}

/* The first `depth + 1` segments of f's key, for messages ("Filters.0"). */
static const char *prefix(char *dst, size_t cap, const struct flat *f, size_t depth)
{
    size_t len = 0;
    for (size_t d = 0; d <= depth; d++)
        len += strlen(f->seg[d]) + (d > 0);
    return shown(dst, cap, f->p->key, len);
}

/* The child of c named by segment d of f, or NULL when it does not exist yet. */
static int child_of(json_t *c, const struct flat *f, size_t d, json_t **child, struct err *e)
{
    char name[96], pre[96];
    const char *seg = f->seg[d];
    *child = NULL;
    if (!is_index(seg, d)) {
        if (!json_is_object(c))
            goto shape;
        *child = json_object_get(c, seg);
        return 0;
    }
    if (!json_is_array(c))
        goto shape;
    size_t idx = (size_t)strtoul(seg, NULL, 10), size = json_array_size(c);
    if (idx > size)
        return err_set(e, ERR_INVALID_PARAMETER,
                       "parameter \"%s\": list \"%s\" has no element %zu before it (indexes "
                       "must run 0, 1, 2, ... without gaps)",
                       shown(name, sizeof name, f->p->key, strlen(f->p->key)),
                       prefix(pre, sizeof pre, f, d - 1), size);
    if (idx < size)
        *child = json_array_get(c, idx);
    return 0;
shape:
    return err_set(e, ERR_INVALID_PARAMETER,
                   "parameter \"%s\": \"%s\" is used both as a list (numbered parts) and as "
                   "an object (named parts)",
                   shown(name, sizeof name, f->p->key, strlen(f->p->key)),
                   prefix(pre, sizeof pre, f, d - 1));
}

static int attach(json_t *c, const struct flat *f, size_t d, json_t *v, struct err *e)
{
    int rc = json_is_array(c) ? json_array_append_new(c, v) : json_object_set_new(c, f->seg[d], v);
    if (rc != 0) {
        char name[96];
        return err_set(e, ERR_INVALID_PARAMETER, "parameter \"%s\" is not valid UTF-8",
                       shown(name, sizeof name, f->p->key, strlen(f->p->key)));
    }
    return 0;
}

/* Puts one flattened parameter into the tree under root. */
static int flat_insert(json_t *root, const struct flat *f, struct err *e)
{
    char name[96], pre[96];
    json_t *c = root;
    for (size_t d = 0; d < f->nseg; d++) {
        json_t *child;
        int rc = child_of(c, f, d, &child, e);
        if (rc)
            return rc;
        bool last = d + 1 == f->nseg;
        if (child && last && json_is_string(child))
            return err_set(e, ERR_INVALID_PARAMETER, "parameter \"%s\" is given more than once",
                           shown(name, sizeof name, f->p->key, strlen(f->p->key)));
        if (child && (last || json_is_string(child)))
            return err_set(e, ERR_INVALID_PARAMETER,
                           "parameter \"%s\" conflicts with \"%s\": a name cannot be both a "
                           "value and have parts",
                           shown(name, sizeof name, f->p->key, strlen(f->p->key)),
                           prefix(pre, sizeof pre, f, d));
        if (!child) {
            if (last)
                child = json_string(f->p->value);
            else
                child = is_index(f->seg[d + 1], d + 1) ? json_array() : json_object();
            if (!child)
                return err_set(e, ERR_INVALID_PARAMETER,
                               "the value of parameter \"%s\" is not "
                               "valid UTF-8",
                               shown(name, sizeof name, f->p->key, strlen(f->p->key)));
            if ((rc = attach(c, f, d, child, e)) != 0)
                return rc;
        }
        c = child;
    }
    return 0;
}

static bool skipped(const char *key, const char *const *skip)
{
    for (size_t i = 0; skip && skip[i]; i++)
        if (strcmp(key, skip[i]) == 0)
            return true;
    return false;
}

int params_to_json(const struct param_list *l, const char *const *skip, json_t **out, struct err *e)
{
    struct flat *f = xcalloc(l->n ? l->n : 1, sizeof *f);
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < l->n && rc == 0; i++)
        if (!skipped(l->items[i].key, skip))
            rc = flat_split(&f[n++], &l->items[i], e);
    json_t *root = json_object();
    if (rc == 0) {
        qsort(f, n, sizeof *f, cmp_flat);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = flat_insert(root, &f[i], e);
    }
    for (size_t i = 0; i < n; i++) {
        free(f[i].buf);
        free(f[i].seg);
    }
    free(f);
    if (rc != 0) {
        json_decref(root);
        root = NULL;
    }
    *out = root;
    return rc;
}

int params_json_depth_check(const char *s, size_t len, int max_depth, struct err *e)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return err_set(e, ERR_INVALID_PARAMETER,
                               "the JSON body nests arrays and objects deeper than the limit of "
                               "%d levels (at byte %zu)",
                               max_depth, i);
        } else if ((c == ']' || c == '}') && depth > 0)
            depth--;
    }
    return 0;
}

/* JSON whitespace (RFC 8259 section 2). */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string of printable ASCII other than '"' and '\\' at p (which is past the opening quote);
 * returns its closing quote, or NULL. */
static const char *plain_string_end(const char *p, const char *end)
{
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p;
        if (c < 0x20 || c > 0x7e || c == '\\')
            return NULL;
    }
    return NULL;
}

/* jansson spent about 10,000 instructions (5.6% of asyncd's CPU under `make bench`) reading the
 * one-field body of every poll; this reads that shape in one pass and hands jansson the rest. */
json_t *params_json_flat_strings(const char *s, size_t len)
{
    const char *p = s, *end = s + len;
    p = skip_ws(p, end);
    if (p == end || *p++ != '{')
        return NULL;
    json_t *obj = json_object();
    p = skip_ws(p, end);
    if (p < end && *p == '}') {
        p++;
        goto done;
    }
    for (;;) {
        const char *k, *ke, *v, *ve;
        if (p == end || *p != '"' || !(ke = plain_string_end(k = p + 1, end)))
            break;
        p = skip_ws(ke + 1, end);
        if (p == end || *p != ':')
            break;
        p = skip_ws(p + 1, end);
        if (p == end || *p != '"' || !(ve = plain_string_end(v = p + 1, end)))
            break;
        char key[PARAMS_MAX_NAME_LEN + 1];
        size_t kn = (size_t)(ke - k);
        if (kn > PARAMS_MAX_NAME_LEN)
            break;
        memcpy(key, k, kn);
        key[kn] = '\0';
        if (json_object_get(obj, key)) /* a duplicate: jansson words the refusal */
            break;
        json_object_set_new_nocheck(obj, key, json_stringn_nocheck(v, (size_t)(ve - v)));
        p = skip_ws(ve + 1, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            p++;
            goto done;
        }
        break;
    }
    json_decref(obj);
    return NULL;
done:
    if (skip_ws(p, end) != end) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
