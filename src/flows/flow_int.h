/* Internal to src/flows: a loaded template. */
#ifndef ASYNCD_FLOW_INT_H
#define ASYNCD_FLOW_INT_H

#include "flows/flows.h"

struct flow {
    char product[16];
    char action[64];
    json_t *doc;              /* the whole template (owned) */
    const char **param_names; /* NULL-terminated, borrowed from doc */
};

/* Schema checks of one template at load time; "where" names the file for messages. */
int flow_schema_check_doc(const json_t *doc, const char *where, struct err *e);
/* Resolves "${path}"'s path against the checked params and the foreach variables (vars: object
 * name -> value). Borrowed, or NULL when absent. */
json_t *flow_lookup(const json_t *clean, const json_t *vars, const char *path);

/* Keys whose values are SQL text: ${...} is never substituted (nor checked) under them. */
bool flow_literal_key(const char *key);

#endif
