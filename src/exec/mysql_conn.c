/* MySQL connections for the mysql executor: connecting and typed placeholders (DSNs: mysql_dsn.c).
 */
#include "exec/mysql_conn.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"
#include "exec/exec_int.h"
#include "products/cdb_guard.h"

enum {
    DEFAULT_CONNECT_TIMEOUT_S = 5,
    MAX_IDENT_CHARS = 64,          /* MySQL's limit for database, table and column names */
    MAX_RENDERED_BYTES = 16 << 20, /* see buf_check_bound */
    MAX_NUMBER_LEN = 64,
    MAX_PLACEHOLDER = 32, /* longest text between braces we read as a placeholder */
};

/* ---- connecting ---- */

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

/* mysql_init() would do this on first use, but not safely from two threads at once. */
static void library_init(void) { mysql_library_init(0, NULL, NULL); }

MYSQL *mysql_conn_prepare(const struct mysql_dsn *d, unsigned timeout_s)
{
    pthread_once(&library_once, library_init);
    MYSQL *m = mysql_init(NULL);
    if (!m) {
        fputs("asyncd: out of memory in mysql_init\n", stderr);
        abort();
    }
    unsigned connect_s = timeout_s ? timeout_s : DEFAULT_CONNECT_TIMEOUT_S, off = 0;
    unsigned protocol = MYSQL_PROTOCOL_TCP;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
    if (timeout_s) {
        mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout_s);
        mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout_s);
    }
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &off);
    mysql_options(m, MYSQL_OPT_PROTOCOL, &protocol);
    mysql_optionsv(m, MYSQL_OPT_NONBLOCK, NULL); /* the blocking calls keep working too */
    mysql_dsn_tls_apply(m, d);
    return m;
}

int mysql_conn_connected(MYSQL *m, bool connected, const struct mysql_dsn *d, struct err *e)
{
    char why[512] = "";
    if (!connected)
        snprintf(why, sizeof why, "%s", mysql_error(m));
    else
        mysql_dsn_tls_check(m, d, why, sizeof why); /* before any statement is sent */
    if (!why[0])
        return 0;
    int v6 = strchr(d->host, ':') != NULL;
    return err_set(e, ERR_SERVICE_UNAVAILABLE, "cannot connect to MySQL at %s%s%s:%u%s%s: %s",
                   v6 ? "[" : "", d->host, v6 ? "]" : "", d->port,
                   d->ssl_mode > MYSQL_DSN_SSL_DISABLED ? " with ssl-mode=" : "",
                   d->ssl_mode > MYSQL_DSN_SSL_DISABLED ? mysql_dsn_ssl_mode_name(d->ssl_mode) : "",
                   why);
}

int mysql_conn_open(const char *dsn, unsigned timeout_s, MYSQL **out, struct err *e)
{
    struct mysql_dsn d;
    *out = NULL;
    int rc = mysql_dsn_parse(dsn, &d, e);
    if (rc < 0)
        return rc;
    MYSQL *m = mysql_conn_prepare(&d, timeout_s);
    bool ok = mysql_real_connect(m, d.host, d.user, d.password ? d.password : "", d.db, d.port,
                                 NULL, 0) != NULL;
    rc = mysql_conn_connected(m, ok, &d, e);
    if (rc < 0)
        mysql_close(m);
    else
        *out = m;
    mysql_dsn_free(&d);
    return rc;
}

/* ---- templates: cutting them into literal text and placeholders ---- */

enum kind {
    KIND_NONE,
    KIND_STR,
    KIND_IDENT,
    KIND_INT,
    KIND_VAL,
    KIND_LIST_PRIV,
    KIND_PRIV_GLOBAL,
    KIND_PRIV_DATABASE,
    KIND_PRIV_TABLE,
    KIND_PRIV_COLUMN,
    KIND_SCHEMA,
};

static const char *const kind_names[] = {
    "",           "str",         "ident", "int", "val", "list_priv", "priv_global", "priv_database",
    "priv_table", "priv_column", "schema"};

