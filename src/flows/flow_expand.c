/* Expanding a flow template into concrete steps: foreach over array parameters, when-conditions,
 * and ${...} substitution as whole values (never into "sql", "statements", "capture" or "done_if").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "flows/flow_int.h"

#define MAX_EXPANDED_STEPS 200

json_t *flow_lookup(const json_t *clean, const json_t *vars, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    char *seg = strtok_r(buf, ".", &save);
    json_t *v = seg ? json_object_get(vars, seg) : NULL;
    if (!v && seg)
        v = json_object_get(clean, seg);
    while (v && (seg = strtok_r(NULL, ".", &save))) {
        char *end;
        long idx = strtol(seg, &end, 10);
        v = json_is_array(v) && !*end ? json_array_get(v, (size_t)idx) : json_object_get(v, seg);
    }
    return v;
}

/* Text of a scalar for interpolation ("" for absent/null). */
static int scalar_text(const json_t *v, char *out, size_t cap)
{
    if (!v || json_is_null(v))
        return snprintf(out, cap, "%s", "");
    if (json_is_string(v))
        return snprintf(out, cap, "%s", json_string_value(v));
    if (json_is_integer(v))
        return snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    if (json_is_boolean(v))
        return snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    return -1;
}

/* "${path}" alone: the value itself (keeping its type); otherwise each ${path} becomes text. */
static int subst_string(const char *s, const json_t *clean, const json_t *vars, json_t **out,
                        struct err *e)
{
    size_t n = strlen(s);
    if (n > 3 && s[0] == '$' && s[1] == '{' && s[n - 1] == '}' && !strchr(s + 2, '$') &&
        !strchr(s + 2, '{')) {
        char path[256];
        snprintf(path, sizeof path, "%.*s", (int)(n - 3), s + 2);
        json_t *v = flow_lookup(clean, vars, path);
        *out = v ? json_incref(v) : json_null();
        return 0;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = 0;
    for (const char *p = s; *p && !rc; p++) {
        const char *close;
        if (p[0] == '$' && p[1] == '$' && p[2] == '{') { /* "$${" is a literal "${" */
            fputc('$', f);
            p++;
        } else if (p[0] == '$' && p[1] == '{' && (close = strchr(p + 2, '}'))) {
            char path[256], text[4096];
            snprintf(path, sizeof path, "%.*s", (int)(close - p - 2), p + 2);
            if (scalar_text(flow_lookup(clean, vars, path), text, sizeof text) < 0)
                rc = err_set(e, ERR_INTERNAL, "flow template: ${%s} is not a scalar", path);
            else /* text is unset when scalar_text failed (found by fuzz_flows) */
                fputs(text, f);
            p = close;
        } else {
            fputc(*p, f);
        }
    }
    fclose(f);
    *out = rc ? NULL : json_string(buf);
    free(buf);
    if (!rc && !*out)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "a substituted value is not valid UTF-8");
    return rc;
}

bool flow_literal_key(const char *key)
{
    return key && (!strcmp(key, "sql") || !strcmp(key, "statements") || !strcmp(key, "capture") ||
                   !strcmp(key, "done_if"));
}

/* A deep copy of t with substitutions, except under the SQL-text keys. */
static int subst(const json_t *t, const char *key, const json_t *clean, const json_t *vars,
                 json_t **out, struct err *e)
{
    if (flow_literal_key(key)) {
        *out = json_deep_copy(t);
        return 0;
    }
    if (json_is_string(t))
        return subst_string(json_string_value(t), clean, vars, out, e);
    if (!json_is_object(t) && !json_is_array(t)) {
        *out = json_deep_copy(t);
        return 0;
    }
    json_t *copy = json_is_object(t) ? json_object() : json_array();
    int rc = 0;
    size_t i;
    json_t *v, *nv;
    const char *k;
    if (json_is_object(t))
        json_object_foreach((json_t *)t, k, v) if (!rc && !(rc = subst(v, k, clean, vars, &nv, e)))
            json_object_set_new(copy, k, nv);
    if (json_is_array(t))
        json_array_foreach(t, i, v) if (!rc && !(rc = subst(v, key, clean, vars, &nv, e)))
            json_array_append_new(copy, nv);
    if (rc)
        json_decref(copy);
    *out = rc ? NULL : copy;
    return rc;
}

static bool present(const json_t *v)
{
    return v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0) &&
           !(json_is_string(v) && json_string_length(v) == 0);
}

/* {"present": P} / {"absent": P} / {"equals": [P, value]} / {"not_equals": [P, value]} /
 * {"all": [when, ...]}; no "when" = always. An absent parameter equals nothing. */
