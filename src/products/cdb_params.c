/* The cdb parameter catalogue (cdb_params.h): loading and merging the files, checking a tenant's
 * value, and the two Describe actions that answer from it. */
#include "products/cdb_params.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/json_keys.h"
#include "common/pattern.h"
#include "common/xalloc.h"
#include "exec/mysql_conn.h"

#define PARAMS_TIMEOUT_S   5
#define DEFAULT_MAX_LENGTH 1024

/* The loaded catalogue: an array of entries as the file gives them, checked. Written only by
 * cdb_params_load before the servers start, then read by any thread (jansson reads of an object
 * nobody changes are safe; nothing here takes a reference). */
static json_t *catalog;

/* ---- names no catalogue may hold ---- */

/* Variables whose value is SQL the server runs, or a file or directory it reads or writes: a
 * tenant who could set one would run SQL as the server or reach its file system. Refused even
 * when an operator's file lists them, so a typo in a catalogue cannot open them. */
static const char *const denied_exact[] = {
    "init_connect", "init_file",       "init_slave",      "init_replica", "secure_file_priv",
    "general_log",  "local_infile",    "event_scheduler", "read_only",    "super_read_only",
    "datadir",      "basedir",         "tmpdir",          "socket",       "port",
    "bind_address", "skip_networking", "log_error",       "pid_file",     "sql_log_bin",
};
static const char *const denied_prefix[] = {"log_bin", "relay_log", "plugin_", "wsrep_",
                                            "ssl_",    "tls_",      "init_"};
static const char *const denied_suffix[] = {"_file",     "_dir",   "_path",
                                            "_basename", "_index", "_socket"};

static bool name_denied(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof denied_exact / sizeof denied_exact[0]; i++)
        if (strcmp(name, denied_exact[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof denied_prefix / sizeof denied_prefix[0]; i++)
        if (strncmp(name, denied_prefix[i], strlen(denied_prefix[i])) == 0)
            return true;
    for (size_t i = 0; i < sizeof denied_suffix / sizeof denied_suffix[0]; i++) {
        size_t k = strlen(denied_suffix[i]);
        if (n >= k && strcmp(name + n - k, denied_suffix[i]) == 0)
            return true;
    }
    return false;
}

/* Names are spliced into SHOW GLOBAL VARIABLES and SET GLOBAL as identifiers: keep them plain. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* ---- values ---- */

/* A value as a message may show it: printable ASCII, at most 64 characters. */
static const char *shown(const char *v, char buf[72])
{
    size_t i = 0;
    for (; v[i] && i < 64; i++)
        buf[i] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
    snprintf(buf + i, 72 - i, "%s", v[i] ? "..." : "");
    return buf;
}

static bool parse_int(const char *v, long long *out)
{
    const char *p = v + (*v == '-');
    if (!*p || strspn(p, "0123456789") != strlen(p))
        return false;
    errno = 0;
    *out = strtoll(v, NULL, 10);
    return errno == 0;
}

static bool parse_float(const char *v, double *out)
{
    const char *p = v + (*v == '-');
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 ||
        (p[digits] && (p[digits] != '.' || !p[digits + 1] ||
                       strspn(p + digits + 1, "0123456789") != strlen(p + digits + 1))))
        return false;
    *out = strtod(v, NULL);
    return isfinite(*out);
}

static const char *type_of(const json_t *p)
{
    return json_string_value(json_object_get(p, "type"));
}

static bool in_values(const json_t *values, const char *v, size_t len)
{
    size_t i;
    const json_t *x;
    json_array_foreach(values, i, x)
    {
        if (json_string_length(x) == len && strncasecmp(json_string_value(x), v, len) == 0)
            return true;
    }
    return false;
}

/* "A, B, C" of the entry's values, for messages (truncated by the caller's buffer). */
static void join_values(const json_t *values, char *out, size_t cap)
{
    size_t i;
    const json_t *x;
    out[0] = '\0';
    json_array_foreach(values, i, x)
    {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", i ? ", " : "", json_string_value(x));
    }
}

/* A comma-separated list of the entry's values ("" is the empty set); *bad the first member
 * that is not one of them. */
static bool set_ok(const json_t *values, const char *v, char bad[72])
{
    if (!*v)
        return true;
    for (const char *p = v;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || !in_values(values, p, len)) {
            char *member = xstrndup(p, len);
            shown(member, bad);
            free(member);
            return false;
        }
        if (!comma)
            return true;
        p = comma + 1;
    }
}

