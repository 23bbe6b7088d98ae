/* HTTP listeners on libmicrohttpd: per-request context, bounded bodies, TLS, graceful stop. */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timefmt.h"
#include "common/workq.h"
#include "common/xalloc.h"

/* Per-connection memory (MHD's pool: read buffer, parsed headers, write buffer). Headers of
 * more than about 32 KiB do not fit and MHD answers 431 itself; below that, on_request sees
 * HTTP_MAX_HEADERS / HTTP_MAX_HEADER_BYTES and flags the request for the handler. */
#define HTTP_CONN_MEMORY (34 * 1024)
/* How often the watchdog looks for requests past their deadline. */
#define WATCHDOG_TICK_MS 250

/* One open connection, from MHD's connect notification to its close notification, so the
 * watchdog can cut a request that takes too long: MHD's own timeout restarts at every byte, so a
 * client trickling one byte a second would hold its connection forever. */
struct conn_slot {
    struct conn_slot *prev, *next;
    int fd;
    bool cut;                 /* shut down by the watchdog; MHD closes it next */
    _Atomic int64_t deadline; /* monotonic ms by which the request must be in; 0 = none */
    /* For the line that says why a connection was cut (monotonic ms; 0 = not yet). */
    int64_t opened_ms;
    _Atomic int64_t line_ms;  /* the current request's line arrived */
    atomic_uint answered;     /* requests answered on this connection */
    _Atomic size_t body_seen; /* bytes of the current request's body received */
};

struct http_server {
    struct MHD_Daemon *daemon;
    http_handler_fn fn;
    void *ctx;
    size_t max_body;
    uint16_t port;
    char *tls_cert_pem, *tls_key_pem;
    struct workq *blocking;   /* runs deferred requests; NULL runs them in line */
    atomic_int deferred;      /* deferred requests not yet completed (answer sent or client gone) */
    int64_t request_ms;       /* a request's headers and body must arrive within this */
    int64_t idle_ms;          /* MHD's idle timeout, for the deadline after a keep-alive answer */
    pthread_mutex_t conns_mu; /* guards conns, stopping, and each slot's fd while it is cut */
    pthread_cond_t stop_cv;
    struct conn_slot *conns;
    bool stopping;
    bool watchdog_running;
    pthread_t watchdog;
    /* Pool mode: our own acceptor hands each connection to MHD, which places it on pool thread
     * (fd mod pool size); see accept_ready. lfd is ours to close then, -1 otherwise. */
    int lfd;
    bool own_acceptor;
    unsigned max_conns;     /* own acceptor: the connection limit, enforced by it */
    atomic_uint open_conns; /* own acceptor: handed to MHD and not yet closed */
    int acceptor_wake[2];
    bool acceptor_running;
    pthread_t acceptor;
    _Atomic int64_t last_log_ms; /* MHD's messages are rate-limited, see on_mhd_log */
    atomic_uint log_dropped;
};

enum defer_state { DEFER_NONE, DEFER_PENDING, DEFER_DONE };

/* One request's state, created by the URI callback before headers are parsed, freed on completion.
 */
struct req_ctx {
    char *raw_uri;
    char *body;
    size_t len, cap;
    bool too_large;
    bool started;
    const char *headers_reason; /* why the headers are too large, or NULL */
    bool was_deferred;          /* counted in srv->deferred until on_completed */
    /* A deferred request: the connection is suspended while a blocking-work thread fills resp. */
    enum defer_state defer;
    struct http_server *srv;
    struct MHD_Connection *conn;
    struct http_request req;
    struct http_response resp;
};

const char *http_header(const struct http_request *req, const char *name)
{
    if (req->header_fn)
        return req->header_fn(req->conn, name);
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND, name);
}

static int64_t mono_ms(void) { return time_mono_ns() / 1000000; }

