/* Flow template parameter schemas: checking a template at load, and a request's parameters
 * against it (types, lengths, patterns, ranges, enums) into clean typed values. */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_keys.h"
#include "common/pattern.h"
#include "common/json_kind.h"
#include "flows/flow_int.h"

static int check_node(const json_t *node, const char *where, const char *name, struct err *e)
{
    static const char *const types[] = {"string", "integer", "boolean", "array", "object", NULL};
    const char *t = json_string_value(json_object_get(node, "type"));
    const char *const *k = types;
    while (t && *k && strcmp(*k, t) != 0)
        k++;
    if (!t || !*k)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "flow template %s: params.%s: \"type\" must be string, integer, boolean, "
                       "array or object",
                       where, name);
    const char *pat = json_string_value(json_object_get(node, "pattern"));
    regex_t re;
    if (pat) {
        if (!pattern_is_tame(pat))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "flow template %s: params.%s: pattern longer than %d bytes or with a "
                           "quantifier on a quantifier (such as ?? or *{2})",
                           where, name, PATTERN_MAX_LEN);
        if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "flow template %s: params.%s: bad pattern %s", where, name, pat);
        regfree(&re);
    }
    if (strcmp(t, "array") == 0)
        return check_node(json_object_get(node, "items"), where, name, e);
    if (strcmp(t, "object") == 0) {
        const char *key;
        json_t *sub;
        json_object_foreach(json_object_get(node, "fields"), key, sub)
        {
            int rc = check_node(sub, where, key, e);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Every ${name...} in a step must start with a parameter, a foreach variable of that step or
 * "index": a misspelt name would otherwise quietly become "" (and "$${" is a literal "${"). */
static int check_refs(const json_t *v, const char *key, const json_t *params, const json_t *vars,
                      const char *where, size_t step, struct err *e)
{
    if (flow_literal_key(key))
        return 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (const char *p = strstr(s, "${"); p; p = strstr(p + 2, "${")) {
            if (p > s && p[-1] == '$')
                continue;
            char name[64];
            size_t n = strcspn(p + 2, ".}");
            snprintf(name, sizeof name, "%.*s", (int)(n < 63 ? n : 63), p + 2);
            if (!json_object_get(params, name) && !json_object_get(vars, name) &&
                strcmp(name, "index") != 0)
                return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                               "flow template %s: steps[%zu]: ${%s} names no parameter or foreach "
                               "variable (write $${ for a literal ${)",
                               where, step, name);
        }
        return 0;
    }
    const char *k;
    json_t *x;
    size_t i;
    int rc = 0;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k, x) if (!rc) rc =
            check_refs(x, k, params, vars, where, step, e);
    if (json_is_array(v))
        json_array_foreach(v, i, x) if (!rc) rc = check_refs(x, key, params, vars, where, step, e);
    return rc;
}

static int check_step_refs(const json_t *doc, const char *where, struct err *e)
{
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(doc, "steps"), i, step)
    {
        json_t *vars = json_object(), *each = json_object_get(step, "foreach");
        json_t *list = json_is_string(each) ? json_pack("[O]", each) : json_incref(each);
        size_t j;
        json_t *spec;
        json_array_foreach(list, j, spec)
        {
            char path[128], var[64];
            if (!json_is_string(spec) ||
                sscanf(json_string_value(spec), "%127s as %63s", path, var) != 2) {
                json_decref(list);
                json_decref(vars);
                return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                               "flow template %s: steps[%zu].foreach: expected \"PATH as VAR\"",
                               where, i);
            }
            json_object_set_new(vars, var, json_true());
        }
        json_decref(list);
        int rc = check_refs(step, NULL, json_object_get(doc, "params"), vars, where, i, e);
        json_decref(vars);
        if (rc)
            return rc;
    }
    return 0;
}

