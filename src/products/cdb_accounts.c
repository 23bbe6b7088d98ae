/* cdb accounts on the instance's MySQL/MariaDB server: DescribeAccounts (2017-03-20), and the live
 * check every account action passes before its task exists. Both connect to the instance
 * (bounded by a 5 s timeout), so they run on the blocking-work threads, never the HTTP ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <strings.h>

#include "common/timefmt.h"
#include "exec/mysql_conn.h"
#include "products/cdb_guard.h"
#include "products/product.h"

#define ACCOUNTS_TIMEOUT_S 5
/* The whole live check, however many accounts a request names: each query is bounded by the
 * connection's read timeout, this bounds their sum. */
#define LIVE_CHECK_BUDGET_MS 10000

/* System accounts a user of the service never manages (and the DSN's own account). */
#define HIDDEN_USERS "'root', 'mariadb.sys', 'mysql', 'PUBLIC', ''"

struct accounts_query {
    const char *account_re, *host_re;
    int64_t offset, limit;
    json_t *args; /* [account_re, host_re, dsn user] */
};

static char *where_sql(const struct accounts_query *q)
{
    return strdup(q->account_re && q->host_re ? " WHERE User NOT IN (" HIDDEN_USERS
                                                ", {2:str}) AND User REGEXP {0:str}"
                                                " AND Host REGEXP {1:str}"
                  : q->account_re ? " WHERE User NOT IN (" HIDDEN_USERS ", {2:str})"
                                    " AND User REGEXP {0:str}"
                  : q->host_re    ? " WHERE User NOT IN (" HIDDEN_USERS ", {2:str})"
                                    " AND Host REGEXP {1:str}"
                                  : " WHERE User NOT IN (" HIDDEN_USERS ", {2:str})");
}

static int run(MYSQL *m, const char *tmpl, const json_t *args, MYSQL_RES **res, struct err *e)
{
    char *sql = NULL;
    int rc = mysql_conn_render(m, tmpl, args, &sql, e);
    if (rc)
        return rc;
    if (mysql_query(m, sql) != 0 || !(*res = mysql_store_result(m)))
        rc = err_set(e, ERR_INTERNAL, "reading the accounts: MySQL error %u: %s", mysql_errno(m),
                     mysql_error(m));
    free(sql);
    return rc;
}

static json_t *account_item(MYSQL_ROW row)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b}", "Notes", "", "Host",
                     row[1] ? row[1] : "", "User", row[0] ? row[0] : "", "ModifyTime", "",
                     "ModifyPasswordTime", "", "CreateTime", "", "MaxUserConnections",
                     (json_int_t)(row[2] ? strtoll(row[2], NULL, 10) : 0), "OpenCam", 0);
}

static int read_accounts(MYSQL *m, const struct accounts_query *q, json_t *resp, struct err *e)
{
    char *where = where_sql(q);
    char *count_sql = NULL, *page_sql = NULL;
    if (asprintf(&count_sql, "SELECT COUNT(*) FROM mysql.user%s", where) < 0 ||
        asprintf(&page_sql,
                 "SELECT User, Host, max_user_connections FROM mysql.user%s"
                 " ORDER BY User, Host LIMIT %lld OFFSET %lld",
                 where, (long long)q->limit, (long long)q->offset) < 0)
        abort();
    MYSQL_RES *res = NULL;
    int rc = run(m, count_sql, q->args, &res, e);
    if (!rc) {
        MYSQL_ROW row = mysql_fetch_row(res);
        json_object_set_new(resp, "TotalCount", json_integer(row && row[0] ? atoll(row[0]) : 0));
        mysql_free_result(res);
        rc = run(m, page_sql, q->args, &res, e);
    }
    if (!rc) {
        json_t *items = json_array();
        MYSQL_ROW row;
        while ((row = mysql_fetch_row(res)))
            json_array_append_new(items, account_item(row));
        mysql_free_result(res);
        json_object_set_new(resp, "Items", items);
    }
    free(where);
    free(count_sql);
    free(page_sql);
    return rc;
}

static int max_user_connections(MYSQL *m, json_t *resp)
{
    MYSQL_RES *res;
    if (mysql_query(m, "SELECT @@GLOBAL.max_user_connections") != 0 ||
        !(res = mysql_store_result(m)))
        return -1;
    MYSQL_ROW row = mysql_fetch_row(res);
    json_object_set_new(resp, "MaxUserConnections",
                        json_integer(row && row[0] ? atoll(row[0]) : 0));
    mysql_free_result(res);
    return 0;
}

/* Whether text matches the POSIX extended regexp re (MySQL's REGEXP, near enough); NULL matches
 * everything. */
static bool re_matches(const regex_t *re, const char *text)
{
    return !re || regexec(re, text, 0, NULL, 0) == 0;
}