static struct conn_slot *slot_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* at: a monotonic ms deadline, or 0 once the request is in (a handler may then take its time,
 * a long-poll for instance; MHD's idle timeout still covers a client that stops reading). */
static void deadline_set(struct MHD_Connection *conn, int64_t at)
{
    struct conn_slot *c = slot_of(conn);
    if (c)
        atomic_store(&c->deadline, at);
}

/* A request line has arrived: its request must be in within request_ms, and never later than
 * a deadline already running (the one from the connect, or from the previous answer). */
static void deadline_begin(struct http_server *s, struct MHD_Connection *conn)
{
    struct conn_slot *c = slot_of(conn);
    if (!c)
        return;
    int64_t now = mono_ms(), at = now + s->request_ms, cur = atomic_load(&c->deadline);
    if (cur == 0 || at < cur)
        atomic_store(&c->deadline, at);
    atomic_store(&c->line_ms, now);
    atomic_store(&c->body_seen, 0);
}

static bool overdue(struct MHD_Connection *conn)
{
    struct conn_slot *c = slot_of(conn);
    int64_t at = c ? atomic_load(&c->deadline) : 0;
    return at && mono_ms() >= at;
}

/* A new connection must send its request within request_ms. The slot lives until MHD's close
 * notification, which comes before MHD closes the socket (see cut_overdue). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    struct conn_slot *c = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = xcalloc(1, sizeof *c);
        c->fd = ci ? ci->connect_fd : -1;
        c->cut = c->fd < 0;
        c->opened_ms = mono_ms();
        atomic_store(&c->deadline, c->opened_ms + s->request_ms);
        pthread_mutex_lock(&s->conns_mu);
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        pthread_mutex_unlock(&s->conns_mu);
        *socket_context = c;
        return;
    }
    if (!c)
        return;
    if (s->own_acceptor)
        atomic_fetch_sub(&s->open_conns, 1);
    pthread_mutex_lock(&s->conns_mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&s->conns_mu);
    free(c);
    *socket_context = NULL;
}

/* What a cut connection was doing, so a request cut in a test (or in production) says whether
 * its client sent nothing, stopped in the headers or in the body, or idled after an answer. */
static void describe_cut(struct conn_slot *c, int64_t now, char *out, size_t cap)
{
    int64_t line = atomic_load(&c->line_ms);
    unsigned answered = atomic_load(&c->answered);
    if (!line)
        snprintf(out, cap, "open %lld ms, %u answered, no request line since",
                 (long long)(now - c->opened_ms), answered);
    else
        snprintf(out, cap, "open %lld ms, %u answered, request line %lld ms ago, %zu body bytes",
                 (long long)(now - c->opened_ms), answered, (long long)(now - line),
                 atomic_load(&c->body_seen));
}

/* Shuts down the sockets of requests past their deadline; MHD sees the stream end and closes
 * the connection in its own thread. The lock is held across shutdown() and MHD's close
 * notification takes it before MHD closes the socket, so the descriptor cut is always this
 * connection's, never a number the kernel has handed out again. */
static unsigned cut_overdue(struct http_server *s, int64_t now, char *first, size_t cap)
{
    unsigned n = 0;
    for (struct conn_slot *c = s->conns; c; c = c->next) {
        int64_t at = atomic_load(&c->deadline);
        if (at && now >= at && !c->cut) {
            if (n == 0)
                describe_cut(c, now, first, cap);
            shutdown(c->fd, SHUT_RDWR);
            c->cut = true;
            n++;
        }
    }
    return n;
}

static void *watchdog_main(void *arg)
{
    struct http_server *s = arg;
    pthread_setname_np(pthread_self(), "http-watchdog");
    pthread_mutex_lock(&s->conns_mu);
    while (!s->stopping) {
        char first[160];
        unsigned n = cut_overdue(s, mono_ms(), first, sizeof first);
        if (n)
            log_info("http: closed %u connection(s) whose request passed its %lld ms deadline"
                     " (the first: %s)",
                     n, (long long)s->request_ms, first);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += WATCHDOG_TICK_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->stop_cv, &s->conns_mu, &until);
    }
    pthread_mutex_unlock(&s->conns_mu);
    return NULL;
}

