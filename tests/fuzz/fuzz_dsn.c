/* Fuzz target: the mysql:// instance DSN parser (mysql_dsn_parse) and the HOST:PORT splitter of
 * the listen flags (http_split_hostport). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exec/mysql_conn.h"
#include "fuzz_util.h"
#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return -1;
    char *s = fuzz_strndup(data, size);
    struct mysql_dsn d;
    struct err e;
    if (mysql_dsn_parse(s, &d, &e) == 0) {
        if (!d.user || !d.host || !*d.host || d.port == 0 || d.port > 65535)
            abort(); /* the header's promise */
    } else if (d.user || d.password || d.host || d.db) {
        abort(); /* "*out is left zeroed on failure" */
    }
    mysql_dsn_free(&d);
    /* the same bytes as a DSN without the scheme the fuzzer would have to find first */
    char *with = xasprintf("mysql://%s", s);
    if (mysql_dsn_parse(with, &d, &e) == 0 && (!d.host || d.port == 0))
        abort();
    mysql_dsn_free(&d);
    free(with);
    char host[64];
    uint16_t port;
    (void)http_split_hostport(s, host, sizeof host, &port, &e);
    free(s);
    return 0;
}
