/* How a JSON value is named in a message a person reads ("expected a string, got a number"). */
#ifndef ASYNCD_JSON_KIND_H
#define ASYNCD_JSON_KIND_H

#include <jansson.h>

/* "an object", "an array", "a string", "a number", "a boolean" or "null" (also for NULL). */
const char *json_kind_phrase(const json_t *v);

#endif
