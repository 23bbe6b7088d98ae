/* MySQL DSNs: mysql://USER:PASSWORD@HOST:PORT[/DB][?OPTIONS], parsed, and their TLS options
 * put on a connection (the names are the mysql client's: ssl-mode, ssl-ca, ...). */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hex.h"
#include "common/xalloc.h"
#include "exec/mysql_conn.h"

enum {
    DEFAULT_PORT = 3306,
    MAX_OPTION_SHOWN = 32, /* how much of an unknown option's name a message repeats */
};

#define DSN_SHAPE "expected mysql://USER:PASSWORD@HOST:PORT[/DB][?ssl-mode=...&ssl-ca=...]"

/* s[0..n) percent-decoded into a fresh string; NULL for a bad escape or a NUL byte. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hex_digit_value(s[i + 1]) : -1;
        int lo = hi >= 0 ? hex_digit_value(s[i + 2]) : -1;
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
            return dsn_error(
                d, e, v6 ? "bad character in the IPv6 address" : "bad character in the host name");
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

/* ---- options: ?ssl-mode=VERIFY_CA&ssl-ca=/etc/ca.pem ---- */

static const char *const ssl_mode_names[] = {
    [MYSQL_DSN_SSL_DISABLED] = "DISABLED",
    [MYSQL_DSN_SSL_PREFERRED] = "PREFERRED",
    [MYSQL_DSN_SSL_REQUIRED] = "REQUIRED",
    [MYSQL_DSN_SSL_VERIFY_CA] = "VERIFY_CA",
    [MYSQL_DSN_SSL_VERIFY_IDENTITY] = "VERIFY_IDENTITY",
};

const char *mysql_dsn_ssl_mode_name(enum mysql_dsn_ssl_mode m)
{
    return m > MYSQL_DSN_SSL_UNSET && m <= MYSQL_DSN_SSL_VERIFY_IDENTITY ? ssl_mode_names[m]
                                                                         : "unset";
}

#define OPTION_NAMES "ssl-mode, ssl-ca, ssl-capath, ssl-cert, ssl-key"

/* The option names as the mysql client spells them; '_' is read as '-' (ssl_ca = ssl-ca), as the
 * client and my.cnf allow. Returns the slot for a file option, NULL otherwise. */
static char **file_option(struct mysql_dsn *d, const char *name)
{
    static const char *const names[] = {"ssl-ca", "ssl-capath", "ssl-cert", "ssl-key"};
    char **slots[] = {&d->ssl_ca, &d->ssl_capath, &d->ssl_cert, &d->ssl_key};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i]) == 0)
            return slots[i];
    return NULL;
}

