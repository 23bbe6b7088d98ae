/* MySQL connections for the mysql executor: DSN parsing, connecting, and typed placeholders. */
#include "exec/mysql_conn.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/xalloc.h"
#include "exec/exec_int.h"

enum {
    DEFAULT_PORT = 3306,
    DEFAULT_CONNECT_TIMEOUT_S = 5,
    MAX_IDENT_CHARS = 64,  /* MySQL's limit for database, table and column names */
    MAX_NUMBER_LEN = 64,
    MAX_PLACEHOLDER = 32,  /* longest text between braces we read as a placeholder */
};

#define DSN_SHAPE "expected mysql://USER:PASSWORD@HOST:PORT[/DB]"

/* ---- DSN ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* s[0..n) percent-decoded into a fresh string; NULL for a bad escape or a NUL byte. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
        int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *o = '\0';
    return out;
}

static int dsn_error(struct mysql_dsn *d, struct err *e, const char *why)
{
    mysql_dsn_free(d);
    return err_set(e, ERR_INVALID_PARAMETER_VALUE, "dsn: " DSN_SHAPE " (%s)", why);
}

static int host_char_ok(char c, int v6)
{
    if (v6)
        return isxdigit((unsigned char)c) || c == ':' || c == '.';
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* HOST[:PORT][/DB] at p into d. */
static int parse_host(const char *p, struct mysql_dsn *d, struct err *e)
{
    const char *h = p, *end;
    int v6 = *p == '[';
    if (v6) {
        h = p + 1;
        end = strchr(h, ']');
        if (!end)
            return dsn_error(d, e, "'[' without a closing ']' around the IPv6 address");
        p = end + 1;
    } else {
        end = h + strcspn(h, ":/");
        p = end;
    }
    if (end == h)
        return dsn_error(d, e, "empty host");
    for (const char *c = h; c < end; c++)
        if (!host_char_ok(*c, v6))
            return dsn_error(d, e, v6 ? "bad character in the IPv6 address"
                                      : "bad character in the host name");
    d->host = xstrndup(h, (size_t)(end - h));
    d->port = DEFAULT_PORT;
    if (*p == ':') {
        unsigned long port = 0;
        size_t digits = strspn(++p, "0123456789");
        if (digits == 0 || digits > 5 || (p[digits] != '\0' && p[digits] != '/') ||
            (port = strtoul(p, NULL, 10)) == 0 || port > 65535)
            return dsn_error(d, e, "the port must be a number from 1 to 65535");
        d->port = (unsigned)port;
        p += digits;
    }
    if (*p == '/' && p[1] != '\0') {
        d->db = pct_decode(p + 1, strlen(p + 1));
        if (!d->db)
            return dsn_error(d, e, "bad %-escape in the database name");
    } else if (*p != '\0' && *p != '/') {
        return dsn_error(d, e, "unexpected text after the host");
    }
    return 0;
}

int mysql_dsn_parse(const char *dsn, struct mysql_dsn *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (!dsn || strncasecmp(dsn, "mysql://", 8) != 0)
        return dsn_error(out, e, "it does not start with mysql://");
    const char *p = dsn + 8;
    const char *at = strrchr(p, '@'); /* the last one: a password may hold an unescaped '@' */
    if (!at)
        return dsn_error(out, e, "no USER@ before the host");
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *user_end = colon ? colon : at;
    if (user_end == p)
        return dsn_error(out, e, "empty user");
    out->user = pct_decode(p, (size_t)(user_end - p));
    if (colon)
        out->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
    if (!out->user || (colon && !out->password))
        return dsn_error(out, e, "bad %-escape in the user or password");
    return parse_host(at + 1, out, e);
}

void mysql_dsn_free(struct mysql_dsn *d)
{
    if (d->password)
        explicit_bzero(d->password, strlen(d->password));
    free(d->user);
    free(d->password);
    free(d->host);
    free(d->db);
    memset(d, 0, sizeof *d);
}

/* ---- connecting ---- */

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

/* mysql_init() would do this on first use, but not safely from two threads at once. */
static void library_init(void)
{
    mysql_library_init(0, NULL, NULL);
}

