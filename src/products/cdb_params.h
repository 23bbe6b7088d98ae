/* The cdb parameter catalogue: which MySQL/MariaDB global variables a tenant may set, of what
 * type, in what range, and whether a change needs a restart. It is data, not code: the shipped
 * FLOWS/cdb/params/catalog.json, with an operator's --param-catalog FILE merged over it, loaded
 * once at start-up (before any thread runs) and read-only afterwards. ModifyInstanceParam's
 * mysql actions name it ("parameter": {"name": N, "value": M}, see exec_mysql.c), and
 * DescribeDefaultParams / DescribeInstanceParams answer from it. docs/flows.md has the format. */
#ifndef ASYNCD_CDB_PARAMS_H
#define ASYNCD_CDB_PARAMS_H

#include <jansson.h>

#include "common/errors.h"
#include "products/product.h"

/* Loads flows_dir/cdb/params/catalog.json (when flows_dir is not NULL and the file exists) and
 * merges operator_file over it (when not NULL; it must exist): an entry replaces the shipped one
 * of its name, {"name": N, "remove": true} drops it. A malformed file, an unknown field, or a
 * parameter that runs SQL or names a file (init_connect, *_file, plugin_dir, ...) is
 * ERR_INVALID_PARAMETER_VALUE naming the file and the entry; nothing is installed then. Replaces
 * any catalogue loaded before. Not thread-safe: call it before the servers start. */
int cdb_params_load(const char *flows_dir, const char *operator_file, struct err *e);
/* The same from documents already parsed ({"parameters": [...]}; op may be NULL); for tests. The
 * documents are borrowed. */
int cdb_params_load_json(const json_t *shipped, const json_t *op, struct err *e);
/* Drops the catalogue (every parameter is uncatalogued afterwards). */
void cdb_params_unload(void);
/* How many parameters the catalogue holds. */
size_t cdb_params_count(void);

/* May a tenant's request set name to value? value NULL asks only whether the name is catalogued
 * (for a capture or a restore, which write back what the server already had). 0 when it may;
 * ERR_INVALID_PARAMETER_VALUE with a message naming the parameter and what it takes. */
int cdb_params_check(const char *name, const char *value, struct err *e);

/* DescribeDefaultParams: the catalogue with its defaults, as Tencent's ParameterDetail items. */
int cdb_describe_default_params(struct api_call *c, json_t *resp, struct err *e);
/* DescribeInstanceParams: the catalogued parameters the instance has, with their live values
 * (SHOW GLOBAL VARIABLES); connects to the instance, so the action is marked blocking. */
int cdb_describe_instance_params(struct api_call *c, json_t *resp, struct err *e);

#endif
