/* ctl_print: asyncctl's human output (aligned "key: value" lines and tables). */
#ifndef ASYNCD_CTL_PRINT_H
#define ASYNCD_CTL_PRINT_H

#include <jansson.h>
#include <stdbool.h>

/* True when key is one of the NULL-terminated list (a NULL list is empty). */
bool ctl_in_list(const char *key, const char *const *list);

/* Printers of admin API answers to stdout; none of them takes ownership. */
void ctl_print_plain(json_t *obj);      /* any object, one aligned "key: value" line per field */
void ctl_print_task(json_t *t);         /* a task, then its steps and events as tables */
void ctl_print_instances(json_t *ans);  /* GET /v1/instances */
void ctl_print_task_list(json_t *ans);  /* GET /v1/tasks, with the count line */
void ctl_print_task_id(json_t *ans);    /* the AsyncRequestId alone */
void ctl_print_task_ids(json_t *ans);   /* a batch's AsyncRequestIds, a line each, in order */
void ctl_print_health(json_t *ans);     /* GET /healthz */
void ctl_print_token(json_t *ans);      /* POST /v1/tokens: the token, then its id on stderr */
void ctl_print_tokens(json_t *ans);     /* GET /v1/tokens */
void ctl_print_keys(json_t *ans);       /* GET /v1/accounts/{uin}/keys */
void ctl_print_account(json_t *ans);    /* GET /v1/accounts/{uin}: fields, then its keys */
void ctl_print_webhooks(json_t *ans);   /* GET /v1/webhooks */
void ctl_print_deliveries(json_t *ans); /* GET /v1/webhooks/{id}/deliveries */

#endif
