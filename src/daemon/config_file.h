/* asyncd's --config FILE: one flag a line, read through the same table as the command line. */
#ifndef ASYNCD_CONFIG_FILE_H
#define ASYNCD_CONFIG_FILE_H

#include "common/errors.h"

/* Called for each flag line: name without "--"; value NULL for a bare name. Returns 0 or an
 * error it filled in e (config_file_read prefixes "FILE:LINE: "). */
typedef int (*config_flag_fn)(void *ctx, const char *name, const char *value, struct err *e);

/* Reads path: each line is `name = value`, `name value` or a bare `name`; blank lines and lines
 * whose first non-blank character is '#' are skipped; the value runs to the end of the line,
 * outer blanks trimmed. Calls fn for each flag in file order, stopping at the first error.
 * *text receives the file's text (heap, the caller frees it, also on failure): name and value
 * point into it. ERR_INVALID_PARAMETER_VALUE "FILE:LINE: ..." on a bad line, "FILE: why" when the
 * file cannot be read. */
int config_file_read(const char *path, config_flag_fn fn, void *ctx, char **text, struct err *e);

#endif