static int re_compile(const char *name, const char *pattern, regex_t *re, bool *used, struct err *e)
{
    *used = pattern && *pattern;
    if (*used && regcomp(re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: not a regular expression", name);
    return 0;
}

/* A simulated instance's accounts: what its simulated account tasks recorded (sim/sim.h). */
static int sim_accounts(struct api_call *c, const struct instance *in,
                        const struct accounts_query *q, json_t *resp, struct err *e)
{
    json_t *state = NULL;
    struct err se;
    if (store_instance_sim_state(c->store, "cdb", in->instance_id, &state, &se) != 0)
        return err_set(e, ERR_INTERNAL, "reading instance %s: %s", in->instance_id, se.msg);
    regex_t are, hre;
    bool use_a = false, use_h = false;
    int rc = re_compile("AccountRegexp", q->account_re, &are, &use_a, e);
    if (rc == 0 && (rc = re_compile("HostRegexp", q->host_re, &hre, &use_h, e)) != 0 && use_a)
        regfree(&are);
    if (rc) {
        json_decref(state);
        return rc;
    }
    json_t *items = json_array();
    int64_t total = 0;
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(state, "accounts"), i, a)
    {
        const char *user = json_string_value(json_object_get(a, "User"));
        const char *host = json_string_value(json_object_get(a, "Host"));
        if (!user || !host || !re_matches(use_a ? &are : NULL, user) ||
            !re_matches(use_h ? &hre : NULL, host))
            continue;
        if (total++ < q->offset || (int64_t)json_array_size(items) >= q->limit)
            continue;
        json_t *item = json_deep_copy(a);
        json_object_del(item, "Privileges");
        json_object_set_new(item, "OpenCam", json_false());
        json_array_append_new(items, item);
    }
    if (use_a)
        regfree(&are);
    if (use_h)
        regfree(&hre);
    json_object_set_new(resp, "TotalCount", json_integer(total));
    json_object_set_new(resp, "Items", items);
    json_object_set_new(resp, "MaxUserConnections", json_integer(10240));
    json_decref(state);
    return 0;
}

int cdb_describe_accounts(struct api_call *c, json_t *resp, struct err *e)
{
    struct accounts_query q = {0};
    const char *instance_id, *sort_by, *order_by;
    int rc;
    if ((rc = product_param_string(c, "InstanceId", true, &instance_id, e)) ||
        (rc = product_param_string(c, "AccountRegexp", false, &q.account_re, e)) ||
        (rc = product_param_string(c, "HostRegexp", false, &q.host_re, e)) ||
        (rc = product_param_string(c, "SortBy", false, &sort_by, e)) ||
        (rc = product_param_string(c, "OrderBy", false, &order_by, e)) ||
        (rc = product_param_int(c, "Offset", 0, 0, INT32_MAX, &q.offset, e)) ||
        (rc = product_param_int(c, "Limit", 20, 1, 100, &q.limit, e)))
        return rc;
    struct instance in;
    if ((rc = product_find_instance(c, instance_id, &in, e)))
        return rc;
    if (sim_instance_simulated(&in))
        return sim_accounts(c, &in, &q, resp, e);
    struct mysql_dsn dsn;
    if (mysql_dsn_parse(in.dsn, &dsn, e) != 0)
        return err_set(e, ERR_CDB_TASK_ERROR, "instance %s has no usable mysql:// DSN",
                       instance_id);
    q.args = json_pack("[s, s, s]", q.account_re ? q.account_re : "", q.host_re ? q.host_re : "",
                       dsn.user);
    mysql_dsn_free(&dsn);
    MYSQL *m = NULL;
    struct err ce;
    if (mysql_conn_open(in.dsn, ACCOUNTS_TIMEOUT_S, &m, &ce) != 0)
        rc = err_set(e, ERR_CDB_TASK_ERROR, "instance %s: %s", instance_id, ce.msg);
    else if (!(rc = read_accounts(m, &q, resp, e)))
        max_user_connections(m, resp);
    if (m)
        mysql_close(m);
    json_decref(q.args);
    return rc;
}

/* ---- the live check before an account action's task exists ---- */

struct live_check {
    MYSQL *m;
    const char *instance_id;
};

static int refuse(const char *user, const char *host, const char *what, struct err *e)
{
    return err_set(e, ERR_CDB_OPERATION_DENIED,
                   "The account %.80s@%.255s %s; it belongs to the instance's operator, so tenants "
                   "cannot create, change or delete it. Use an account of your own",
                   user, host, what);
}

/* A query that failed. A client-side error (2000..2999: lost connection, read timeout) means the
 * instance stopped answering, as an unreachable one; a server error fails closed: an account we
 * cannot look at is not acted on, as the executor does. */
static int query_failed(const struct live_check *lc, const char *user, const char *host,
                        struct err *e)
{
    unsigned n = mysql_errno(lc->m);
    if (n >= 2000 && n < 3000)
        return err_set(e, ERR_CDB_TASK_ERROR,
                       "instance %s: MySQL error %u while checking the account %.80s@%.255s: %s; "
                       "no task was created, retry when the instance answers",
                       lc->instance_id, n, user, host, mysql_error(lc->m));
    char what[600];
    snprintf(what, sizeof what, "could not be checked (MySQL error %u: %s)", n, mysql_error(lc->m));
    return refuse(user, host, what, e);
}

/* Runs sql (taking it; NULL when a name could not be escaped) and keeps its result. */
static int select_rows(MYSQL *m, char *sql, MYSQL_RES **res)
{
    *res = NULL;
    int rc = sql && mysql_query(m, sql) == 0 && (*res = mysql_store_result(m)) ? 0 : -1;
    free(sql);
    return rc;
}

/* Whether a row of res (mysql_conn_privileges_query's shape) is a privilege no tenant could
 * hold; then what says which ("holds SUPER, which tenants cannot have"). */
static bool operator_privilege(MYSQL_RES *res, char *what, size_t cap)
{
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        int scope = row[0] ? atoi(row[0]) : CDB_SCOPE_GLOBAL;
        bool grantable = row[3] && strcmp(row[3], "YES") == 0;
        if (cdb_guard_tenant_may_hold((enum cdb_scope)scope, row[2] ? row[2] : "", row[1],
                                      grantable))
            continue;
        snprintf(what, cap, "holds %.40s%s%.64s%s, which tenants cannot have", row[2] ? row[2] : "",
                 row[1] ? " on " : "", row[1] ? row[1] : "", grantable ? " WITH GRANT OPTION" : "");
        return true;
    }
    return false;
}