/* MHD's own messages (a connection refused past a limit, a failed TLS handshake) go to our log,
 * at most one a second: a flood of refused connections must not become a flood of lines. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *s = cls;
    int64_t now = mono_ms(), last = atomic_load(&s->last_log_ms);
    if (now - last < 1000 || !atomic_compare_exchange_strong(&s->last_log_ms, &last, now)) {
        atomic_fetch_add(&s->log_dropped, 1);
        return;
    }
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    unsigned dropped = atomic_exchange(&s->log_dropped, 0);
    if (dropped)
        log_warn("http: %s (and %u more messages in the last second)", line, dropped);
    else
        log_warn("http: %s", line);
}

/* MHD gives the handler a decoded path without the query; signatures need the raw bytes, so keep
 * the URI exactly as received. The returned pointer becomes the request's context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    deadline_begin(cls, conn);
    struct req_ctx *rc = xcalloc(1, sizeof *rc);
    rc->raw_uri = xstrdup(uri ? uri : "/");
    /* MHD 0.9.75 parses the query into its per-connection pool right after this call: about
     * 460 arguments (a 3 KB URL) exhaust it, and MHD then answers nothing and holds the
     * connection. We decode the query ourselves from raw_uri, within our own bounds, so MHD's
     * copy is cut to "?" (its buffer is writable; the const is the API's, not the memory's). */
    char *q = uri ? strchr((char *)uri, '?') : NULL;
    if (q)
        q[1] = '\0';
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct http_server *s = cls;
    /* Keep-alive: the next request may wait the idle timeout, then must arrive in request_ms. */
    deadline_set(conn, mono_ms() + s->idle_ms + s->request_ms);
    struct conn_slot *slot = slot_of(conn);
    if (slot) {
        atomic_fetch_add(&slot->answered, 1);
        atomic_store(&slot->line_ms, 0);
    }
    struct req_ctx *rc = *req_cls;
    if (!rc)
        return;
    if (rc->was_deferred)
        atomic_fetch_sub(&s->deferred, 1);
    if (rc->defer == DEFER_DONE) /* answered but never sent (the client went away) */
        free(rc->resp.body);
    free(rc->raw_uri);
    free(rc->body);
    free(rc);
    *req_cls = NULL;
}

static void body_append(struct req_ctx *rc, const char *data, size_t n, size_t max_body)
{
    if (rc->too_large || rc->len + n > max_body) {
        rc->too_large = true;
        return;
    }
    if (rc->len + n + 1 > rc->cap) {
        size_t cap = rc->cap ? rc->cap : 1024;
        while (cap < rc->len + n + 1)
            cap *= 2;
        rc->body = xrealloc(rc->body, cap);
        rc->cap = cap;
    }
    memcpy(rc->body + rc->len, data, n);
    rc->len += n;
    rc->body[rc->len] = '\0';
}

/* Bodies past the limit are read and dropped (so the client, still sending, gets our answer
 * rather than a reset); only one announced past this many times the limit is answered at once. */
#define DISCARD_FACTOR 16

static bool announced_too_large(struct MHD_Connection *conn, size_t max_body)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (!cl)
        return false;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    return errno == ERANGE || (end != cl && n > (unsigned long long)max_body * DISCARD_FACTOR);
}

/* One pass over the request's headers (two passes were 1.3% of a poll's CPU): their number and
 * size against HTTP_MAX_HEADERS / HTTP_MAX_HEADER_BYTES, and whether Content-Length headers
 * disagree (RFC 9112 6.3: the framing is then unknowable, so the request is refused). */
