/* Fuzz target: admin API requests (JSON bodies of task, instance and policy creation, query
 * strings, paths) through admin_handle, on a throw-away SQLite store. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "admin/admin.h"
#include "fuzz_util.h"

#define TOKEN       "fuzz-admin-token"
#define ROOT_UIN    "100000000001"
#define SUB_UIN     "100000000002"
#define RENEW_EVERY 500 /* runs between fresh stores, so the database stays small */

static char dir[256];
static struct store *store;
static struct admin *admin;
static unsigned runs;

static void drop_store(void)
{
    admin_free(admin);
    store_close(store);
    admin = NULL;
    store = NULL;
    static const char *const files[] = {"asyncd.db", "asyncd.db-wal", "asyncd.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[300];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
}

static void cleanup(void)
{
    drop_store();
    rmdir(dir);
}

static void account(const char *uin, bool root)
{
    struct account a = {.is_root = root};
    snprintf(a.uin, sizeof a.uin, "%s", uin);
    snprintf(a.owner_uin, sizeof a.owner_uin, "%s", ROOT_UIN);
    snprintf(a.app_id, sizeof a.app_id, "1250000000");
    snprintf(a.secret_id, sizeof a.secret_id, "AKIDfuzz%s", uin);
    snprintf(a.secret_key, sizeof a.secret_key, "fuzzkey%s", uin);
    struct err e;
    if (store_account_create(store, &a, &e) != 0)
        abort();
}

/* A fresh store with what the seeds refer to: a root account, a sub-account, an instance. */
static void new_store(void)
{
    struct err e;
    if (store_open(NULL, dir, &store, &e) != 0) {
        fprintf(stderr, "fuzz_admin: %s\n", e.msg);
        abort();
    }
    account(ROOT_UIN, true);
    account(SUB_UIN, false);
    struct instance in = {.product = "cdb",
                          .instance_id = "cdb-fuzz1",
                          .region = "ap-guangzhou",
                          .uin = ROOT_UIN,
                          .status = "running",
                          .dsn = "mysql://root:pw@127.0.0.1:3306"};
    if (store_instance_create(store, &in, &e) != 0)
        abort();
    struct admin_config cfg = {.store = store, .token = TOKEN, .node = "fuzz"};
    admin = admin_new(&cfg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* tmpfs when there is one: every write is a synchronous SQLite commit */
    const char *t = getenv("TMPDIR");
    if (!t || !*t)
        t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/fuzz_admin.XXXXXX", t);
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    return 0;
}

/* conn: the Idempotency-Key header's value, or NULL. */
static const char *header(void *conn, const char *name)
{
    if (strcasecmp(name, "Authorization") == 0)
        return "Bearer " TOKEN;
    return strcasecmp(name, "Idempotency-Key") == 0 ? conn : NULL;
}

#define IDEM_LINE "Idempotency-Key: "

/* Input: "METHOD PATH[?QUERY]\n", optionally "Idempotency-Key: VALUE\n", then the body (to the
 * end, any bytes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return -1;
    char *buf = fuzz_strndup(data, size);
    char *nl = strchr(buf, '\n');
    char *body = nl ? nl + 1 : buf + strlen(buf);
    if (nl)
        *nl = '\0';
    char *sp = strchr(buf, ' ');
    char *path = sp ? sp + 1 : "/";
    if (sp)
        *sp = '\0';
    char *q = strchr(path, '?');
    if (q)
        *q++ = '\0';
    char *idem = NULL;
    if (strncmp(body, IDEM_LINE, strlen(IDEM_LINE)) == 0 && strchr(body, '\n')) {
        idem = body + strlen(IDEM_LINE);
        body = strchr(body, '\n');
        *body++ = '\0';
    }
    /* A long-poll would sleep up to 120 s: in a task's query or a worker's claim body. */
    if ((q && strstr(q, "wait")) || (strstr(path, "/workers/") && strstr(body, "wait"))) {
        free(buf);
        return -1;
    }
    if (!store || runs++ % RENEW_EVERY == 0) {
        drop_store();
        new_store();
    }
    struct http_request req = {.method = buf,
                               .path = path,
                               .query = q ? q : "",
                               .body = body,
                               .body_len = size - (size_t)(body - buf),
                               .header_fn = header,
                               .conn = idem};
    struct http_response resp = {0};
    admin_handle(admin, &req, &resp);
    if (!resp.body || resp.status < 200 || resp.status > 599)
        abort(); /* every request gets an answer */
    free(resp.body);
    free(buf);
    return 0;
}