/* The scope whose list a privilege placeholder draws from; list_priv (the oldest spelling, no
 * scope of its own) takes the global list, the widest one a tenant may have. */
static enum cdb_scope kind_scope(enum kind k)
{
    return k == KIND_PRIV_DATABASE ? CDB_SCOPE_DATABASE
           : k == KIND_PRIV_TABLE  ? CDB_SCOPE_TABLE
           : k == KIND_PRIV_COLUMN ? CDB_SCOPE_COLUMN
                                   : CDB_SCOPE_GLOBAL;
}

static bool is_priv_kind(enum kind k)
{
    return k == KIND_LIST_PRIV || (k >= KIND_PRIV_GLOBAL && k <= KIND_PRIV_COLUMN);
}

struct piece {
    const char *text; /* literal text (no placeholder) when index == NO_INDEX */
    size_t len;
    long index; /* args index, CAPTURED, or NO_INDEX for literal text */
    enum kind kind;
    char name[MAX_PLACEHOLDER + 3]; /* the placeholder as written, "{1:ident}" */
};

enum { NO_INDEX = -2, CAPTURED = -1 };

#define PLACEHOLDER_FORMS                                                                          \
    "{N:str}, {N:ident}, {N:schema}, {N:int}, {N:val}, {N:priv_global}, {N:priv_database}, "       \
    "{N:priv_table}, {N:priv_column}, {N:list_priv}, {captured} or {captured:val}"

static int parse_placeholder(const char *s, size_t n, struct piece *pc, struct err *e)
{
    snprintf(pc->name, sizeof pc->name, "{%.*s}", (int)n, s);
    const char *colon = memchr(s, ':', n);
    size_t head = colon ? (size_t)(colon - s) : n;
    pc->kind = KIND_NONE;
    if (colon) {
        size_t klen = n - head - 1, k;
        for (k = 1; k < sizeof kind_names / sizeof kind_names[0]; k++)
            if (strlen(kind_names[k]) == klen && memcmp(colon + 1, kind_names[k], klen) == 0)
                break;
        if (k == sizeof kind_names / sizeof kind_names[0])
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "%s: unknown kind (expected " PLACEHOLDER_FORMS ")", pc->name);
        pc->kind = (enum kind)k;
    }
    if (head == 8 && memcmp(s, "captured", 8) == 0) {
        pc->index = CAPTURED;
        return is_priv_kind(pc->kind) || pc->kind == KIND_SCHEMA
                   ? err_set(e, ERR_INVALID_PARAMETER_VALUE,
                             "%s: a captured value is not a privilege list or a schema", pc->name)
                   : 0;
    }
    if (head == 0 || head > 6 || strspn(s, "0123456789") != head)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: not a placeholder (expected " PLACEHOLDER_FORMS
                       "; write {{ and }} for braces)",
                       pc->name);
    pc->index = strtol(s, NULL, 10);
    return 0;
}

/* Cuts the next piece off *p (which is not at the end); {{ and }} are one-byte literals. */
static int next_piece(const char **p, struct piece *pc, struct err *e)
{
    const char *s = *p;
    pc->index = NO_INDEX;
    pc->text = s;
    if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
        pc->len = 1;
        *p = s + 2;
        return 0;
    }
    if (s[0] == '}')
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "a lone '}' in the template (write }} for a brace)");
    if (s[0] != '{') {
        pc->len = strcspn(s, "{}");
        *p = s + pc->len;
        return 0;
    }
    size_t n = strcspn(s + 1, "{}");
    if (s[1 + n] != '}' || n > MAX_PLACEHOLDER)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "a '{' without a closing '}' in the template (write {{ for a brace)");
    *p = s + n + 2;
    return parse_placeholder(s + 1, n, pc, e);
}

/* ---- output ---- */

struct buf {
    char *p;
    size_t len, cap;
    /* What the rendering may reach at most: bytes added, plus 2n+2 for each string literal of n
     * bytes (its longest escaped form), counted the same with or without a connection handle, so
     * checking alone and rendering refuse the same templates. */
    size_t bound;
};