struct header_scan {
    unsigned n;
    size_t bytes;
    const char *length;
    bool conflict;
};

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct header_scan *t = cls;
    t->n++;
    t->bytes += strlen(key) + (value ? strlen(value) : 0) + 4; /* ": " and CRLF */
    if (value && strcasecmp(key, "Content-Length") == 0) {
        if (t->length && strcmp(t->length, value) != 0)
            t->conflict = true;
        t->length = t->length ? t->length : value;
    }
    return MHD_YES;
}

/* Why the request's headers pass the limits, or NULL. */
static const char *headers_over_limit(const struct header_scan *t)
{
    if (t->n > HTTP_MAX_HEADERS)
        return "the request has more than 100 headers";
    if (t->bytes > HTTP_MAX_HEADER_BYTES)
        return "the request headers are larger than 16 KiB";
    return NULL;
}

static enum MHD_Result refuse_framing(struct MHD_Connection *conn)
{
    static const char body[] =
        "{\"error\":\"bad_request\",\"message\":\"conflicting Content-Length headers\"}";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_BAD_REQUEST, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct http_response *resp)
{
    if (!resp->body) {
        resp->body = xstrdup("");
        resp->body_len = 0;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(resp->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type : "application/json");
    for (const char *const *h = resp->headers; h && h[0] && h[1]; h += 2)
        MHD_add_response_header(r, h[0], h[1]);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Runs a deferred request's handler again, now allowed to block, then wakes its connection;
 * MHD calls on_request for it once more and that sends rc->resp. */
static void run_deferred(void *arg)
{
    struct req_ctx *rc = arg;
    struct http_server *s = rc->srv;
    struct http_response resp = {.status = 500, .content_type = "application/json"};
    rc->req.on_worker = true;
    s->fn(s->ctx, &rc->req, &resp);
    if (resp.defer) { /* a handler bug: deferring twice would never end */
        free(resp.body);
        resp = (struct http_response){.status = 500, .content_type = "application/json"};
    }
    rc->resp = resp;
    rc->defer = DEFER_DONE;
    MHD_resume_connection(rc->conn);
}

/* Suspends the connection and hands the request to a blocking-work thread. The suspension comes
 * first, so a resume can never precede it; once the pool is draining (shutdown), the work runs
 * here instead, so no connection is left suspended when MHD stops. */
static enum MHD_Result defer_request(struct http_server *s, struct MHD_Connection *conn,
                                     struct req_ctx *rc)
{
    rc->srv = s;
    rc->conn = conn;
    rc->defer = DEFER_PENDING;
    rc->was_deferred = true;
    atomic_fetch_add(&s->deferred, 1);
    MHD_suspend_connection(conn);
    if (!s->blocking || !workq_push(s->blocking, run_deferred, rc))
        run_deferred(rc);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)url;
    (void)version;
    struct http_server *s = cls;
    struct req_ctx *rc = *req_cls;
    if (rc->defer == DEFER_DONE) { /* resumed: the blocking-work thread has the answer */
        rc->defer = DEFER_NONE;
        return send_response(conn, &rc->resp);
    }
    if (rc->defer == DEFER_PENDING)
        return MHD_YES;
    if (!rc->started) { /* headers only: ask MHD for the body, unless it is announced too big */
        rc->started = true;
        struct header_scan scan = {0};
        MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_header, &scan);
        rc->headers_reason = headers_over_limit(&scan);
        if (scan.conflict) {
            deadline_set(conn, 0);
            return refuse_framing(conn);
        }
        if (!announced_too_large(conn, s->max_body))
            return MHD_YES;
        /* Answer at once; MHD then closes the connection instead of reading the body. */
        rc->too_large = true;
    }
    if (*upload_data_size > 0) {
        if (overdue(conn)) /* a trickled body: close now rather than at the watchdog's tick */
            return MHD_NO;
        body_append(rc, upload_data, *upload_data_size, s->max_body);
        struct conn_slot *slot = slot_of(conn);
        if (slot)
            atomic_fetch_add(&slot->body_seen, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!rc->body)
        rc->body = xstrdup("");
    deadline_set(conn, 0); /* the request is in; answering it may take its time */

    char *q = strchr(rc->raw_uri, '?');
    if (q)
        *q++ = '\0';
    rc->req = (struct http_request){
        .method = method,
        .path = rc->raw_uri,
        .query = q ? q : "",
        .body = rc->body,
        .body_len = rc->len,
        .body_too_large = rc->too_large,
        .headers_too_large = rc->headers_reason != NULL,
        .headers_reason = rc->headers_reason,
        .conn = conn,
    };
    struct http_response resp = {.status = 500, .content_type = "application/json"};
    s->fn(s->ctx, &rc->req, &resp);
    if (resp.defer) {
        free(resp.body);
        return defer_request(s, conn, rc);
    }
    return send_response(conn, &resp);
}

int http_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, struct err *e)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return err_set(e, ERR_INVALID_PARAMETER_VALUE, "address %s: expected [IPv6]:PORT", s);
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE, "address %s: expected HOST:PORT", s);
        hl = (size_t)(colon - s);
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p < 0 || p > 65535)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "address %s: port must be 0..65535", s);
    if (hl == 0 || hl >= hostlen)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "address %s: bad host part", s);
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

