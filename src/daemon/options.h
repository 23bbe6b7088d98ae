/* asyncd's command line (DESIGN.md section 2). */
#ifndef ASYNCD_OPTIONS_H
#define ASYNCD_OPTIONS_H

#include <stddef.h>

#include "cloudapi/ratelimit.h"
#include "common/errors.h"

struct options {
    const char *listen, *admin, *data, *store, *flows, *node_id, *tls_cert, *tls_key, *tz,
        *log_level, *log_format;
    const char *param_catalog;   /* --param-catalog FILE: merged over the shipped cdb catalogue */
    const char *secret_key_file; /* --secret-key-file FILE; NULL = DATA/secret.key */
    const char *sim_rules;       /* --sim-rules FILE: progression rules set at start */
    const char *store_file;      /* --store-file FILE: holds the store URL (not in argv, so ps
                                  * never shows its password); NULL = --store or the default */
    unsigned workers;            /* --workers: the engine's thread pool */
    unsigned max_running;        /* --max-running: steps in flight at once on this node */
    unsigned lease_s;
    unsigned idle_timeout_s;
    unsigned request_timeout_s;    /* whole request (headers and body) must arrive within this */
    unsigned max_conns;            /* Cloud API connections at once; 0 = sized from RLIMIT_NOFILE */
    unsigned max_conns_per_client; /* connections from one IP address, per listener; 0 = any */
    unsigned drain_s;
    long long retention_ms;       /* --retention DURATION; 0 = keep finished tasks forever */
    long long retention_every_ms; /* --retention-sweep-ms (hidden, for tests); 0 = derived */
    unsigned http_threads;
    unsigned webhook_backoff_ms; /* --webhook-backoff-ms: first retry delay of a delivery */
    unsigned webhook_attempts;   /* --webhook-attempts: attempts before a delivery fails */
    size_t max_body;
    const char **rate_limits; /* heap array of borrowed argv strings, n_rate_limits long */
    size_t n_rate_limits;
    /* --instance-serial P=on|off,...: the products switched off, comma-separated ("" = none);
     * their tasks on one instance may overlap, every other product's run one at a time */
    char instance_parallel[64];
    const char *config; /* --config FILE: flags read before the command line's, which win */
    char *config_text;  /* the file's text, which the strings from it point into; heap */
    int help;
    int version; /* --version: print the release and exit */
};

/* Parses argv, and the --config file it names first, into o (strings borrowed from argv or held
 * in o->config_text). ERR_INVALID_PARAMETER_VALUE with a message naming the flag on bad input
 * ("FILE:LINE: ..." for a line of the config file). Free with options_free, also on failure. */
int options_parse(int argc, char **argv, struct options *o, struct err *e);
void options_free(struct options *o);
/* The flags whose values differ between was and now, as space-separated names without "--":
 * into live those SIGHUP applies to a running daemon (log-level, flows), into restart the rest.
 * Each buffer is cap bytes; names that do not fit are cut. */
void options_diff(const struct options *was, const struct options *now, char *live, char *restart,
                  size_t cap);
/* Writes the --help text to stdout. */
void options_usage(void);

#endif
