/* The shared side of the backend primitives (store_db.h): the dispatch to a store's dialect and
 * the column helpers every dialect gets for free. */
#include "store/store_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/xalloc.h"
#include "store/store.h"

int db_run(struct store *s, enum db_kind kind, int (*fn)(struct db_tx *t, void *ctx, struct err *e),
           void *ctx, struct err *e)
{
    if (!s->db)
        return err_set(e, ERR_INTERNAL, "store: this store has no SQL backend");
    return s->db->run(s, kind, fn, ctx, e);
}

bool db_store_has(const struct store *s, enum db_cap cap) { return s->db && (s->db->caps & cap); }

json_t *db_json_string(const char *v)
{
    if (!v)
        return json_null();
    json_t *j = json_string(v);
    if (j)
        return j;
    /* Not UTF-8 (SQLite keeps what a program printed): keep the ASCII, mark the rest. */
    char *copy = xstrdup(v);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

json_t *db_json_text(struct db_tx *t, int col) { return db_json_string(db_text(t, col)); }

json_t *db_json_int(struct db_tx *t, int col)
{
    return db_is_null(t, col) ? json_null() : json_integer(db_int(t, col));
}

void db_copy(struct db_tx *t, int col, char *dst, size_t size)
{
    const char *v = db_text(t, col);
    snprintf(dst, size, "%s", v ? v : "");
}

int64_t db_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