static char *read_file(const char *path, struct err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(e, ERR_INTERNAL, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0)
            buf = xrealloc(buf, cap *= 2);
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen, struct err *e)
{
    char host[256];
    uint16_t port;
    int rc = http_split_hostport(listen, host, sizeof host, &port, e);
    if (rc)
        return rc;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    int g = getaddrinfo(host, portstr, &hints, &ai);
    if (g != 0 || !ai)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "address %s: %s", listen, gai_strerror(g));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* Binds the listening socket here rather than in MHD, for an exact reason when the port is
 * taken, and without SO_REUSEPORT: a second asyncd on the same port must fail, not share it.
 * SO_REUSEADDR only lets a restart bind while old connections linger in TIME_WAIT. */
static int open_listener(const char *listen_on, const struct sockaddr_storage *ss, socklen_t sslen,
                         int *out, uint16_t *port, struct err *e)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return err_set(e, ERR_INTERNAL, "cannot listen on %s: %s", listen_on, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, sslen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int en = errno;
        close(fd);
        if (en == EADDRINUSE)
            return err_set(e, ERR_INTERNAL,
                           "cannot listen on %s: address already in use; is another asyncd "
                           "running?",
                           listen_on);
        return err_set(e, ERR_INTERNAL, "cannot listen on %s: %s", listen_on, strerror(en));
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    *port = 0;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
        *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    *out = fd;
    return 0;
}

/* How many connections the acceptor takes per wake-up before looking for a stop request. */
#define ACCEPT_BATCH 64
/* Out of descriptors: how long the acceptor waits before trying again, leaving the pending
 * connections in the backlog instead of spinning on a listener that stays readable. */
#define ACCEPT_EMFILE_PAUSE_MS 10

/* A connection closed at the limit: logged at most once a second, like MHD's own messages. */
static void note_refused(struct http_server *s)
{
    int64_t now = mono_ms(), last = atomic_load(&s->last_log_ms);
    if (now - last < 1000 || !atomic_compare_exchange_strong(&s->last_log_ms, &last, now)) {
        atomic_fetch_add(&s->log_dropped, 1);
        return;
    }
    unsigned dropped = atomic_exchange(&s->log_dropped, 0);
    log_warn("http: %u connections open, the limit; closing inbound connections (%u more "
             "messages in the last second)",
             s->max_conns, dropped);
}

/* Why our own acceptor and not MHD's: with MHD's pool each thread accepts from the shared
 * listener, and a burst of connects lands mostly on whichever thread wakes first. Under `make
 * bench` (32 connections, 2 pool threads) one thread took 3/4 of the load, and the requests on
 * its connections waited longer. MHD_add_connection places a connection on pool thread (fd mod
 * pool size), so consecutive connects alternate threads. */
