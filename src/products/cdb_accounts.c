/* cdb DescribeAccounts (2017-03-20): the instance's accounts, read from its MySQL/MariaDB server.
 * A synchronous call: it connects to the instance from the API thread (bounded by a 5 s timeout).
 */
#include <stdlib.h>
#include <string.h>

#include "exec/mysql_conn.h"
#include "products/product.h"

#define ACCOUNTS_TIMEOUT_S 5

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