int flow_schema_check_doc(const json_t *doc, const char *where, struct err *e)
{
    if (!json_is_string(json_object_get(doc, "action")))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "flow template %s: \"action\" is required",
                       where);
    if (!json_is_object(json_object_get(doc, "params")))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "flow template %s: \"params\" must be an "
                       "object",
                       where);
    json_t *steps = json_object_get(doc, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "flow template %s: \"steps\" must be a "
                       "non-empty array",
                       where);
    const char *of = json_string_value(json_object_get(doc, "on_failure"));
    if (of && strcmp(of, "pause") && strcmp(of, "undo") && strcmp(of, "fail"))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "flow template %s: \"on_failure\" must be "
                       "pause, undo or fail",
                       where);
    const char *key;
    json_t *node;
    json_object_foreach(json_object_get(doc, "params"), key, node)
    {
        int rc = check_node(node, where, key, e);
        if (rc)
            return rc;
    }
    return check_step_refs(doc, where, e);
}

/* --- request parameters --- */

struct ctx {
    bool from_form;
    char path[256];
};

static int check_value(struct ctx *c, const json_t *node, json_t *v, json_t **out, struct err *e);

static int check_string(struct ctx *c, const json_t *node, json_t *v, json_t **out, struct err *e)
{
    if (!json_is_string(v))
        return err_set(e, ERR_INVALID_PARAMETER, "%s: expected a string, got %s", c->path,
                       json_kind_phrase(v));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: must not contain a NUL byte", c->path);
    json_t *mn = json_object_get(node, "min_length"), *mx = json_object_get(node, "max_length");
    if ((mn && (json_int_t)len < json_integer_value(mn)) ||
        (mx && (json_int_t)len > json_integer_value(mx)))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: length must be %lld..%lld (got %zu)",
                       c->path, (long long)json_integer_value(mn),
                       mx ? (long long)json_integer_value(mx) : 1LL << 30, len);
    const char *pat = json_string_value(json_object_get(node, "pattern"));
    bool secret = json_is_true(json_object_get(node, "secret"));
    regex_t re;
    if (pat && regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) == 0) {
        int m = regexec(&re, s, 0, NULL, 0);
        regfree(&re);
        if (m != 0)
            return secret
                       ? err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: not an allowed value",
                                 c->path)
                       : err_set(e, ERR_INVALID_PARAMETER_VALUE,
                                 "%s: \"%.64s\" is not allowed (must match %s)", c->path, s, pat);
    }
    json_t *en = json_object_get(node, "enum");
    if (en) {
        size_t i;
        json_t *x;
        bool found = false;
        json_array_foreach(en, i, x) found |= json_is_string(x) && !strcmp(json_string_value(x), s);
        if (!found)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "%s: \"%.64s\" is not one of the "
                           "allowed values",
                           c->path, s);
    }
    *out = json_incref(v);
    return 0;
}

static int check_integer(struct ctx *c, const json_t *node, json_t *v, json_t **out, struct err *e)
{
    json_int_t n;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (c->from_form && json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (!*s || *end || errno)
            return err_set(e, ERR_INVALID_PARAMETER, "%s: expected an integer, got \"%.32s\"",
                           c->path, s);
        n = x;
    } else {
        return err_set(e, ERR_INVALID_PARAMETER, "%s: expected an integer, got %s", c->path,
                       json_kind_phrase(v));
    }
    json_t *mn = json_object_get(node, "min"), *mx = json_object_get(node, "max");
    if ((mn && n < json_integer_value(mn)) || (mx && n > json_integer_value(mx)))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: must be %lld..%lld (got %lld)", c->path,
                       mn ? (long long)json_integer_value(mn) : -(1LL << 62),
                       mx ? (long long)json_integer_value(mx) : 1LL << 62, (long long)n);
    *out = json_integer(n);
    return 0;
}