static void accept_ready(struct http_server *s)
{
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                nanosleep(&(struct timespec){0, ACCEPT_EMFILE_PAUSE_MS * 1000000L}, NULL);
            return;
        }
        /* The connection limit is ours, not MHD's: MHD 0.9.75 checks its limit again in the
         * pool thread for an added connection and, past it, returns without unlocking its
         * cleanup mutex, so that thread deadlocks (seen after a flood of 1,500 connections
         * against --max-conns 200). MHD's own limit is set far above ours (http_server_start). */
        if (atomic_load(&s->open_conns) >= s->max_conns) {
            close(fd);
            note_refused(s);
            continue;
        }
        /* MHD owns fd from here, and closes it itself when it refuses it (the per-client limit).
         * An accepted one is counted until its close notification. */
        if (MHD_add_connection(s->daemon, fd, (struct sockaddr *)&ss, len) == MHD_YES)
            atomic_fetch_add(&s->open_conns, 1);
    }
}

static void *acceptor_main(void *arg)
{
    struct http_server *s = arg;
    pthread_setname_np(pthread_self(), "http-accept");
    struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
                          {.fd = s->acceptor_wake[0], .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (p[0].revents & POLLIN)
            accept_ready(s);
    }
    return NULL;
}

static int start_acceptor(struct http_server *s)
{
    if (pipe2(s->acceptor_wake, O_CLOEXEC) != 0)
        return -1;
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0) {
        close(s->acceptor_wake[0]);
        close(s->acceptor_wake[1]);
        return -1;
    }
    s->acceptor_running = true;
    return 0;
}

/* Stops taking connections: the acceptor ends and the listener closes, so new connects are
 * refused by the kernel at once rather than left in a backlog nobody reads. */
static void stop_acceptor(struct http_server *s)
{
    if (s->acceptor_running) {
        ssize_t w = write(s->acceptor_wake[1], "x", 1);
        (void)w;
        pthread_join(s->acceptor, NULL);
        close(s->acceptor_wake[0]);
        close(s->acceptor_wake[1]);
        s->acceptor_running = false;
    }
    if (s->lfd >= 0) {
        close(s->lfd);
        s->lfd = -1;
    }
}

static int load_tls(struct http_server *s, const struct http_config *cfg, struct err *e)
{
    if (!cfg->tls_cert && !cfg->tls_key)
        return 0;
    if (!cfg->tls_cert || !cfg->tls_key)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--tls-cert and --tls-key go together");
    if (!(s->tls_cert_pem = read_file(cfg->tls_cert, e)))
        return ERR_INTERNAL;
    if (!(s->tls_key_pem = read_file(cfg->tls_key, e)))
        return ERR_INTERNAL;
    return 0;
}

static void stop_watchdog(struct http_server *s)
{
    if (!s->watchdog_running)
        return;
    pthread_mutex_lock(&s->conns_mu);
    s->stopping = true;
    pthread_cond_signal(&s->stop_cv);
    pthread_mutex_unlock(&s->conns_mu);
    pthread_join(s->watchdog, NULL);
    s->watchdog_running = false;
}

static void free_server(struct http_server *s)
{
    stop_acceptor(s);
    stop_watchdog(s);
    pthread_cond_destroy(&s->stop_cv);
    pthread_mutex_destroy(&s->conns_mu);
    workq_free(s->blocking);
    free(s->tls_cert_pem);
    free(s->tls_key_pem);
    free(s);
}

