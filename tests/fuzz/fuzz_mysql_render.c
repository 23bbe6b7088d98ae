/* Fuzz target: the mysql executor's typed placeholders (mysql_conn_render_captured with and
 * without a connection handle, mysql_conn_render_text, mysql_conn_secret_args). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exec/mysql_conn.h"
#include "fuzz_util.h"

#define MAX_ARGS 64

/* An unconnected handle: it escapes with the client's default character set, as a connection
 * does before the server says otherwise. Kept for the whole run. */
static MYSQL *handle;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mysql_library_init(0, NULL, NULL);
    handle = mysql_init(NULL);
    if (!handle)
        abort();
    return 0;
}

/* Input: "SQL template\n@@\nargs (a JSON array)\n@@\ncaptured (a JSON object, optional)". */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return -1;
    char *sql = fuzz_strndup(data, size);
    char *args_text = fuzz_split(sql);
    char *captured_text = fuzz_split(args_text);
    json_t *args = json_loads(args_text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    json_t *captured = *captured_text ? json_loads(captured_text, JSON_DECODE_ANY, NULL) : NULL;
    if (!args)
        args = json_array();
    struct err e;
    char *out = NULL;
    int rc = mysql_conn_render_captured(NULL, sql, args, captured, &out, &e);
    if (out)
        abort(); /* a NULL handle only checks */
    char *sql_out = NULL;
    int rc2 = mysql_conn_render_captured(handle, sql, args, captured, &sql_out, &e);
    if (rc != rc2 || (rc2 == 0) != (sql_out != NULL))
        abort(); /* checking alone must agree with rendering */
    free(sql_out);
    if (mysql_conn_render(handle, sql, args, &sql_out, &e) == 0 && !sql_out)
        abort();
    free(sql_out);
    bool secret[MAX_ARGS] = {false};
    size_t n = json_array_size(args);
    mysql_conn_secret_args(sql, secret, n < MAX_ARGS ? n : MAX_ARGS);
    char *text = NULL;
    if (mysql_conn_render_text(sql, args, captured, n <= MAX_ARGS ? secret : NULL, &text, &e) ==
            0 &&
        !text)
        abort();
    free(text);
    json_decref(args);
    json_decref(captured);
    free(sql);
    return 0;
}
