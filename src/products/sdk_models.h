/* The shapes of the Tencent Cloud API structures asyncd answers with, generated from the official
 * SDK's model definitions (sdk_models_table.c, by scripts/gen_sdk_models.mjs), and what fills an
 * answer with every documented field: clients written against the SDK's models dereference fields
 * the API documents as optional, so an absent one must still be there with an empty value. */
#ifndef ASYNCD_SDK_MODELS_H
#define ASYNCD_SDK_MODELS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/errors.h"

enum sdk_kind { SDK_ANY, SDK_STRING, SDK_NUMBER, SDK_BOOL, SDK_OBJECT, SDK_ARRAY };

struct sdk_model;

struct sdk_field {
    const char *name;
    enum sdk_kind kind;
    enum sdk_kind elem;            /* SDK_ARRAY: the items' kind */
    const struct sdk_model *model; /* SDK_OBJECT, or SDK_ARRAY of SDK_OBJECT */
    bool required;
};

struct sdk_model {
    const char *product; /* "cdb", "mongodb" */
    const char *name;    /* the SDK's interface name, e.g. "InstanceInfo" */
    const struct sdk_field *fields;
    size_t n_fields;
};

/* Every generated structure, NULL-terminated (sdk_models_table.c). */
extern const struct sdk_model *const sdk_models_all[];

/* The generated structure, or NULL when the generator was not asked for it (see ROOTS there). */
const struct sdk_model *sdk_model_find(const char *product, const char *name);

/* Adds to obj every field of m it lacks, with the empty value of its kind ("" 0 false [], and an
 * object of the nested structure filled the same way), and fills the objects obj already holds in
 * object fields and object arrays. A value of the wrong kind is left as it is. */
void sdk_model_fill(const struct sdk_model *m, json_t *obj);

/* Whether m has a field of that name (the parameters a request may carry). */
bool sdk_model_has(const struct sdk_model *m, const char *name);

/* Checks params against request model m: each required field is there (ERR_MISSING_PARAMETER)
 * and each present one, nested items too, is of its kind (ERR_INVALID_PARAMETER naming it as
 * "Filters.0.Name"); from_form: the values came as strings (GET, form POST), so "12" is a number
 * and "true" a boolean. Unknown fields are the caller's to refuse. */
int sdk_model_check(const struct sdk_model *m, const json_t *params, bool from_form,
                    const char *action, struct err *e);

#endif
