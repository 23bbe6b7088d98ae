/* Filling answers with every field the SDK's models document (the tables: sdk_models_table.c). */
#include "products/sdk_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_kind.h"

/* Nested structures filled in below this depth; deeper ones (none today) are left as {}. */
#define MAX_FILL_DEPTH 4

const struct sdk_model *sdk_model_find(const char *product, const char *name)
{
    for (size_t i = 0; sdk_models_all[i]; i++)
        if (strcmp(sdk_models_all[i]->product, product) == 0 &&
            strcmp(sdk_models_all[i]->name, name) == 0)
            return sdk_models_all[i];
    return NULL;
}

static void fill_at(const struct sdk_model *m, json_t *obj, int depth);

static json_t *empty_value(const struct sdk_field *f, int depth)
{
    switch (f->kind) {
    case SDK_STRING:
        return json_string("");
    case SDK_NUMBER:
        return json_integer(0);
    case SDK_BOOL:
        return json_false();
    case SDK_ARRAY:
        return json_array();
    case SDK_OBJECT: {
        json_t *o = json_object();
        if (f->model && depth < MAX_FILL_DEPTH)
            fill_at(f->model, o, depth + 1);
        return o;
    }
    case SDK_ANY:
        break;
    }
    return json_null();
}

static void fill_present(const struct sdk_field *f, json_t *v, int depth)
{
    if (!f->model || depth >= MAX_FILL_DEPTH)
        return;
    if (f->kind == SDK_OBJECT && json_is_object(v)) {
        fill_at(f->model, v, depth + 1);
    } else if (f->kind == SDK_ARRAY && f->elem == SDK_OBJECT && json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (json_is_object(item))
                fill_at(f->model, item, depth + 1);
        }
    }
}

static void fill_at(const struct sdk_model *m, json_t *obj, int depth)
{
    for (size_t i = 0; i < m->n_fields; i++) {
        const struct sdk_field *f = &m->fields[i];
        json_t *v = json_object_get(obj, f->name);
        if (v)
            fill_present(f, v, depth);
        else
            json_object_set_new(obj, f->name, empty_value(f, depth));
    }
}

void sdk_model_fill(const struct sdk_model *m, json_t *obj)
{
    if (m && json_is_object(obj))
        fill_at(m, obj, 0);
}

/* ---- request parameters ---- */

bool sdk_model_has(const struct sdk_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_fields; i++)
        if (strcmp(m->fields[i].name, name) == 0)
            return true;
    return false;
}

static const char *kind_word(enum sdk_kind k)
{
    switch (k) {
    case SDK_STRING:
        return "a string";
    case SDK_NUMBER:
        return "a number";
    case SDK_BOOL:
        return "a boolean";
    case SDK_OBJECT:
        return "an object";
    case SDK_ARRAY:
        return "an array";
    case SDK_ANY:
        break;
    }
    return "a value";
}

/* A form or query string carries every value as a string: "12", "1.5", "true" count as such. */
static bool form_number(const char *s)
{
    char *end;
    if (!*s)
        return false;
    (void)strtod(s, &end);
    return *end == '\0';
}

static bool kind_ok(enum sdk_kind k, const json_t *v, bool from_form)
{
    const char *s = json_string_value(v);
    switch (k) {
    case SDK_STRING:
        return json_is_string(v);
    case SDK_NUMBER:
        return json_is_number(v) || (from_form && s && form_number(s));
    case SDK_BOOL:
        return json_is_boolean(v) ||
               (from_form && s && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0));
    case SDK_OBJECT:
        return json_is_object(v);
    case SDK_ARRAY:
        return json_is_array(v);
    case SDK_ANY:
        break;
    }
    return true;
}

static int check_model(const struct sdk_model *m, const json_t *obj, bool from_form,
                       const char *prefix, const char *action, int depth, struct err *e);

static int check_value(const struct sdk_field *f, enum sdk_kind k, const json_t *v, bool from_form,
                       const char *name, const char *action, int depth, struct err *e)
{
    if (!kind_ok(k, v, from_form))
        return err_set(e, ERR_INVALID_PARAMETER, "%s: expected %s, got %s", name, kind_word(k),
                       json_kind_phrase(v));
    if (k == SDK_OBJECT && f->model && depth < MAX_FILL_DEPTH)
        return check_model(f->model, v, from_form, name, action, depth + 1, e);
    if (k != SDK_ARRAY)
        return 0;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        char item_name[160];
        snprintf(item_name, sizeof item_name, "%s.%zu", name, i);
        int rc = check_value(f, f->elem, item, from_form, item_name, action, depth, e);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_model(const struct sdk_model *m, const json_t *obj, bool from_form,
                       const char *prefix, const char *action, int depth, struct err *e)
{
    for (size_t i = 0; i < m->n_fields; i++) {
        const struct sdk_field *f = &m->fields[i];
        char name[160];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", f->name);
        const json_t *v = json_object_get(obj, f->name);
        int rc = 0;
        if (!v && f->required)
            rc = err_set(e, ERR_MISSING_PARAMETER, "The parameter `%s` is missing; %s needs it",
                         name, action);
        else if (v)
            rc = check_value(f, f->kind, v, from_form, name, action, depth, e);
        if (rc)
            return rc;
    }
    return 0;
}

int sdk_model_check(const struct sdk_model *m, const json_t *params, bool from_form,
                    const char *action, struct err *e)
{
    return check_model(m, params, from_form, "", action, 0, e);
}