static int check_boolean(struct ctx *c, json_t *v, json_t **out, struct err *e)
{
    if (json_is_boolean(v)) {
        *out = json_incref(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (c->from_form && s && (!strcmp(s, "true") || !strcmp(s, "false"))) {
        *out = json_boolean(!strcmp(s, "true"));
        return 0;
    }
    return err_set(e, ERR_INVALID_PARAMETER, "%s: expected a boolean, got %s", c->path,
                   json_kind_phrase(v));
}

static int check_array(struct ctx *c, const json_t *node, json_t *v, json_t **out, struct err *e)
{
    if (!json_is_array(v))
        return err_set(e, ERR_INVALID_PARAMETER, "%s: expected an array, got %s", c->path,
                       json_kind_phrase(v));
    json_t *mn = json_object_get(node, "min_items"), *mx = json_object_get(node, "max_items");
    size_t n = json_array_size(v);
    if ((mn && (json_int_t)n < json_integer_value(mn)) ||
        (mx && (json_int_t)n > json_integer_value(mx)))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: must hold %lld..%lld items (got %zu)",
                       c->path, mn ? (long long)json_integer_value(mn) : 0LL,
                       mx ? (long long)json_integer_value(mx) : 1LL << 30, n);
    json_t *arr = json_array();
    size_t base = strlen(c->path);
    for (size_t i = 0; i < n; i++) {
        snprintf(c->path + base, sizeof c->path - base, ".%zu", i);
        json_t *item = NULL;
        int rc = check_value(c, json_object_get(node, "items"), json_array_get(v, i), &item, e);
        if (rc) {
            json_decref(arr);
            return rc;
        }
        json_array_append_new(arr, item);
    }
    c->path[base] = '\0';
    *out = arr;
    return 0;
}

/* Checks the fields of an object against a {name: node} map; unknown names are refused. */
static int check_fields(struct ctx *c, const json_t *fields, const json_t *v, json_t **out,
                        struct err *e)
{
    size_t base = strlen(c->path);
    const char *sep = base ? "." : "";
    const char *key = json_keys_unknown_in(v, fields);
    if (key)
        return err_set(e, ERR_UNKNOWN_PARAMETER, "The parameter `%s%s%.64s` is not recognized",
                       c->path, sep, key);
    json_t *obj = json_object();
    json_t *node;
    json_object_foreach((json_t *)fields, key, node)
    {
        snprintf(c->path + base, sizeof c->path - base, "%s%s", sep, key);
        json_t *val = json_object_get(v, key), *clean = NULL;
        int rc = 0;
        if (!val || json_is_null(val)) {
            if (json_is_true(json_object_get(node, "required")))
                rc = err_set(e, ERR_MISSING_PARAMETER, "The parameter `%s` is missing", c->path);
            else if (json_object_get(node, "default"))
                json_object_set(obj, key, json_object_get(node, "default"));
        } else if (json_is_true(json_object_get(node, "required")) && json_is_string(val) &&
                   json_string_length(val) == 0) {
            rc = err_set(e, ERR_MISSING_PARAMETER, "The parameter `%s` is empty", c->path);
        } else if (!(rc = check_value(c, node, val, &clean, e))) {
            json_object_set_new(obj, key, clean);
        }
        if (rc) {
            json_decref(obj);
            return rc;
        }
    }
    c->path[base] = '\0';
    *out = obj;
    return 0;
}

static int check_value(struct ctx *c, const json_t *node, json_t *v, json_t **out, struct err *e)
{
    const char *t = json_string_value(json_object_get(node, "type"));
    if (!strcmp(t, "string"))
        return check_string(c, node, v, out, e);
    if (!strcmp(t, "integer"))
        return check_integer(c, node, v, out, e);
    if (!strcmp(t, "boolean"))
        return check_boolean(c, v, out, e);
    if (!strcmp(t, "array"))
        return check_array(c, node, v, out, e);
    if (!json_is_object(v))
        return err_set(e, ERR_INVALID_PARAMETER, "%s: expected an object, got %s", c->path,
                       json_kind_phrase(v));
    return check_fields(c, json_object_get(node, "fields"), v, out, e);
}

int flow_check_params(const struct flow *fl, const json_t *params, bool from_form, json_t **clean,
                      struct err *e)
{
    struct ctx c = {.from_form = from_form};
    return check_fields(&c, json_object_get(fl->doc, "params"), params, clean, e);
}

json_t *flow_public_params(const struct flow *fl, const json_t *clean)
{
    json_t *pub = json_deep_copy(clean);
    const char *key;
    json_t *node;
    json_object_foreach(json_object_get(fl->doc, "params"), key,
                        node) if (json_is_true(json_object_get(node, "secret")))
        json_object_del(pub, key);
    return pub;
}