/* Past MAX_RENDERED_BYTES: a template repeating a long arg thousands of times would otherwise
 * render hundreds of MiB (found by fuzz_mysql_render: 32,000 {0:str} of a 22 KB arg, 700 MB). */
static int buf_check_bound(const struct buf *b, struct err *e)
{
    if (b->bound <= MAX_RENDERED_BYTES)
        return 0;
    return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                   "the SQL would pass %d MiB once its placeholders are filled in (MariaDB's "
                   "default max_allowed_packet); use fewer or shorter values",
                   MAX_RENDERED_BYTES >> 20);
}

static void buf_reserve(struct buf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    while (b->len + n + 1 > b->cap)
        b->cap = b->cap ? b->cap * 2 : 256;
    b->p = xrealloc(b->p, b->cap);
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->bound += n;
    b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

/* ---- values ---- */

/* -digits, or with want_fraction also -digits.digits; at most MAX_NUMBER_LEN bytes. */
static int is_number(const char *s, size_t len, int want_fraction)
{
    size_t i = s[0] == '-', d = strspn(s + i, "0123456789");
    if (d == 0 || len > MAX_NUMBER_LEN)
        return 0;
    i += d;
    if (want_fraction && s[i] == '.') {
        d = strspn(s + i + 1, "0123456789");
        i += d ? d + 1 : 0;
    }
    return i == len;
}

static int string_has_nul(const json_t *v)
{
    return strlen(json_string_value(v)) != json_string_length(v);
}

static int type_error(const struct piece *pc, const char *want, const json_t *v, struct err *e)
{
    return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: expected %s, got %s", pc->name, want,
                   json_kind_phrase(v));
}

/* A number written bare; a space first when the output ends in '-', so "-" "-1" is no comment. */
static void add_number(struct buf *b, const char *s, size_t n)
{
    if (s[0] == '-' && b->len > 0 && b->p[b->len - 1] == '-')
        buf_add(b, " ", 1);
    buf_add(b, s, n);
}

static int add_string_literal(MYSQL *m, struct buf *b, const char *s, size_t n, struct err *e)
{
    b->bound += 2 * n + 2;
    if (!m)
        return 0;
    int rc = buf_check_bound(b, e); /* before reserving 2n+2 */
    if (rc < 0)
        return rc;
    buf_reserve(b, 2 * n + 2);
    b->p[b->len++] = '\'';
    /* escapes for the connection's character set, or only doubles ' under NO_BACKSLASH_ESCAPES */
    unsigned long w = mysql_real_escape_string(m, b->p + b->len, s, (unsigned long)n);
    if (w == (unsigned long)-1)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "cannot escape a string literal");
    b->len += w;
    b->p[b->len++] = '\'';
    b->p[b->len] = '\0';
    return 0;
}

static int add_ident(struct buf *b, const struct piece *pc, const json_t *v, struct err *e)
{
    if (!json_is_string(v))
        return type_error(pc, "a string (an identifier)", v, e);
    const char *s = json_string_value(v);
    size_t chars = 0;
    for (const char *c = s; *c; c++)
        chars += ((unsigned char)*c & 0xC0) != 0x80;
    if (string_has_nul(v) || chars == 0 || chars > MAX_IDENT_CHARS)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: an identifier must be 1 to %d characters without NUL", pc->name,
                       MAX_IDENT_CHARS);
    struct err ge;
    if (pc->kind == KIND_SCHEMA && cdb_guard_schema(s, &ge) < 0)
        return err_set(e, ge.code, "%s: %s", pc->name, ge.msg);
    buf_add(b, "`", 1);
    for (const char *c = s; *c; c++) {
        if (*c == '`')
            buf_add(b, "``", 2);
        else
            buf_add(b, c, 1);
    }
    buf_add(b, "`", 1);
    return 0;
}

/* The list of privileges v (an array of names) as its scope allows them, "SELECT, INSERT"; in
 * the column scope each is followed by column, "SELECT (`c`), INSERT (`c`)". */