/* What the server says user@host holds now: an account that does not exist holds nothing. */
static int check_account(const struct live_check *lc, const char *user, const char *host,
                         struct err *e)
{
    MYSQL_RES *res;
    char what[300];
    if (select_rows(lc->m, mysql_conn_privileges_query(lc->m, user, host), &res) < 0)
        return query_failed(lc, user, host, e);
    bool denied = operator_privilege(res, what, sizeof what);
    mysql_free_result(res);
    if (denied)
        return refuse(user, host, what, e);
    /* MariaDB roles: a tenant never grants one; MySQL has no such table (error 1146) */
    if (select_rows(lc->m, mysql_conn_roles_query(lc->m, user, host), &res) < 0)
        return mysql_errno(lc->m) == 1146 ? 0 : query_failed(lc, user, host, e);
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row)
        snprintf(what, sizeof what, "holds the role %.64s", row[0] ? row[0] : "");
    mysql_free_result(res);
    return row ? refuse(user, host, what, e) : 0;
}

/* Whether accounts[0..n) names user@host already (hosts in any case, as MySQL stores them). */
static bool listed_before(const json_t *accounts, size_t n, const char *user, const char *host)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(accounts, i);
        if (strcmp(json_string_value(json_array_get(a, 0)), user) == 0 &&
            strcasecmp(json_string_value(json_array_get(a, 1)), host) == 0)
            return true;
    }
    return false;
}

static int check_all(const struct live_check *lc, const json_t *accounts, struct err *e)
{
    int64_t deadline = time_mono_ns() + (int64_t)LIVE_CHECK_BUDGET_MS * 1000000;
    size_t i;
    const json_t *a;
    json_array_foreach(accounts, i, a)
    {
        const char *user = json_string_value(json_array_get(a, 0));
        const char *host = json_string_value(json_array_get(a, 1));
        if (!user || !host || listed_before(accounts, i, user, host))
            continue;
        if (time_mono_ns() > deadline)
            return err_set(e, ERR_CDB_TASK_ERROR,
                           "instance %s: checking the accounts took longer than %d s; no task "
                           "was created, retry when the instance answers faster",
                           lc->instance_id, LIVE_CHECK_BUDGET_MS / 1000);
        int rc = check_account(lc, user, host, e);
        if (rc)
            return rc;
    }
    return 0;
}

int cdb_accounts_check_live(const struct instance *in, const json_t *accounts, struct err *e)
{
    if (json_array_size(accounts) == 0)
        return 0;
    struct live_check lc = {.instance_id = in->instance_id};
    struct err ce;
    if (mysql_conn_open(in->dsn, ACCOUNTS_TIMEOUT_S, &lc.m, &ce) != 0)
        return err_set(e, ERR_CDB_TASK_ERROR,
                       "instance %s: %s; the accounts could not be checked, so no task was "
                       "created",
                       in->instance_id, ce.msg);
    int rc = check_all(&lc, accounts, e);
    mysql_close(lc.m);
    return rc;
}