static bool pattern_ok(const char *pattern, const char *v)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    bool ok = regexec(&re, v, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static int check_integer(const json_t *p, const char *name, const char *v, struct err *e)
{
    long long n, lo = json_integer_value(json_object_get(p, "min")),
                 hi = json_integer_value(json_object_get(p, "max"));
    char b[72];
    if (!parse_int(v, &n) || n < lo || n > hi)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "The parameter %s takes an integer from %lld to %lld, not \"%s\"", name, lo,
                       hi, shown(v, b));
    return 0;
}

static int check_float(const json_t *p, const char *name, const char *v, struct err *e)
{
    double x, lo = json_number_value(json_object_get(p, "min")),
              hi = json_number_value(json_object_get(p, "max"));
    char b[72];
    if (!parse_float(v, &x) || x < lo || x > hi)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "The parameter %s takes a number from %g to %g, not \"%s\"", name, lo, hi,
                       shown(v, b));
    return 0;
}

static int check_choice(const json_t *p, const char *name, const char *v, struct err *e)
{
    const json_t *values = json_object_get(p, "values");
    char list[400], b[72], bad[72];
    join_values(values, list, sizeof list);
    if (strcmp(type_of(p), "enum") == 0 && !in_values(values, v, strlen(v)))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "The parameter %s takes one of %s, not \"%s\"", name, list, shown(v, b));
    if (strcmp(type_of(p), "set") == 0 && !set_ok(values, v, bad))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "The parameter %s does not take \"%s\": it takes a comma-separated list "
                       "of %s",
                       name, bad, list);
    return 0;
}

static int check_string(const json_t *p, const char *name, const char *v, struct err *e)
{
    json_int_t max = json_integer_value(json_object_get(p, "max_length"));
    const char *pattern = json_string_value(json_object_get(p, "pattern"));
    char b[72];
    if ((json_int_t)strlen(v) > (max ? max : DEFAULT_MAX_LENGTH) ||
        (pattern && !pattern_ok(pattern, v)))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "The parameter %s takes at most %lld characters%s%s, not \"%s\"", name,
                       (long long)(max ? max : DEFAULT_MAX_LENGTH), pattern ? " matching " : "",
                       pattern ? pattern : "", shown(v, b));
    return 0;
}

/* Whether value is one the entry allows (its type and limits). */
static int check_value(const json_t *p, const char *name, const char *v, struct err *e)
{
    const char *t = type_of(p);
    if (strcmp(t, "integer") == 0)
        return check_integer(p, name, v, e);
    if (strcmp(t, "float") == 0)
        return check_float(p, name, v, e);
    if (strcmp(t, "string") == 0)
        return check_string(p, name, v, e);
    return check_choice(p, name, v, e);
}

static const json_t *find(const json_t *list, const char *name, size_t *at)
{
    size_t i;
    const json_t *p;
    json_array_foreach(list, i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0) {
            if (at)
                *at = i;
            return p;
        }
    }
    return NULL;
}

static bool flag(const json_t *p, const char *key, bool dflt)
{
    const json_t *v = json_object_get(p, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

int cdb_params_check(const char *name, const char *value, struct err *e)
{
    const json_t *p = catalog ? find(catalog, name, NULL) : NULL;
    char b[72];
    if (!p)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "The parameter %s is not one that can be modified (it is not in the "
                       "parameter catalogue; DescribeDefaultParams lists those that are)",
                       shown(name, b));
    if (!value)
        return 0;
    if (!flag(p, "editable", true))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "The parameter %s cannot be modified", name);
    if (flag(p, "need_reboot", false))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "The parameter %s takes effect only after a restart of the instance, "
                       "which this service does not do; it cannot be modified here",
                       name);
    return check_value(p, name, value, e);
}

/* ---- loading ---- */

static const char *const entry_keys[] = {"name",        "type",        "min",        "max",
                                         "values",      "pattern",     "max_length", "default",
                                         "description", "need_reboot", "editable",   "remove"};

/* The fields each type needs: integer/float a min and max, enum/set their values, string an
 * optional pattern that compiles. */