int http_server_start(const struct http_config *cfg, http_handler_fn fn, void *ctx,
                      struct http_server **out, struct err *e)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int rc = resolve(cfg->listen, &ss, &sslen, e);
    if (rc)
        return rc;
    struct http_server *s = xcalloc(1, sizeof *s);
    s->lfd = -1;
    s->fn = fn;
    s->ctx = ctx;
    s->max_body = cfg->max_body;
    unsigned idle_s = cfg->idle_timeout_s ? cfg->idle_timeout_s : 30u;
    s->idle_ms = (int64_t)idle_s * 1000;
    s->request_ms = (int64_t)(cfg->request_timeout_s ? cfg->request_timeout_s : 30u) * 1000;
    pthread_mutex_init(&s->conns_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    int lfd = -1;
    if ((rc = load_tls(s, cfg, e)) ||
        (rc = open_listener(cfg->listen, &ss, sslen, &lfd, &s->port, e))) {
        free_server(s);
        return rc;
    }
    if (cfg->blocking_threads)
        s->blocking = workq_new(cfg->blocking_threads);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME |
                     (cfg->thread_per_connection ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL
                                                 : MHD_USE_EPOLL) |
                     (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
                     (s->tls_cert_pem ? MHD_USE_TLS : 0);
    intptr_t pool = cfg->threads ? (intptr_t)cfg->threads : 1;
    /* MHD splits the limit between its pool threads; each needs at least one. */
    unsigned limit = cfg->max_conns ? cfg->max_conns : 1024u;
    if (!cfg->thread_per_connection && limit < (unsigned)pool)
        limit = (unsigned)pool;
    /* Optional settings go in one array: TLS keys, and a thread pool unless each connection
     * has its own thread (MHD warns about a pool size there, even 0 or 1). */
    bool own_acceptor = !cfg->thread_per_connection && pool > 1;
    s->own_acceptor = own_acceptor;
    s->max_conns = limit;
    if (own_acceptor) {
        flags |= MHD_USE_NO_LISTEN_SOCKET;
        s->lfd = lfd;
        limit = limit > UINT_MAX / 4 ? UINT_MAX : limit * 4; /* never reached, see accept_ready */
    }
    struct MHD_OptionItem extra[5];
    size_t n = 0;
    if (!own_acceptor) /* MHD owns lfd then (it closes it when it stops, and on a failed start) */
        extra[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, lfd, NULL};
    if (s->tls_cert_pem) {
        extra[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem};
        extra[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem};
    }
    if (!cfg->thread_per_connection)
        extra[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, pool, NULL};
    extra[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        cfg->max_conns_per_client, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
        MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
    if (!s->daemon) {
        free_server(s);
        return err_set(e, ERR_INTERNAL, "cannot serve on %s: %s", cfg->listen,
                       errno ? strerror(errno) : "libmicrohttpd refused to start");
    }
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
        MHD_stop_daemon(s->daemon);
        free_server(s);
        return err_set(e, ERR_INTERNAL, "cannot serve on %s: no thread for the watchdog",
                       cfg->listen);
    }
    s->watchdog_running = true;
    if (own_acceptor && start_acceptor(s) != 0) {
        int en = errno;
        stop_watchdog(s);
        MHD_stop_daemon(s->daemon);
        free_server(s);
        return err_set(e, ERR_INTERNAL, "cannot serve on %s: no thread to accept connections: %s",
                       cfg->listen, strerror(en));
    }
    *out = s;
    return 0;
}

uint16_t http_server_port(const struct http_server *s) { return s->port; }

void http_server_quiesce(struct http_server *s)
{
    if (s->own_acceptor) {
        stop_acceptor(s);
        return;
    }
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

/* How long http_server_stop waits for deferred answers to reach clients that do not read. */
#define STOP_SEND_GRACE_MS 2000

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    /* MHD refuses to stop with a connection suspended: finish every deferred request first
     * (later ones run in line, see defer_request). Their answers, seconds in the making, are
     * then only queued; give MHD a moment to send them before it closes every connection. */
    if (s->blocking)
        workq_drain(s->blocking);
    for (int waited = 0; atomic_load(&s->deferred) > 0 && waited < STOP_SEND_GRACE_MS; waited += 5)
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    stop_acceptor(s); /* before MHD stops: nothing may add a connection to a stopped daemon */
    MHD_stop_daemon(s->daemon);
    free_server(s);
}