static int option_error(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ERR_INVALID_PARAMETER_VALUE with "dsn: " and the formatted reason. */
static int option_error(struct err *e, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return err_set(e, ERR_INVALID_PARAMETER_VALUE, "dsn: %s", why);
}

/* One NAME=VALUE (both percent-decoded, '_' in NAME made '-') into d. */
static int set_option(struct mysql_dsn *d, char *name, char *value, struct err *e)
{
    for (char *c = name; *c; c++)
        if (*c == '_')
            *c = '-';
    if (strcasecmp(name, "ssl-mode") == 0) {
        if (d->ssl_mode != MYSQL_DSN_SSL_UNSET)
            return option_error(e, "%s given twice", name);
        for (int m = MYSQL_DSN_SSL_DISABLED; m <= MYSQL_DSN_SSL_VERIFY_IDENTITY; m++)
            if (strcasecmp(value, ssl_mode_names[m]) == 0)
                d->ssl_mode = (enum mysql_dsn_ssl_mode)m;
        return d->ssl_mode != MYSQL_DSN_SSL_UNSET
                   ? 0
                   : option_error(e,
                                  "ssl-mode: expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or "
                                  "VERIFY_IDENTITY, got \"%.32s\"",
                                  value);
    }
    char **slot = file_option(d, name);
    if (!slot) {
        for (char *c = name; *c; c++) /* the message repeats it: printable ASCII only */
            if (!isprint((unsigned char)*c))
                *c = '?';
        return option_error(e, "unknown option \"%.32s\" (expected %s)", name, OPTION_NAMES);
    }
    if (*slot)
        return option_error(e, "%s given twice", name);
    if (value[0] != '/') /* relative to asyncd's working directory is never what was meant */
        return option_error(e, "%s: expected an absolute path, got \"%.200s\"", name, value);
    *slot = xstrdup(value);
    return 0;
}

/* The '&'-separated NAME=VALUE list after '?' into d. */
static int parse_options(const char *q, struct mysql_dsn *d, struct err *e)
{
    if (*q == '\0')
        return option_error(e, "nothing after '?' (expected %s)", OPTION_NAMES);
    while (*q) {
        size_t n = strcspn(q, "&"), k = strcspn(q, "=");
        if (k >= n || k == 0)
            return option_error(e, "option \"%.*s\": expected NAME=VALUE, NAME one of %s",
                                (int)(n < MAX_OPTION_SHOWN ? n : MAX_OPTION_SHOWN), q,
                                OPTION_NAMES);
        char *name = pct_decode(q, k), *value = pct_decode(q + k + 1, n - k - 1);
        int rc = !name || !value || !*value
                     ? option_error(e, "option \"%.32s\": %s", name ? name : "?",
                                    value ? "empty value" : "bad %-escape")
                     : set_option(d, name, value, e);
        free(name);
        free(value);
        if (rc < 0)
            return rc;
        q += n + (q[n] == '&');
    }
    return 0;
}

/* What the options mean together. As the mysql client does, a CA without ssl-mode means
 * VERIFY_CA; any other ssl-* option without it means REQUIRED (a client certificate is given to
 * be presented, never to be skipped silently). */
static int check_tls(struct mysql_dsn *d, struct err *e)
{
    bool ca = d->ssl_ca || d->ssl_capath, files = ca || d->ssl_cert || d->ssl_key;
    if (d->ssl_mode == MYSQL_DSN_SSL_UNSET && files)
        d->ssl_mode = ca ? MYSQL_DSN_SSL_VERIFY_CA : MYSQL_DSN_SSL_REQUIRED;
    if (d->ssl_mode == MYSQL_DSN_SSL_DISABLED && files)
        return option_error(e, "ssl-mode=DISABLED contradicts the ssl-ca/ssl-capath/ssl-cert/"
                               "ssl-key given with it");
    if (d->ssl_mode >= MYSQL_DSN_SSL_VERIFY_CA && !ca)
        return option_error(e,
                            "ssl-mode=%s needs ssl-ca (a PEM file) or ssl-capath (a directory) "
                            "with the CA that signed the server's certificate",
                            ssl_mode_names[d->ssl_mode]);
    if (!d->ssl_cert != !d->ssl_key)
        return option_error(e, "%s needs %s too (a client certificate and its key)",
                            d->ssl_cert ? "ssl-cert" : "ssl-key",
                            d->ssl_cert ? "ssl-key" : "ssl-cert");
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
    const char *q = strchr(at + 1, '?');
    char *host = xstrndup(at + 1, q ? (size_t)(q - at - 1) : strlen(at + 1));
    int rc = parse_host(host, out, e);
    free(host);
    if (rc == 0 && q && (rc = parse_options(q + 1, out, e)) < 0)
        mysql_dsn_free(out);
    if (rc == 0 && (rc = check_tls(out, e)) < 0)
        mysql_dsn_free(out);
    return rc;
}

void mysql_dsn_free(struct mysql_dsn *d)
{
    if (d->password)
        explicit_bzero(d->password, strlen(d->password));
    free(d->user);
    free(d->password);
    free(d->host);
    free(d->db);
    free(d->ssl_ca);
    free(d->ssl_capath);
    free(d->ssl_cert);
    free(d->ssl_key);
    memset(d, 0, sizeof *d);
}

/* ---- TLS on a connection ---- */

/* libmariadb 3.3 (measured against a TLS and a plain MariaDB 10.11): a CA makes it verify the
 * server's chain; MYSQL_OPT_SSL_ENFORCE asks for TLS but silently stays plain when the server
 * offers none; MYSQL_OPT_SSL_VERIFY_SERVER_CERT adds the host name check and refuses a plain
 * server. So every mode asks with ENFORCE, only VERIFY_IDENTITY checks the name, and
 * mysql_dsn_tls_check catches a plain session after the handshake. */
void mysql_dsn_tls_apply(MYSQL *m, const struct mysql_dsn *d)
{
    if (d->ssl_mode <= MYSQL_DSN_SSL_DISABLED)
        return; /* no TLS option at all: libmariadb 3.3 then never starts TLS */
    my_bool on = 1, verify_name = d->ssl_mode == MYSQL_DSN_SSL_VERIFY_IDENTITY;
    if (d->ssl_ca)
        mysql_optionsv(m, MYSQL_OPT_SSL_CA, d->ssl_ca);
    if (d->ssl_capath)
        mysql_optionsv(m, MYSQL_OPT_SSL_CAPATH, d->ssl_capath);
    if (d->ssl_cert)
        mysql_optionsv(m, MYSQL_OPT_SSL_CERT, d->ssl_cert);
    if (d->ssl_key)
        mysql_optionsv(m, MYSQL_OPT_SSL_KEY, d->ssl_key);
    mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &on);
    mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify_name);
}

int mysql_dsn_tls_check(MYSQL *m, const struct mysql_dsn *d, char *why, size_t cap)
{
    if (d->ssl_mode < MYSQL_DSN_SSL_REQUIRED || mysql_get_ssl_cipher(m))
        return 0;
    snprintf(why, cap,
             "ssl-mode=%s, but the server does not offer TLS (start it with --ssl-cert and "
             "--ssl-key)",
             ssl_mode_names[d->ssl_mode]);
    return -1;
}
