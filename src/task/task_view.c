#include "task/task_view.h"

const char *task_view_str(json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : dflt;
}

json_t *task_view_last_event(json_t *task)
{
    json_t *events = json_object_get(task, "events");
    size_t n = json_array_size(events);
    return n ? json_array_get(events, n - 1) : NULL;
}
