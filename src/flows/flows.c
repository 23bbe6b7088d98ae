/* Loading flow templates from flows/<product>/<Action>.json, and the lookups on them. */
#include "flows/flows.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "flows/flow_int.h"

struct flows {
    struct flow *items;
    size_t n;
    size_t replaced; /* templates a later directory replaced */
    atomic_int refs; /* flows_ref / flows_free */
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

static void flow_clear(struct flow *fl)
{
    json_decref(fl->doc);
    free(fl->param_names);
}

/* Adds fl, or replaces the template of the same product and action an earlier directory gave. */
static void put_flow(struct flows *f, struct flow *fl)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->items[i].product, fl->product) == 0 &&
            strcmp(f->items[i].action, fl->action) == 0) {
            flow_clear(&f->items[i]);
            f->items[i] = *fl;
            f->replaced++;
            return;
        }
    }
    f->items = xrealloc(f->items, (f->n + 1) * sizeof *f->items);
    f->items[f->n++] = *fl;
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
        struct flow fl;
        if (!is_json_file(de->d_name))
            continue;
        if (!(rc = load_one(dir, product, de->d_name, &fl, e)))
            put_flow(f, &fl);
    }
    closedir(d);
    return rc;
}

static int load_dir(const char *dir, struct flows *f, struct err *e)
{
    DIR *d = opendir(dir);
    if (!d)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "flow templates in %s: %s", dir,
                       strerror(errno));
    closedir(d);
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof products / sizeof products[0]; i++)
        rc = load_product(dir, products[i], f, e);
    return rc;
}

int flows_load_layers(const char *const *dirs, size_t n, struct flows **out, struct err *e)
{
    struct flows *f = xcalloc(1, sizeof *f);
    atomic_init(&f->refs, 1);
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++)
        rc = load_dir(dirs[i], f, e);
    if (rc) {
        flows_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int flows_load(const char *dir, struct flows **out, struct err *e)
{
    return flows_load_layers(&dir, 1, out, e);
}

size_t flows_replaced(const struct flows *f) { return f ? f->replaced : 0; }

struct flows *flows_ref(struct flows *f)
{
    if (f)
        atomic_fetch_add(&f->refs, 1);
    return f;
}

void flows_free(struct flows *f)
{
    if (!f || atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    for (size_t i = 0; i < f->n; i++)
        flow_clear(&f->items[i]);
    free(f->items);
    free(f);
}

/* ---- the set in use, replaced whole on reload ---- */

struct flows_live {
    pthread_mutex_t mu; /* guards cur; a request holds its own reference to the set it uses */
    struct flows *cur;
};

struct flows_live *flows_live_new(struct flows *f)
{
    struct flows_live *l = xcalloc(1, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    l->cur = f;
    return l;
}

struct flows *flows_live_get(struct flows_live *l)
{
    if (!l)
        return NULL;
    pthread_mutex_lock(&l->mu);
    struct flows *f = flows_ref(l->cur);
    pthread_mutex_unlock(&l->mu);
    return f;
}

void flows_live_swap(struct flows_live *l, struct flows *f)
{
    pthread_mutex_lock(&l->mu);
    struct flows *old = l->cur;
    l->cur = f;
    pthread_mutex_unlock(&l->mu);
    flows_free(old); /* freed once the last request using it lets go */
}

void flows_live_free(struct flows_live *l)
{
    if (!l)
        return;
    flows_free(l->cur);
    pthread_mutex_destroy(&l->mu);
    free(l);
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