static int add_privilege_list(struct buf *b, const struct piece *pc, const json_t *v,
                              const json_t *column, struct err *e)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return type_error(pc, "a non-empty array of privilege names", v, e);
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        const char *name;
        struct err ge;
        if (!json_is_string(item) || string_has_nul(item))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "%s: item %zu is not a privilege name such as \"SELECT\" or "
                           "\"CREATE VIEW\"",
                           pc->name, i);
        if (cdb_guard_check_privilege(kind_scope(pc->kind), json_string_value(item), &name, &ge) <
            0)
            return err_set(e, ge.code, "%s: item %zu is not a privilege name for tenants: %s",
                           pc->name, i, ge.msg);
        if (i > 0)
            buf_adds(b, ", ");
        buf_adds(b, name);
        if (column) {
            struct piece col = *pc;
            col.kind = KIND_IDENT;
            buf_adds(b, " (");
            int rc = add_ident(b, &col, column, e);
            if (rc < 0)
                return rc;
            buf_adds(b, ")");
        }
    }
    return 0;
}

/* {N:priv_column} takes a ColumnPrivileges item, {"Column": ..., "Privileges": [...]}. */
static int add_privileges(struct buf *b, const struct piece *pc, const json_t *v, struct err *e)
{
    if (pc->kind != KIND_PRIV_COLUMN)
        return add_privilege_list(b, pc, v, NULL, e);
    if (!json_is_object(v) || !json_is_string(json_object_get(v, "Column")))
        return type_error(pc, "an object with \"Column\" (a string) and \"Privileges\"", v, e);
    return add_privilege_list(b, pc, json_object_get(v, "Privileges"), json_object_get(v, "Column"),
                              e);
}

/* One placeholder's SQL for value v (an arg, or the captured value where null is NULL). */
static int render_value(MYSQL *m, struct buf *b, const struct piece *pc, const json_t *v,
                        struct err *e)
{
    char num[32];
    const char *s = NULL;
    size_t n = 0;
    if (json_is_integer(v)) {
        n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
    } else if (json_is_string(v)) {
        if (string_has_nul(v))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: contains a NUL character",
                           pc->name);
        s = json_string_value(v);
        n = json_string_length(v);
    }
    enum kind kind = pc->kind == KIND_NONE ? KIND_STR : pc->kind;
    if (json_is_null(v) && pc->index == CAPTURED && (kind == KIND_STR || kind == KIND_VAL)) {
        buf_adds(b, "NULL");
        return 0;
    }
    switch (kind) {
    case KIND_IDENT:
    case KIND_SCHEMA:
        return add_ident(b, pc, v, e);
    case KIND_LIST_PRIV:
    case KIND_PRIV_GLOBAL:
    case KIND_PRIV_DATABASE:
    case KIND_PRIV_TABLE:
    case KIND_PRIV_COLUMN:
        return add_privileges(b, pc, v, e);
    case KIND_INT:
        if (!s || !is_number(s, n, 0))
            return s ? err_set(e, ERR_INVALID_PARAMETER_VALUE,
                               "%s: expected an integer, got a string that is not one", pc->name)
                     : type_error(pc, "an integer", v, e);
        add_number(b, s, n);
        return 0;
    case KIND_VAL:
    case KIND_STR:
    case KIND_NONE:
        if (!s)
            return type_error(pc, "a string or an integer", v, e);
        if (kind == KIND_VAL && is_number(s, n, 1)) {
            add_number(b, s, n);
            return 0;
        }
        return add_string_literal(m, b, s, n, e);
    }
    return 0;
}

/* The value a placeholder names: args[index], or captured's "value". */
static int lookup(const struct piece *pc, const json_t *args, const json_t *captured,
                  const json_t **v, struct err *e)
{
    if (pc->index == CAPTURED) {
        *v = captured ? json_object_get(captured, "value") : NULL;
        if (!*v)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "%s: there is no captured value (the step's do captured nothing)",
                           pc->name);
        return 0;
    }
    *v = json_array_get(args, (size_t)pc->index);
    if (!*v)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: args has %zu item%s", pc->name,
                       json_array_size(args), json_array_size(args) == 1 ? "" : "s");
    return 0;
}

