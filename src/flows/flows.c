/* Loading flow templates from flows/<product>/<Action>.json, and the lookups on them. */
#include "flows/flows.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "flows/flow_int.h"

struct flows {
    struct flow *items;
    size_t n;
};

static const char *const products[] = {"cdb", "mongodb"};

static int load_one(const char *dir, const char *product, const char *file, struct flow *out,
                    struct err *e)
{
    char *path = xasprintf("%s/%s/%s", dir, product, file);
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    int rc = 0;
    if (!doc)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "flow template %s: line %d: %s", path, je.line,
                     je.text);
    else
        rc = flow_schema_check_doc(doc, path, e);
    const char *action = json_string_value(json_object_get(doc, "action"));
    size_t stem = strlen(file) - strlen(".json");
    if (!rc && (strlen(action) != stem || strncmp(action, file, stem) != 0))
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                     "flow template %s: \"action\" is %s but the file is named %s", path, action,
                     file);
    free(path);
    if (rc) {
        json_decref(doc);
        return rc;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->product, sizeof out->product, "%s", product);
    snprintf(out->action, sizeof out->action, "%s", action);
    out->doc = doc;
    json_t *params = json_object_get(doc, "params");
    out->param_names = xcalloc(json_object_size(params) + 1, sizeof *out->param_names);
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v) out->param_names[i++] = key;
    return 0;
}

static bool is_json_file(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && name[0] != '.' && strcmp(name + n - 5, ".json") == 0;
}

static int load_product(const char *dir, const char *product, struct flows *f, struct err *e)
{
    char *path = xasprintf("%s/%s", dir, product);
    DIR *d = opendir(path);
    free(path);
    if (!d)
        return 0; /* no templates for this product */
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        if (!is_json_file(de->d_name))
            continue;
        f->items = xrealloc(f->items, (f->n + 1) * sizeof *f->items);
        rc = load_one(dir, product, de->d_name, &f->items[f->n], e);
        if (!rc)
            f->n++;
    }
    closedir(d);
    return rc;
}

int flows_load(const char *dir, struct flows **out, struct err *e)
{
    struct flows *f = xcalloc(1, sizeof *f);
    DIR *d = opendir(dir);
    if (!d) {
        free(f);
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--flows %s: %s", dir, strerror(errno));
    }
    closedir(d);
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof products / sizeof products[0]; i++)
        rc = load_product(dir, products[i], f, e);
    if (rc) {
        flows_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void flows_free(struct flows *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        json_decref(f->items[i].doc);
        free(f->items[i].param_names);
    }
    free(f->items);
    free(f);
}

const struct flow *flows_find(const struct flows *f, const char *product, const char *action)
{
    for (size_t i = 0; f && i < f->n; i++)
        if (strcmp(f->items[i].product, product) == 0 && strcmp(f->items[i].action, action) == 0)
            return &f->items[i];
    return NULL;
}

size_t flows_count(const struct flows *f) { return f ? f->n : 0; }

static const char *doc_str(const struct flow *fl, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(fl->doc, key));
    return s ? s : dflt;
}

const char *flow_task_type(const struct flow *fl) { return doc_str(fl, "type", fl->action); }
const char *flow_on_failure(const struct flow *fl) { return doc_str(fl, "on_failure", "pause"); }
const char *flow_instance_param(const struct flow *fl) { return doc_str(fl, "instance", NULL); }
const char *const *flow_param_names(const struct flow *fl) { return fl->param_names; }
const json_t *flow_response(const struct flow *fl) { return json_object_get(fl->doc, "response"); }

const char *flow_instance_id(const struct flow *fl, const json_t *clean, struct err *e)
{
    const char *name = flow_instance_param(fl);
    if (!name)
        return NULL;
    json_t *v = json_object_get(clean, name);
    if (json_is_array(v)) {
        if (json_array_size(v) != 1) {
            err_set(e, ERR_INVALID_PARAMETER_VALUE,
                    "%s: give exactly one instance id per request (got %zu)", name,
                    json_array_size(v));
            return NULL;
        }
        v = json_array_get(v, 0);
    }
    return json_string_value(v);
}