static bool when_holds(const json_t *when, const json_t *clean, const json_t *vars)
{
    if (!when)
        return true;
    json_t *all = json_object_get(when, "all");
    if (json_is_array(all)) {
        size_t i;
        json_t *w;
        json_array_foreach(all, i, w) if (!when_holds(w, clean, vars)) return false;
        return true;
    }
    json_t *ne = json_object_get(when, "not_equals");
    if (json_is_array(ne) && json_array_size(ne) == 2) {
        json_t *v = flow_lookup(clean, vars, json_string_value(json_array_get(ne, 0)));
        return !v || !json_equal(v, json_array_get(ne, 1));
    }
    const char *p;
    if ((p = json_string_value(json_object_get(when, "present"))))
        return present(flow_lookup(clean, vars, p));
    if ((p = json_string_value(json_object_get(when, "absent"))))
        return !present(flow_lookup(clean, vars, p));
    json_t *eq = json_object_get(when, "equals");
    if (json_is_array(eq) && json_array_size(eq) == 2) {
        json_t *v = flow_lookup(clean, vars, json_string_value(json_array_get(eq, 0)));
        return v && json_equal(v, json_array_get(eq, 1));
    }
    return false;
}

static int emit_step(const json_t *tpl, const json_t *clean, const json_t *vars, json_t *steps,
                     struct err *e)
{
    if (!when_holds(json_object_get(tpl, "when"), clean, vars))
        return 0;
    if (json_array_size(steps) >= MAX_EXPANDED_STEPS)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "the request expands to more than %d steps; send fewer items",
                       MAX_EXPANDED_STEPS);
    json_t *name = NULL, *doo = NULL, *undo = NULL;
    json_t *undo_tpl = json_object_get(tpl, "undo");
    int rc = subst(json_object_get(tpl, "name"), "name", clean, vars, &name, e);
    if (!rc)
        rc = subst(json_object_get(tpl, "do"), NULL, clean, vars, &doo, e);
    if (!rc && undo_tpl)
        rc = subst(undo_tpl, NULL, clean, vars, &undo, e);
    if (rc) {
        json_decref(name);
        json_decref(doo);
        return rc;
    }
    json_t *step =
        json_pack("{s:o, s:o, s:o}", "name", name, "do", doo, "undo", undo ? undo : json_null());
    json_t *r = json_object_get(tpl, "retries"), *t = json_object_get(tpl, "timeout_s");
    if (r)
        json_object_set(step, "retries", r);
    if (t)
        json_object_set(step, "timeout_s", t);
    json_array_append_new(steps, step);
    return 0;
}

/* One level of "foreach": ["PATH as VAR", ...]: each element of PATH in turn, then the next level.
 */
static int expand_foreach(const json_t *tpl, const json_t *each, size_t level, const json_t *clean,
                          json_t *vars, json_t *steps, struct err *e)
{
    if (level >= json_array_size(each))
        return emit_step(tpl, clean, vars, steps, e);
    char path[128], var[64];
    const char *spec = json_string_value(json_array_get(each, level));
    if (!spec || sscanf(spec, "%127s as %63s", path, var) != 2)
        return err_set(e, ERR_INTERNAL,
                       "flow template: foreach entry \"%s\" is not \"PATH as VAR\"",
                       spec ? spec : "?");
    json_t *arr = flow_lookup(clean, vars, path);
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item)
    {
        json_object_set(vars, var, item);
        json_object_set_new(vars, "index", json_integer((json_int_t)i));
        int rc = expand_foreach(tpl, each, level + 1, clean, vars, steps, e);
        if (rc)
            return rc;
    }
    json_object_del(vars, var);
    return 0;
}

int flow_expand(const struct flow *fl, const json_t *clean, json_t **out, struct err *e)
{
    json_t *steps = json_array(), *vars = json_object();
    size_t i;
    json_t *tpl;
    int rc = 0;
    json_array_foreach(json_object_get(fl->doc, "steps"), i, tpl)
    {
        json_t *each = json_object_get(tpl, "foreach");
        if (json_is_string(each))
            each = json_pack("[O]", each);
        else if (each)
            json_incref(each);
        else
            each = json_array();
        rc = expand_foreach(tpl, each, 0, clean, vars, steps, e);
        json_decref(each);
        if (rc)
            break;
    }
    json_decref(vars);
    if (!rc && json_array_size(steps) == 0)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "the request leaves nothing to do");
    if (rc) {
        json_decref(steps);
        return rc;
    }
    *out = steps;
    return 0;
}