int mysql_conn_render_captured(MYSQL *m, const char *sql, const json_t *args,
                               const json_t *captured, char **out, struct err *e)
{
    struct buf b = {0};
    int rc = 0;
    buf_reserve(&b, strlen(sql));
    for (const char *p = sql; rc == 0 && *p;) {
        struct piece pc;
        const json_t *v;
        rc = next_piece(&p, &pc, e);
        if (rc == 0 && pc.index == NO_INDEX)
            buf_add(&b, pc.text, pc.len);
        else if (rc == 0 && pc.index != CAPTURED && pc.kind == KIND_NONE)
            rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                         "%s: a placeholder in SQL needs a kind, e.g. {%ld:str} or {%ld:ident}",
                         pc.name, pc.index, pc.index);
        else if (rc == 0 && (rc = lookup(&pc, args, captured, &v, e)) == 0)
            rc = render_value(m, &b, &pc, v, e);
        if (rc == 0)
            rc = buf_check_bound(&b, e);
    }
    if (rc < 0 || !m) {
        free(b.p);
        b.p = NULL;
    }
    *out = b.p;
    return rc;
}

int mysql_conn_render(MYSQL *m, const char *sql, const json_t *args, char **out, struct err *e)
{
    return mysql_conn_render_captured(m, sql, args, NULL, out, e);
}

/* ---- the text a person reads ---- */

static void add_raw(struct buf *b, const json_t *v)
{
    if (json_is_string(v)) {
        buf_adds(b, json_string_value(v));
    } else if (json_is_integer(v)) {
        char num[32];
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        buf_adds(b, num);
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
        {
            if (i > 0)
                buf_adds(b, ", ");
            add_raw(b, item);
        }
    } else if (json_is_null(v)) {
        buf_adds(b, "NULL");
    }
}

int mysql_conn_render_text(const char *tmpl, const json_t *args, const json_t *captured,
                           const bool *secret, char **out, struct err *e)
{
    struct buf b = {0};
    int rc = 0;
    buf_reserve(&b, strlen(tmpl));
    for (const char *p = tmpl; rc == 0 && *p;) {
        struct piece pc;
        const json_t *v;
        rc = next_piece(&p, &pc, e);
        if (rc == 0 && pc.index == NO_INDEX)
            buf_add(&b, pc.text, pc.len);
        else if (rc == 0 && (rc = lookup(&pc, args, captured, &v, e)) == 0 && pc.index >= 0 &&
                 secret && secret[pc.index])
            buf_adds(&b, "***");
        else if (rc == 0)
            add_raw(&b, v);
        if (rc == 0)
            rc = buf_check_bound(&b, e);
    }
    if (rc < 0) {
        free(b.p);
        b.p = NULL;
    }
    *out = b.p;
    return rc;
}

/* ---- which args are passwords ---- */

/* Whether s[0..n), trailing blanks ignored, ends with the word w (any case). */
static int ends_with_word(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n < wl || strncasecmp(s + n - wl, w, wl) != 0)
        return 0;
    return n == wl || !(isalnum((unsigned char)s[n - wl - 1]) || s[n - wl - 1] == '_');
}

static int before_password(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n > 0 && s[n - 1] == '(')
        return ends_with_word(s, n - 1, "PASSWORD");
    return ends_with_word(s, n, "BY") || ends_with_word(s, n, "USING");
}

void mysql_conn_secret_args(const char *sql, bool *secret, size_t n)
{
    struct err ignored;
    struct piece prev = {.index = NO_INDEX};
    for (const char *p = sql; *p;) {
        struct piece pc;
        if (next_piece(&p, &pc, &ignored) < 0)
            return;
        if (pc.index >= 0 && (size_t)pc.index < n && (pc.kind == KIND_STR || pc.kind == KIND_VAL) &&
            prev.index == NO_INDEX && before_password(prev.text ? prev.text : "", prev.len))
            secret[pc.index] = true;
        prev = pc;
    }
}