int mysql_conn_open(const char *dsn, unsigned timeout_s, MYSQL **out, struct err *e)
{
    struct mysql_dsn d;
    *out = NULL;
    int rc = mysql_dsn_parse(dsn, &d, e);
    if (rc < 0)
        return rc;
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
    mysql_options(m, MYSQL_OPT_NONBLOCK, NULL); /* the blocking calls keep working too */
    if (!mysql_real_connect(m, d.host, d.user, d.password ? d.password : "", d.db, d.port, NULL,
                            0)) {
        int v6 = strchr(d.host, ':') != NULL;
        rc = err_set(e, ERR_SERVICE_UNAVAILABLE, "cannot connect to MySQL at %s%s%s:%u: %s",
                     v6 ? "[" : "", d.host, v6 ? "]" : "", d.port, mysql_error(m));
        mysql_close(m);
    } else {
        *out = m;
    }
    mysql_dsn_free(&d);
    return rc;
}

/* ---- templates: cutting them into literal text and placeholders ---- */

enum kind { KIND_NONE, KIND_STR, KIND_IDENT, KIND_INT, KIND_VAL, KIND_LIST_PRIV };

static const char *const kind_names[] = {"", "str", "ident", "int", "val", "list_priv"};

struct piece {
    const char *text; /* literal text (no placeholder) when index == NO_INDEX */
    size_t len;
    long index;       /* args index, CAPTURED, or NO_INDEX for literal text */
    enum kind kind;
    char name[MAX_PLACEHOLDER + 3]; /* the placeholder as written, "{1:ident}" */
};

enum { NO_INDEX = -2, CAPTURED = -1 };

#define PLACEHOLDER_FORMS \
    "{N:str}, {N:ident}, {N:int}, {N:val}, {N:list_priv}, {captured} or {captured:val}"

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
        return pc->kind == KIND_LIST_PRIV
                   ? err_set(e, ERR_INVALID_PARAMETER_VALUE,
                             "%s: a captured value is not a privilege list", pc->name)
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
};

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
    b->p[b->len] = '\0';
}

static void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* ---- values ---- */

static const char *const privileges[] = {
    "ALL PRIVILEGES", "ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE",
    "CREATE TABLESPACE", "CREATE TEMPORARY TABLES", "CREATE USER", "CREATE VIEW", "DELETE",
    "DROP", "EVENT", "EXECUTE", "FILE", "GRANT OPTION", "INDEX", "INSERT", "LOCK TABLES",
    "PROCESS", "REFERENCES", "RELOAD", "REPLICATION CLIENT", "REPLICATION SLAVE", "SELECT",
    "SHOW DATABASES", "SHOW VIEW", "SHUTDOWN", "SUPER", "TRIGGER", "UPDATE", "USAGE",
};

/* The allow-list's spelling of privilege name s (any case, runs of blanks as one space). */
static const char *privilege_name(const char *s)
{
    char norm[32];
    size_t n = 0;
    for (; *s; s++) {
        int blank = *s == ' ' || *s == '\t';
        if (blank && (n == 0 || norm[n - 1] == ' '))
            continue;
        if (n + 1 >= sizeof norm)
            return NULL;
        norm[n++] = blank ? ' ' : (char)toupper((unsigned char)*s);
    }
    if (n > 0 && norm[n - 1] == ' ')
        n--;
    norm[n] = '\0';
    for (size_t i = 0; i < sizeof privileges / sizeof privileges[0]; i++)
        if (strcmp(norm, privileges[i]) == 0)
            return privileges[i];
    return NULL;
}

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
                   exec_json_type_name(v));
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
    if (!m)
        return 0;
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

static int add_privileges(struct buf *b, const struct piece *pc, const json_t *v, struct err *e)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return type_error(pc, "a non-empty array of privilege names", v, e);
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item) {
        const char *name = json_is_string(item) && !string_has_nul(item)
                               ? privilege_name(json_string_value(item))
                               : NULL;
        if (!name)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "%s: item %zu is not a privilege name such as \"SELECT\" or "
                           "\"CREATE VIEW\"",
                           pc->name, i);
        if (i > 0)
            buf_adds(b, ", ");
        buf_adds(b, name);
    }
    return 0;
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
    case KIND_IDENT: return add_ident(b, pc, v, e);
    case KIND_LIST_PRIV: return add_privileges(b, pc, v, e);
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
        json_array_foreach(v, i, item) {
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
