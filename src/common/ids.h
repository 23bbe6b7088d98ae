/* Identifiers: RequestId UUIDs, cdb task ids, credentials, all from OpenSSL's CSPRNG. */
#ifndef ASYNCD_IDS_H
#define ASYNCD_IDS_H
#include <stdbool.h>
#include <stddef.h>

#define IDS_UUID_LEN     36 /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
#define IDS_CDB_TASK_LEN 35 /* "xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx" */

/* Fills out with a random (version 4) UUID, lower-case, NUL-terminated. */
void ids_uuid(char out[IDS_UUID_LEN + 1]);
/* Fills out with a cdb async request id: four groups of 8 lower-case hex digits, the first 12
 * the creation time in ms (so ids sort by creation), the other 20 random. */
void ids_cdb_task(char out[IDS_CDB_TASK_LEN + 1]);
/* Fills out[0..n-1] with random characters from [A-Za-z0-9] and NUL-terminates (out has n+1). */
void ids_alnum(char *out, size_t n);
/* Fills out with 2*nbytes random lower-case hex digits and a NUL. */
void ids_hex(char *out, size_t nbytes);
/* A random decimal number of `digits` digits whose first digit is not 0. */
void ids_decimal(char *out, size_t digits);

/* Shape checks (not existence): does s look like an id of that format? */
bool ids_is_cdb_task(const char *s);
bool ids_is_mongodb_task(const char *s); /* 1 to 19 decimal digits, no leading zero */

#endif
