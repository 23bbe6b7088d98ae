/* Reading the task view (the JSON the store answers for a task) for log lines: the engine's
 * transition lines and the admin API's verb lines read the same fields the same way. */
#ifndef ASYNCD_TASK_VIEW_H
#define ASYNCD_TASK_VIEW_H

#include <jansson.h>

/* The string field k of o, or dflt when it is missing or empty. */
const char *task_view_str(json_t *o, const char *k, const char *dflt);
/* The task's last event (an object), or NULL when it has none. */
json_t *task_view_last_event(json_t *task);

#endif