static int entry_type_ok(const json_t *p, const char *where, struct err *e)
{
    const char *t = type_of(p);
    const json_t *lo = json_object_get(p, "min"), *hi = json_object_get(p, "max");
    const json_t *values = json_object_get(p, "values");
    const char *pattern = json_string_value(json_object_get(p, "pattern"));
    regex_t re;
    if (!t)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: \"type\" must be integer, float, enum, set or string", where);
    if (strcmp(t, "integer") == 0 && !(json_is_integer(lo) && json_is_integer(hi) &&
                                       json_integer_value(lo) <= json_integer_value(hi)))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: an integer needs integer \"min\" and \"max\", min <= max", where);
    if (strcmp(t, "float") == 0 && !(json_is_number(lo) && json_is_number(hi) &&
                                     json_number_value(lo) <= json_number_value(hi)))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: a float needs numbers \"min\" and \"max\", min <= max", where);
    if ((strcmp(t, "enum") == 0 || strcmp(t, "set") == 0) && json_array_size(values) == 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: an %s needs \"values\", a non-empty array of strings", where, t);
    if (strcmp(t, "string") == 0 && pattern) {
        if (!pattern_is_tame(pattern))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "%s: \"pattern\" is longer than %d bytes or has a quantifier on a "
                           "quantifier (such as ?? or *{2})",
                           where, PATTERN_MAX_LEN);
        if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "%s: \"pattern\" is not a POSIX extended regular expression", where);
        regfree(&re);
    }
    if (strcmp(t, "integer") && strcmp(t, "float") && strcmp(t, "enum") && strcmp(t, "set") &&
        strcmp(t, "string"))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: \"type\" must be integer, float, enum, set or string, not %.32s", where,
                       t);
    return 0;
}

static int entry_fields_ok(const json_t *p, const char *where, struct err *e)
{
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(p, "values"), i, x)
    {
        if (!json_is_string(x))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: \"values\" must hold strings only",
                           where);
    }
    if ((x = json_object_get(p, "values")) && !json_is_array(x))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: \"values\" must be an array", where);
    const char *strs[] = {"type", "pattern", "default", "description"};
    for (i = 0; i < 4; i++)
        if ((x = json_object_get(p, strs[i])) && !json_is_string(x))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: \"%s\" must be a string", where,
                           strs[i]);
    const char *flags[] = {"need_reboot", "editable", "remove"};
    for (i = 0; i < 3; i++)
        if ((x = json_object_get(p, flags[i])) && !json_is_boolean(x))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: \"%s\" must be true or false",
                           where, flags[i]);
    if ((x = json_object_get(p, "max_length")) &&
        !(json_is_integer(x) && json_integer_value(x) > 0 && json_integer_value(x) <= 65535))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: \"max_length\" must be an integer from 1 to 65535", where);
    return 0;
}

/* One entry of a file: its fields, its name, its type's limits, and a default it allows. */
static int entry_ok(const json_t *p, const char *file, size_t i, struct err *e)
{
    char where[600];
    const char *name = json_string_value(json_object_get(p, "name"));
    snprintf(where, sizeof where, "parameter catalogue %.400s: parameters[%zu]%s%.64s", file, i,
             name ? " " : "", name ? name : "");
    int rc;
    if (!json_is_object(p))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: expected an object", where);
    if ((rc = json_keys_check(p, entry_keys, sizeof entry_keys / sizeof entry_keys[0], where, e)))
        return rc;
    if (!name || !name_ok(name))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: \"name\" must be a MySQL variable name (a-z, 0-9, _)", where);
    if (flag(p, "remove", false))
        return 0;
    if (name_denied(name))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: %s runs SQL, names a file or guards the server; no tenant may set it",
                       where, name);
    if ((rc = entry_fields_ok(p, where, e)) || (rc = entry_type_ok(p, where, e)))
        return rc;
    const char *dflt = json_string_value(json_object_get(p, "default"));
    struct err ve;
    if (!dflt)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: \"default\" (a string) is missing",
                       where);
    if (check_value(p, name, dflt, &ve) != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: \"default\": %s", where, ve.msg);
    return 0;
}

/* Checks doc's entries and merges them into list: same name replaces, "remove" drops. */
static int merge(json_t *list, const json_t *doc, const char *file, struct err *e)
{
    const json_t *entries = json_object_get(doc, "parameters");
    if (!json_is_object(doc) || !json_is_array(entries) || json_object_size(doc) != 1)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "parameter catalogue %.400s: expected {\"parameters\": [...]}", file);
    size_t i, at;
    json_t *p;
    json_array_foreach(entries, i, p)
    {
        int rc = entry_ok(p, file, i, e);
        if (rc)
            return rc;
        const char *name = json_string_value(json_object_get(p, "name"));
        bool known = find(list, name, &at) != NULL;
        if (flag(p, "remove", false)) {
            if (known)
                json_array_remove(list, at);
        } else if (known) {
            json_array_set(list, at, p);
        } else {
            json_array_append(list, p);
        }
    }
    return 0;
}

