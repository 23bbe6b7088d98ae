/* Unknown-key checks on JSON objects (see json_keys.h). */
#include "common/json_keys.h"

#include <stdio.h>
#include <string.h>

static int is_one_of(const char *key, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, names[i]) == 0)
            return 1;
    return 0;
}

const char *json_keys_unknown(const json_t *obj, const char *const *names, size_t n)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (!is_one_of(key, names, n))
            return key;
    }
    return NULL;
}

const char *json_keys_unknown_in(const json_t *obj, const json_t *known)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (!json_object_get(known, key))
            return key;
    }
    return NULL;
}

size_t json_keys_join(const char *const *names, size_t n, char *buf, size_t size)
{
    size_t len = 0;
    if (size)
        buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *sep = i ? ", " : "";
        if (len < size)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", sep, names[i]);
        else
            len += strlen(sep) + strlen(names[i]);
    }
    return len;
}

int json_keys_check(const json_t *obj, const char *const *names, size_t n, const char *where,
                    struct err *e)
{
    const char *key = json_keys_unknown(obj, names, n);
    if (!key)
        return 0;
    char list[sizeof e->msg];
    json_keys_join(names, n, list, sizeof list);
    return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: unknown field \"%.64s\" (known: %s)", where,
                   key, list);
}
