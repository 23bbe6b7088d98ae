/* ctl_print: asyncctl's human output: values as one-line cells, aligned objects and tables. */
#include "ctl_print.h"

#include "ctl_client.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value as one line of text (caller frees): strings raw, null "-", the rest compact JSON. */
static char *cell(json_t *v)
{
    char *s;
    if (!v || json_is_null(v))
        s = xstrdup("-");
    else if (json_is_string(v))
        s = xstrdup(json_string_value(v));
    else if (json_is_array(v) && json_array_size(v) > 0 && json_is_string(json_array_get(v, 0))) {
        struct buf b = {0};
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            char *t = cell(e);
            ctl_buf_addf(&b, "%s%s", i ? "," : "", t);
            free(t);
        }
        s = b.p;
    } else {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        s = xstrdup(t ? t : "?");
        free(t);
    }
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    return s;
}

/* Display width: UTF-8 code points. */
static int width(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void print_padded(const char *s, int w, bool last)
{
    fputs(s, stdout);
    if (!last)
        printf("%*s", w - width(s) + 2, "");
}

bool ctl_in_list(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0)
            return true;
    return false;
}

/* "key: value" lines with the values aligned, skipping keys in skip. */
static void print_object(json_t *obj, const char *const *skip)
{
    const char *key;
    json_t *v;
    int w = 0;
    json_object_foreach(obj, key, v)
    {
        if (!ctl_in_list(key, skip) && width(key) > w)
            w = width(key);
    }
    json_object_foreach(obj, key, v)
    {
        if (ctl_in_list(key, skip))
            continue;
        char *s = cell(v);
        printf("%s:%*s %s\n", key, w - width(key), "", s);
        free(s);
    }
}

/* Aligned table of an array of objects; cols names the columns (present in any row), in order. */
static void print_table(json_t *rows, const char *const *cols)
{
    const char *use[32];
    int ncol = 0;
    for (const char *const *k = cols; *k && ncol < 32; k++) {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            if (json_object_get(row, *k)) {
                use[ncol++] = *k;
                break;
            }
        }
    }
    size_t nrow = json_array_size(rows);
    char **cells = xrealloc(NULL, (nrow + 1) * (size_t)(ncol ? ncol : 1) * sizeof *cells);
    int wid[32];
    for (int j = 0; j < ncol; j++) {
        cells[j] = xstrdup(use[j]);
        wid[j] = width(use[j]);
    }
    for (size_t i = 0; i < nrow; i++)
        for (int j = 0; j < ncol; j++) {
            char *s = cell(json_object_get(json_array_get(rows, i), use[j]));
            cells[(i + 1) * (size_t)ncol + (size_t)j] = s;
            if (width(s) > wid[j])
                wid[j] = width(s);
        }
    for (size_t i = 0; i <= nrow; i++) {
        for (int j = 0; j < ncol; j++) {
            print_padded(cells[i * (size_t)ncol + (size_t)j], wid[j], j == ncol - 1);
            free(cells[i * (size_t)ncol + (size_t)j]);
        }
        putchar('\n');
    }
    free(cells);
}

void ctl_print_task(json_t *t)
{
    static const char *const skip[] = {"steps", "events", NULL};
    static const char *const step_cols[] = {"index",     "name",    "state", "retries",
                                            "timeout_s", "message", NULL};
    static const char *const event_cols[] = {"seq", "at", "from", "to", "node", "message", NULL};
    print_object(t, skip);
    json_t *steps = json_object_get(t, "steps"), *events = json_object_get(t, "events");
    if (json_is_array(steps)) {
        printf("\nsteps:\n");
        print_table(steps, step_cols);
    }
    if (json_is_array(events)) {
        printf("\nevents:\n");
        print_table(events, event_cols);
    }
}

void ctl_print_plain(json_t *obj) { print_object(obj, NULL); }

void ctl_print_instances(json_t *ans)
{
    static const char *const cols[] = {"instance_id", "product", "region", "uin",
                                       "status",      "dsn",     NULL};
    print_table(json_object_get(ans, "instances"), cols);
}

void ctl_print_task_list(json_t *ans)
{
    static const char *const cols[] = {"AsyncRequestId", "product", "region", "uin",
                                       "instance_id",    "type",    "state",  "current_step",
                                       "created_at",     NULL};
    json_t *tasks = json_object_get(ans, "tasks");
    print_table(tasks, cols);
    printf("(%zu shown, %" JSON_INTEGER_FORMAT " in all)\n", json_array_size(tasks),
           json_integer_value(json_object_get(ans, "total")));
}

void ctl_print_task_id(json_t *ans)
{
    printf("%s\n", json_string_value(json_object_get(ans, "AsyncRequestId")));
}

void ctl_print_task_ids(json_t *ans)
{
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(ans, "AsyncRequestIds"), i, id)
        printf("%s\n", json_string_value(id));
}

void ctl_print_health(json_t *ans)
{
    const char *s = json_string_value(json_object_get(ans, "status"));
    printf("%s\n", s ? s : "?");
}

void ctl_print_token(json_t *ans)
{
    /* The token alone on stdout, so `T=$(asyncctl token create ...)` takes just it. */
    printf("%s\n", json_string_value(json_object_get(ans, "token")));
    fprintf(stderr, "token %s (scope %s, name %s): shown once, keep it\n",
            json_string_value(json_object_get(ans, "id")),
            json_string_value(json_object_get(ans, "scope")),
            json_string_value(json_object_get(ans, "name")));
}

void ctl_print_tokens(json_t *ans)
{
    static const char *const cols[] = {"id", "scope", "name", "created", "last_used", NULL};
    print_table(json_object_get(ans, "tokens"), cols);
}

static const char *const key_cols[] = {"SecretId", "Status", "Created", NULL};

void ctl_print_keys(json_t *ans)
{
    json_t *keys = json_object_get(ans, "Keys");
    if (json_array_size(keys) == 0)
        printf("(no key pairs: create one with asyncctl account key create UIN)\n");
    else
        print_table(keys, key_cols);
}

void ctl_print_account(json_t *ans)
{
    static const char *const skip[] = {"Keys", NULL};
    print_object(ans, skip);
    json_t *keys = json_object_get(ans, "Keys");
    if (json_is_array(keys) && json_array_size(keys) > 0) {
        printf("\nkeys:\n");
        print_table(keys, key_cols);
    }
}

void ctl_print_webhooks(json_t *ans)
{
    static const char *const cols[] = {"id", "events", "product", "uin", "url", "created", NULL};
    json_t *hooks = json_object_get(ans, "webhooks");
    if (json_array_size(hooks) == 0)
        printf("(no webhooks: subscribe with asyncctl webhook create --url URL --secret-file F)\n");
    else
        print_table(hooks, cols);
}

void ctl_print_deliveries(json_t *ans)
{
    static const char *const cols[] = {"id",           "task",        "task_state", "state",
                                       "attempts",     "last_status", "last_error", "time",
                                       "next_attempt", NULL};
    json_t *ds = json_object_get(ans, "deliveries");
    if (json_array_size(ds) == 0)
        printf("(no deliveries yet)\n");
    else
        print_table(ds, cols);
}