/* Merges the documents into a new list and installs it; the old catalogue stays on failure. */
static int install(const json_t *shipped, const char *shipped_name, const json_t *op,
                   const char *op_name, struct err *e)
{
    json_t *list = json_array();
    int rc = shipped ? merge(list, shipped, shipped_name, e) : 0;
    if (!rc && op)
        rc = merge(list, op, op_name, e);
    if (rc) {
        json_decref(list);
        return rc;
    }
    json_decref(catalog);
    catalog = list;
    return 0;
}

int cdb_params_load_json(const json_t *shipped, const json_t *op, struct err *e)
{
    return install(shipped, "(shipped)", op, "(operator)", e);
}

static int read_doc(const char *path, json_t **doc, struct err *e)
{
    json_error_t je;
    *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!*doc)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "parameter catalogue %.400s: line %d: %s",
                       path, je.line, je.text);
    return 0;
}

int cdb_params_load(const char *flows_dir, const char *operator_file, struct err *e)
{
    char *shipped_path = flows_dir ? xasprintf("%s/cdb/params/catalog.json", flows_dir) : NULL;
    json_t *shipped = NULL, *op = NULL;
    int rc = 0;
    if (shipped_path && access(shipped_path, F_OK) == 0)
        rc = read_doc(shipped_path, &shipped, e);
    if (!rc && operator_file)
        rc = read_doc(operator_file, &op, e);
    if (!rc)
        rc = install(shipped, shipped_path, op, operator_file, e);
    json_decref(shipped);
    json_decref(op);
    free(shipped_path);
    return rc;
}

void cdb_params_unload(void)
{
    json_decref(catalog);
    catalog = NULL;
}

size_t cdb_params_count(void) { return json_array_size(catalog); }

/* ---- the Describe actions ---- */

/* One ParameterDetail (cdb_models.d.ts), every field present. A set reads "enum" (the SDK
 * documents integer, enum, float, string and func), its value a comma-separated list. */
static json_t *detail(const json_t *p, const char *current)
{
    const char *t = type_of(p);
    json_t *lo = json_object_get(p, "min"), *hi = json_object_get(p, "max");
    bool numeric = strcmp(t, "integer") == 0 || strcmp(t, "float") == 0;
    json_t *values = json_object_get(p, "values");
    const char *dflt = json_string_value(json_object_get(p, "default"));
    const char *desc = json_string_value(json_object_get(p, "description"));
    bool reboot = flag(p, "need_reboot", false);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:o, s:s, s:s, s:b}", "Name",
                     json_string_value(json_object_get(p, "name")), "ParamType",
                     strcmp(t, "set") == 0 ? "enum" : t, "Default", dflt, "Description",
                     desc ? desc : "", "CurrentValue", current ? current : dflt, "NeedReboot",
                     reboot ? 1 : 0, "Max", numeric ? json_copy(hi) : json_integer(0), "Min",
                     numeric ? json_copy(lo) : json_integer(0), "EnumValue",
                     values ? json_copy(values) : json_array(), "MaxFunc", "", "MinFunc", "",
                     "IsNotSupportEdit", !flag(p, "editable", true) || reboot);
}

static const char *const engine_versions[] = {"5.1", "5.5", "5.6", "5.7", "8.0", NULL};
static const char *const template_types[] = {"HIGH_STABILITY", "HIGH_PERFORMANCE", NULL};
static const char *const engine_types[] = {"InnoDB", "RocksDB", NULL};

static int one_of(struct api_call *c, const char *name, const char *const *allowed, struct err *e)
{
    const char *v;
    int rc = product_param_string(c, name, false, &v, e);
    if (rc || !v)
        return rc;
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(v, allowed[i]) == 0)
            return 0;
    char b[72], list[200] = "";
    for (size_t i = 0; allowed[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 allowed[i]);
    return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: expected one of %s, got \"%s\"", name, list,
                   shown(v, b));
}

/* Every engine version and template answers the same catalogue: the operator's servers are
 * what they are, and the catalogue is the one list of what may be set on them. */