/* ---- the tenant guard over a template ---- */

/* All pieces of template sql (a heap array the caller frees), *n of them. */
static int cut_pieces(const char *sql, struct piece **out, size_t *n, struct err *e)
{
    size_t cap = 8;
    *n = 0;
    *out = xmalloc(cap * sizeof **out);
    for (const char *p = sql; *p;) {
        if (*n == cap)
            *out = xrealloc(*out, (cap *= 2) * sizeof **out);
        int rc = next_piece(&p, &(*out)[*n], e);
        if (rc < 0)
            return rc;
        (*n)++;
    }
    return 0;
}

static bool is_literal(const struct piece *pc) { return pc->index == NO_INDEX; }

static bool names_a_value(const struct piece *pc)
{
    return pc->index >= 0 && (pc->kind == KIND_STR || pc->kind == KIND_VAL ||
                              pc->kind == KIND_IDENT || pc->kind == KIND_NONE);
}

/* Literal text after skipping blanks. */
static const char *skip_blanks(const char *s, const char *end)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    return s;
}

/* The host of an account written USER@HOST where HOST is literal text ('%', `h`, localhost);
 * copies it into host[cap]. */
static void literal_host(const char *s, const char *end, char *host, size_t cap)
{
    char quote = s < end && (*s == '\'' || *s == '"' || *s == '`') ? *s++ : 0;
    size_t n = 0;
    while (s + n < end && (quote ? s[n] != quote
                                 : (isalnum((unsigned char)s[n]) || strchr("_.%:-", s[n]) != NULL)))
        n++;
    snprintf(host, cap, "%.*s", (int)n, s);
}

/* If pieces[i] is the user of an account USER@HOST, fills user and host and returns true. */
static bool account_at(const struct piece *pcs, size_t n, size_t i, const json_t *args,
                       const char **user, char *host, size_t cap)
{
    if (i + 1 >= n || !names_a_value(&pcs[i]) || !is_literal(&pcs[i + 1]))
        return false;
    const json_t *u = json_array_get(args, (size_t)pcs[i].index);
    const char *end = pcs[i + 1].text + pcs[i + 1].len;
    const char *at = skip_blanks(pcs[i + 1].text, end);
    if (!json_is_string(u) || at == end || *at != '@')
        return false;
    *user = json_string_value(u);
    const char *rest = skip_blanks(at + 1, end);
    if (rest == end && i + 2 < n && names_a_value(&pcs[i + 2])) {
        const json_t *h = json_array_get(args, (size_t)pcs[i + 2].index);
        snprintf(host, cap, "%s", json_is_string(h) ? json_string_value(h) : "");
    } else {
        literal_host(rest, end, host, cap);
    }
    return true;
}

/* An identifier placeholder that names a database: a system schema in any scope, or the
 * qualifier before '.' (db.* and db.table), read as GRANT reads it. */
static int guard_ident(const struct piece *pcs, size_t n, size_t i, const json_t *args,
                       struct err *e)
{
    const json_t *v = json_array_get(args, (size_t)pcs[i].index);
    if (!json_is_string(v) || (pcs[i].kind != KIND_IDENT && pcs[i].kind != KIND_SCHEMA))
        return 0;
    const char *s = json_string_value(v);
    bool qualifier =
        i + 1 < n && is_literal(&pcs[i + 1]) && pcs[i + 1].len > 0 && pcs[i + 1].text[0] == '.';
    struct err ge;
    if ((qualifier || pcs[i].kind == KIND_SCHEMA) && cdb_guard_schema(s, &ge) < 0)
        return err_set(e, ge.code, "%s: %s", pcs[i].name, ge.msg);
    if (cdb_guard_is_system_schema(s))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: \"%.64s\" is a system schema; tenants cannot name it", pcs[i].name, s);
    return 0;
}