int cdb_describe_default_params(struct api_call *c, json_t *resp, struct err *e)
{
    int rc;
    if ((rc = one_of(c, "EngineVersion", engine_versions, e)) ||
        (rc = one_of(c, "TemplateType", template_types, e)) ||
        (rc = one_of(c, "EngineType", engine_types, e)))
        return rc;
    json_t *items = json_array();
    size_t i;
    const json_t *p;
    json_array_foreach(catalog, i, p) json_array_append_new(items, detail(p, NULL));
    json_object_set_new(resp, "TotalCount", json_integer((json_int_t)json_array_size(items)));
    json_object_set_new(resp, "Items", items);
    return 0;
}

/* SHOW GLOBAL VARIABLES for the catalogued names. The names passed name_ok() when loaded
 * (a-z, 0-9, _), so quoting them is enough. */
static char *variables_sql(void)
{
    size_t cap = 64 + json_array_size(catalog) * 70, n;
    char *sql = xmalloc(cap);
    n = (size_t)snprintf(sql, cap, "SHOW GLOBAL VARIABLES WHERE Variable_name IN (");
    size_t i;
    const json_t *p;
    json_array_foreach(catalog, i, p)
    {
        n += (size_t)snprintf(sql + n, cap - n, "%s'%s'", i ? "," : "",
                              json_string_value(json_object_get(p, "name")));
    }
    snprintf(sql + n, cap - n, ")");
    return sql;
}

/* {name: value} of the instance's live values, or NULL with e filled. */
static json_t *live_values(MYSQL *m, const char *instance_id, struct err *e)
{
    if (json_array_size(catalog) == 0)
        return json_object();
    char *sql = variables_sql();
    MYSQL_RES *res = NULL;
    json_t *values = NULL;
    if (mysql_query(m, sql) != 0 || !(res = mysql_store_result(m))) {
        err_set(e, ERR_CDB_TASK_ERROR, "instance %s: reading the parameters: MySQL error %u: %s",
                instance_id, mysql_errno(m), mysql_error(m));
    } else {
        values = json_object();
        MYSQL_ROW row;
        while ((row = mysql_fetch_row(res)))
            if (row[0] && row[1])
                json_object_set_new(values, row[0], json_string(row[1]));
        mysql_free_result(res);
    }
    free(sql);
    return values;
}

/* The instance's values by name (a new object), read from its server; NULL with e set. */
static json_t *server_values(const struct instance *in, struct err *e)
{
    MYSQL *m = NULL;
    struct err ce;
    if (mysql_conn_open(in->dsn, PARAMS_TIMEOUT_S, &m, &ce) != 0) {
        err_set(e, ERR_CDB_TASK_ERROR, "instance %s: %s", in->instance_id, ce.msg);
        return NULL;
    }
    json_t *values = live_values(m, in->instance_id, e);
    mysql_close(m);
    return values;
}

/* A simulated instance's values: each catalogued default, and what its simulated
 * ModifyInstanceParam tasks set (sim/sim.h). */
static json_t *sim_values(struct api_call *c, const struct instance *in, struct err *e)
{
    json_t *state = NULL;
    struct err se;
    if (store_instance_sim_state(c->store, "cdb", in->instance_id, &state, &se) != 0) {
        err_set(e, ERR_INTERNAL, "reading instance %s: %s", in->instance_id, se.msg);
        return NULL;
    }
    json_t *values = json_object();
    size_t i;
    const json_t *p;
    json_array_foreach(catalog, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        json_t *dflt = json_object_get(p, "default");
        if (name && json_is_string(dflt))
            json_object_set(values, name, dflt);
    }
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(state, "params"), key, v) if (json_is_string(v))
        json_object_set(values, key, v);
    json_decref(state);
    return values;
}

int cdb_describe_instance_params(struct api_call *c, json_t *resp, struct err *e)
{
    const char *instance_id;
    struct instance in;
    int rc;
    if ((rc = product_param_string(c, "InstanceId", true, &instance_id, e)) ||
        (rc = product_find_instance(c, instance_id, &in, e)))
        return rc;
    json_t *values = sim_instance_simulated(&in) ? sim_values(c, &in, e) : server_values(&in, e);
    if (!values)
        return e->code;
    /* A catalogued name the server does not have (another version) is not the instance's. */
    json_t *items = json_array();
    size_t i;
    const json_t *p;
    json_array_foreach(catalog, i, p)
    {
        const json_t *v = json_object_get(values, json_string_value(json_object_get(p, "name")));
        if (v)
            json_array_append_new(items, detail(p, json_string_value(v)));
    }
    json_decref(values);
    json_object_set_new(resp, "TotalCount", json_integer((json_int_t)json_array_size(items)));
    json_object_set_new(resp, "Items", items);
    return 0;
}