int mysql_conn_guard(const char *sql, const json_t *args, const struct cdb_guard *g,
                     json_t *accounts, struct err *e)
{
    struct piece *pcs;
    size_t n;
    int rc = cut_pieces(sql, &pcs, &n, e);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *user;
        char host[256];
        if (account_at(pcs, n, i, args, &user, host, sizeof host)) {
            rc = cdb_guard_account(g, user, host, e);
            if (rc == 0 && accounts)
                json_array_append_new(accounts, json_pack("[s,s]", user, host));
        }
        if (rc == 0 && pcs[i].index >= 0)
            rc = guard_ident(pcs, n, i, args, e);
    }
    free(pcs);
    return rc;
}

void mysql_conn_guard_rules(const json_t *body, const char *dsn, struct mysql_dsn *d,
                            struct cdb_guard *g)
{
    struct err ignored;
    memset(d, 0, sizeof *d);
    g->dsn_user = dsn && mysql_dsn_parse(dsn, d, &ignored) == 0 ? d->user : NULL;
    g->reserved = json_object_get(body, "reserved_accounts");
}

int mysql_conn_guard_action(const json_t *action, const char *dsn, json_t *accounts, struct err *e)
{
    const json_t *body = json_object_get(action, "mysql");
    if (!json_is_object(body))
        return 0;
    struct mysql_dsn d;
    struct cdb_guard g;
    mysql_conn_guard_rules(body, dsn, &d, &g);
    const json_t *args = json_object_get(body, "args");
    json_t *empty = json_array();
    const char *keys[] = {"capture", "sql", "done_if"};
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < sizeof keys / sizeof keys[0]; k++) {
        const json_t *t = json_object_get(body, keys[k]);
        if (json_is_string(t))
            rc = mysql_conn_guard(json_string_value(t), args ? args : empty, &g, accounts, e);
    }
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(body, "statements"), i, t)
    {
        if (rc == 0 && json_is_string(t))
            rc = mysql_conn_guard(json_string_value(t), args ? args : empty, &g, accounts, e);
    }
    json_decref(empty);
    mysql_dsn_free(&d);
    return rc;
}

/* 'user'@'host' as information_schema spells a grantee, as an escaped string literal: the host
 * in lower case as MySQL stores it (BINARY comparisons then keep the user's case exact). */
static char *grantee_literal(MYSQL *m, const char *user, const char *host)
{
    struct buf g = {0}, lit = {0};
    buf_adds(&g, "'");
    buf_adds(&g, user);
    buf_adds(&g, "'@'");
    for (const char *c = host; *c; c++) {
        char lower = (char)tolower((unsigned char)*c);
        buf_add(&g, &lower, 1);
    }
    buf_adds(&g, "'");
    struct err ignored;
    int rc = add_string_literal(m, &lit, g.p, g.len, &ignored);
    free(g.p);
    if (rc < 0) {
        free(lit.p);
        return NULL;
    }
    return lit.p;
}

char *mysql_conn_privileges_query(MYSQL *m, const char *user, const char *host)
{
    char *l = grantee_literal(m, user, host);
    if (!l)
        return NULL;
    char *sql = xasprintf(
        "SELECT 0, NULL, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES"
        " WHERE GRANTEE = BINARY %s"
        " UNION ALL SELECT 1, TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE"
        " FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = BINARY %s"
        " UNION ALL SELECT 2, TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE"
        " FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = BINARY %s"
        " UNION ALL SELECT 3, TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE"
        " FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE = BINARY %s",
        l, l, l, l);
    free(l);
    return sql;
}

char *mysql_conn_roles_query(MYSQL *m, const char *user, const char *host)
{
    struct buf u = {0}, h = {0};
    struct err ignored;
    char *sql = NULL;
    if (add_string_literal(m, &u, user, strlen(user), &ignored) == 0 &&
        add_string_literal(m, &h, host, strlen(host), &ignored) == 0)
        sql = xasprintf("SELECT Role FROM mysql.roles_mapping WHERE User = BINARY %s AND"
                        " Host = %s",
                        u.p, h.p);
    free(u.p);
    free(h.p);
    return sql;
}
