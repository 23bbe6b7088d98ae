/* Task-throughput load client shared by bench/tasks.sh, bench/pg.sh and bench/pgboss.sh: the C
 * successor of load_client.js, so the client no longer takes a core from the daemon it measures
 * (the node one used 1.20 CPU-s for 3000 tasks against asyncd's 1.79 CPU-s).
 * Usage: load_client ADMIN[,ADMIN...] TOKEN UIN TASKS CLIENTS TIMEOUT_S
 * Creates TASKS tasks of BENCH_N_STEPS steps (default 1) of action BENCH_STEP (default
 * {"exec":["/bin/true"]}) with CLIENTS keep-alive HTTP/1.1 connections driven by one epoll loop
 * (connection i talks to admin endpoint i % endpoints, so the creates spread round-robin), waits
 * until every one is success, then reads created_ms/start_ms/end_ms of each and prints the RESULT
 * lines of load_client.js: RESULT create N SECONDS PER_S P50_MS P99_MS RESULT e2e N SECONDS PER_S
 *   RESULT latency P50 P99 MAX QUEUED_P50 QUEUED_P99 RUNNING_P50 RUNNING_P99
 *   RESULT wall SECONDS PER_S RETRIES_503
 *   RESULT clientcpu CPU_SECONDS
 * BENCH_MODE=create: only create (RESULT create); BENCH_MODE=wait: create nothing, wait for TASKS
 * tasks to succeed, e2e = TASKS / (last end_ms - first start_ms).
 * BENCH_BATCH=K (default 1): K tasks a request, through POST /v1/tasks/batch (TASKS a multiple
 * of K); the create latencies are then per request.
 * Build: make build/bench/load_client (links jansson for the list answers). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ENDPOINTS 16
#define MAX_RETRIES   1000

struct endpoint {
    struct sockaddr_in addr;
    char host[64]; /* host:port, for the Host header */
};

/* One keep-alive connection and the one request it has in flight. */
struct conn {
    int fd;
    const struct endpoint *ep;
    char *out; /* the request being sent */
    size_t out_len, out_off;
    char *in; /* the answer read so far */
    size_t in_len, in_cap;
    double sent_at, retry_at; /* retry_at > 0: waiting to resend after a 503 */
    bool busy;
};

/* A complete answer. */
struct answer {
    int status;
    const char *body;
    size_t body_len;
};

static struct endpoint endpoints[MAX_ENDPOINTS];
static size_t n_endpoints;
static char auth[512];

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void parse_endpoints(const char *list)
{
    char *copy = strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n_endpoints == MAX_ENDPOINTS)
            fail("at most %d admin endpoints", MAX_ENDPOINTS);
        struct endpoint *ep = &endpoints[n_endpoints++];
        char *colon = strrchr(tok, ':');
        if (!colon)
            fail("admin endpoint %s is not HOST:PORT", tok);
        snprintf(ep->host, sizeof ep->host, "%s", tok);
        *colon = '\0';
        ep->addr.sin_family = AF_INET;
        ep->addr.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, tok, &ep->addr.sin_addr) != 1)
            fail("admin endpoint host %s is not an IPv4 address", tok);
    }
    free(copy);
    if (n_endpoints == 0)
        fail("no admin endpoint");
}

static int connect_to(const struct endpoint *ep)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&ep->addr, sizeof ep->addr) != 0)
        fail("connect %s: %s", ep->host, strerror(errno));
    return fd;
}

static char *request_build(const struct endpoint *ep, const char *method, const char *path,
                           const char *body, size_t *len)
{
    size_t blen = body ? strlen(body) : 0;
    char *req = NULL;
    int n;
    if (body)
        n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, ep->host, auth, blen, body);
    else
        n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n\r\n", method, path,
                     ep->host, auth);
    if (n < 0)
        fail("out of memory");
    *len = (size_t)n;
    return req;
}

/* Whether c->in holds one complete answer; fills a. Content-Length only (libmicrohttpd answers
 * every admin call from a buffer). */
static bool answer_complete(const struct conn *c, struct answer *a)
{
    const char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return false;
    size_t head_len = (size_t)(end - c->in) + 4;
    if (c->in_len < 12 || strncmp(c->in, "HTTP/1.", 7) != 0)
        fail("not an HTTP answer: %.40s", c->in);
    a->status = atoi(c->in + 9);
    size_t clen = 0;
    bool have_len = false;
    for (const char *p = c->in; p < end;) {
        const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
            clen = strtoul(p + 15, NULL, 10);
            have_len = true;
        } else if ((size_t)(eol - p) > 18 && strncasecmp(p, "Transfer-Encoding:", 18) == 0) {
            fail("chunked answers are not supported");
        }
        p = eol + 2;
    }
    if (!have_len)
        clen = 0;
    if (c->in_len < head_len + clen)
        return false;
    if (c->in_len > head_len + clen)
        fail("more bytes than one answer (pipelining is not used)");
    a->body = c->in + head_len;
    a->body_len = clen;
    return true;
}

static void conn_reserve(struct conn *c, size_t more)
{
    if (c->in_len + more + 1 <= c->in_cap)
        return;
    c->in_cap = (c->in_len + more + 1) * 2;
    c->in = realloc(c->in, c->in_cap);
    if (!c->in)
        fail("out of memory");
}

/* Reads what is there; returns -1 when the peer closed, 0 otherwise. */
static int conn_read(struct conn *c, bool blocking)
{
    for (;;) {
        conn_reserve(c, 16384);
        ssize_t n =
            recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, blocking ? 0 : MSG_DONTWAIT);
        if (n > 0) {
            c->in_len += (size_t)n;
            c->in[c->in_len] = '\0';
            if (blocking)
                return 0;
            continue;
        }
        if (n == 0)
            return -1;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno == ECONNRESET)
            return -1;
        fail("recv: %s", strerror(errno));
    }
}

/* Sends what is left of c->out; returns whether all of it is sent. */
static bool conn_write(struct conn *c, bool blocking)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | (blocking ? 0 : MSG_DONTWAIT));
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        fail("send: %s", strerror(errno));
    }
    return true;
}

static void conn_reconnect(struct conn *c)
{
    close(c->fd);
    c->fd = connect_to(c->ep);
    c->in_len = 0;
    c->out_off = 0;
}

/* One request on a blocking connection (the polls and the listing); a closed keep-alive
 * connection is opened again and the request sent again (every such request is a GET). */
static struct answer call(struct conn *c, const char *method, const char *path)
{
    free(c->out);
    c->out = request_build(c->ep, method, path, NULL, &c->out_len);
    for (int tries = 0;; tries++) {
        c->out_off = 0;
        c->in_len = 0;
        conn_write(c, true);
        struct answer a;
        for (;;) {
            if (c->in_len && answer_complete(c, &a))
                return a;
            if (conn_read(c, true) < 0)
                break;
        }
        if (tries == 3)
            fail("%s %s: connection closed without an answer", method, path);
        conn_reconnect(c);
    }
}

static json_t *answer_json(const struct answer *a, const char *what)
{
    if (a->status != 200)
        fail("%s answered %d: %.*s", what, a->status, (int)a->body_len, a->body);
    json_error_t je;
    json_t *j = json_loadb(a->body, a->body_len, 0, &je);
    if (!j)
        fail("%s: not JSON: %s", what, je.text);
    return j;
}

static long long total_of(struct conn *c, const char *state)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks?status=%s&limit=1", state);
    struct answer a = call(c, "GET", path);
    json_t *j = answer_json(&a, "GET /v1/tasks");
    json_t *total = json_object_get(j, "total");
    if (!json_is_integer(total))
        fail("GET /v1/tasks: no total");
    long long n = json_integer_value(total);
    json_decref(j);
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile of sorted[0..n) as load_client.js takes it. */
static double pct(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return NAN;
    long i = (long)ceil(p / 100 * (double)n) - 1;
    if (i < 0)
        i = 0;
    if ((size_t)i >= n)
        i = (long)n - 1;
    return sorted[i];
}

struct creates {
    long n, next, done, retries; /* requests */
    long batch;                  /* tasks a request */
    const char *body, *path;
    double *ms; /* each create's latency */
};

static void create_send(struct conn *c, double now)
{
    c->out_off = 0;
    c->in_len = 0;
    c->sent_at = now;
    c->retry_at = 0;
    c->busy = true;
    conn_write(c, false);
}

/* Starts the next create on c, if any is left. */
static void create_next(struct conn *c, struct creates *cr, double now)
{
    if (cr->next >= cr->n) {
        c->busy = false;
        return;
    }
    cr->next++;
    create_send(c, now);
}

static void create_answered(struct conn *c, struct creates *cr, const struct answer *a, double now)
{
    if (a->status == 201) { /* 200 would be a replay: nothing new was created */
        cr->ms[cr->done++] = (now - c->sent_at) * 1000;
        create_next(c, cr, now);
        return;
    }
    if (a->status == 503 && ++cr->retries < MAX_RETRIES) {
        c->busy = true;
        c->retry_at = now + 0.010;
        return;
    }
    fail("POST /v1/tasks answered %d: %.*s", a->status, (int)a->body_len, a->body);
}

/* Runs every create over conns[0..nc) from one epoll loop. */
static void create_all(struct conn *conns, size_t nc, struct creates *cr, double deadline)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        fail("epoll_create1: %s", strerror(errno));
    double now = now_s();
    for (size_t i = 0; i < nc; i++) {
        free(conns[i].out);
        conns[i].out = request_build(conns[i].ep, "POST", cr->path, cr->body, &conns[i].out_len);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = &conns[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) != 0)
            fail("epoll_ctl: %s", strerror(errno));
        create_next(&conns[i], cr, now);
    }
    struct epoll_event evs[64];
    while (cr->done < cr->n) {
        now = now_s();
        if (now > deadline)
            fail("timeout: %ld of %ld creates answered", cr->done, cr->n);
        int timeout_ms = 100;
        for (size_t i = 0; i < nc; i++)
            if (conns[i].retry_at > 0) {
                if (conns[i].retry_at <= now)
                    create_send(&conns[i], now);
                else if ((conns[i].retry_at - now) * 1000 + 1 < timeout_ms)
                    timeout_ms = (int)((conns[i].retry_at - now) * 1000) + 1;
            }
        int n = epoll_wait(ep, evs, 64, timeout_ms);
        if (n < 0 && errno != EINTR)
            fail("epoll_wait: %s", strerror(errno));
        now = now_s();
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (!c->busy || c->retry_at > 0)
                continue;
            if (evs[k].events & EPOLLOUT)
                conn_write(c, false);
            if (!(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            bool closed = conn_read(c, false) < 0;
            struct answer a;
            if (c->in_len && answer_complete(c, &a)) {
                create_answered(c, cr, &a, now);
            } else if (closed) {
                /* The server closed this keep-alive connection before answering: the create
                 * was not acknowledged, so it is sent again on a new connection. */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                conn_reconnect(c);
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
                create_send(c, now);
            }
        }
    }
    close(ep);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void wait_all_success(struct conn *c, long n, long long already, double t0, double timeout_s)
{
    for (long polls = 1;; polls++) {
        long long done = total_of(c, "success") - already;
        if (done >= n)
            return;
        static const char *const stuck[] = {"paused", "failed", "killed"};
        for (size_t i = 0; polls % 50 == 0 && i < sizeof stuck / sizeof *stuck; i++) {
            long long k = total_of(c, stuck[i]);
            if (k)
                fail("%lld task(s) %s", k, stuck[i]);
        }
        if (now_s() - t0 > timeout_s)
            fail("timeout: %lld of %ld success after %.0f s", done, n, timeout_s);
        sleep_ms(20);
    }
}

static long long int_field(json_t *t, const char *key, bool *present)
{
    json_t *v = json_object_get(t, key);
    *present = json_is_integer(v);
    return *present ? json_integer_value(v) : 0;
}

struct timings {
    double *lat, *wait, *run;
    size_t n_lat, n_wait;
    long long first_created, first_start, last_end;
};

static void read_timings(struct conn *c, long n, struct timings *tm)
{
    tm->lat = calloc((size_t)n, sizeof(double));
    tm->wait = calloc((size_t)n, sizeof(double));
    tm->run = calloc((size_t)n, sizeof(double));
    tm->first_created = tm->first_start = INT64_MAX;
    tm->last_end = INT64_MIN;
    for (long off = 0; off < n; off += 1000) {
        char path[96];
        snprintf(path, sizeof path, "/v1/tasks?limit=1000&offset=%ld", off);
        struct answer a = call(c, "GET", path);
        json_t *j = answer_json(&a, "GET /v1/tasks");
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(j, "tasks"), i, t)
        {
            const char *state = json_string_value(json_object_get(t, "state"));
            if (!state || strcmp(state, "success") != 0) {
                const char *id = json_string_value(json_object_get(t, "AsyncRequestId"));
                fail("task %s is %s", id ? id : "?", state ? state : "?");
            }
            if (tm->n_lat == (size_t)n)
                fail("listed more than %ld tasks", n);
            bool has_c, has_s, has_e;
            long long cm = int_field(t, "created_ms", &has_c);
            long long sm = int_field(t, "start_ms", &has_s);
            long long em = int_field(t, "end_ms", &has_e);
            if (!has_c || !has_e)
                fail("a listed task has no created_ms/end_ms");
            if (cm < tm->first_created)
                tm->first_created = cm;
            if (has_s && sm < tm->first_start)
                tm->first_start = sm;
            if (em > tm->last_end)
                tm->last_end = em;
            tm->lat[tm->n_lat++] = (double)(em - cm);
            if (has_s) {
                tm->wait[tm->n_wait] = (double)(sm - cm);
                tm->run[tm->n_wait++] = (double)(em - sm);
            }
        }
        json_decref(j);
    }
    if (tm->n_lat != (size_t)n)
        fail("listed %zu tasks, expected %ld", tm->n_lat, n);
    qsort(tm->lat, tm->n_lat, sizeof(double), cmp_double);
    qsort(tm->wait, tm->n_wait, sizeof(double), cmp_double);
    qsort(tm->run, tm->n_wait, sizeof(double), cmp_double);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void print_create(const struct creates *cr, double secs)
{
    qsort(cr->ms, (size_t)cr->done, sizeof(double), cmp_double);
    long tasks = cr->n * cr->batch;
    printf("RESULT create %ld %.3f %.1f %.2f %.2f\n", tasks, secs, (double)tasks / secs,
           pct(cr->ms, (size_t)cr->done, 50), pct(cr->ms, (size_t)cr->done, 99));
}

/* The task every create sends: BENCH_N_STEPS (default 1) steps of action BENCH_STEP; batch > 1:
 * {"tasks": [batch of them]}. */
static char *task_body(const char *uin, long batch)
{
    const char *step = getenv("BENCH_STEP");
    if (!step || !*step)
        step = "{\"exec\":[\"/bin/true\"]}";
    long n_steps = getenv("BENCH_N_STEPS") ? atol(getenv("BENCH_N_STEPS")) : 1;
    if (n_steps < 1)
        fail("BENCH_N_STEPS must be at least 1");
    json_error_t je;
    json_t *action = json_loads(step, 0, &je);
    if (!action)
        fail("BENCH_STEP is not JSON: %s", je.text);
    json_t *steps = json_array();
    for (long i = 0; i < n_steps; i++) {
        char name[32];
        snprintf(name, sizeof name, n_steps == 1 ? "noop" : "step%ld", i);
        json_array_append_new(steps, json_pack("{s:s, s:O}", "name", name, "do", action));
    }
    json_decref(action);
    json_t *task = json_pack("{s:s, s:s, s:s, s:s, s:o}", "product", "cdb", "region",
                             "ap-guangzhou", "uin", uin, "type", "Bench", "steps", steps);
    if (batch > 1) {
        json_t *tasks = json_array();
        for (long i = 0; i < batch; i++)
            json_array_append(tasks, task);
        json_decref(task);
        task = json_pack("{s:o}", "tasks", tasks);
    }
    char *body = json_dumps(task, JSON_COMPACT);
    json_decref(task);
    return body;
}

int main(int argc, char **argv)
{
    if (argc != 7)
        fail("usage: load_client ADMIN[,ADMIN...] TOKEN UIN TASKS CLIENTS TIMEOUT_S");
    parse_endpoints(argv[1]);
    snprintf(auth, sizeof auth, "Bearer %s", argv[2]);
    long n = atol(argv[4]), nc = atol(argv[5]);
    double timeout_s = atof(argv[6]);
    if (n <= 0 || nc <= 0)
        fail("TASKS and CLIENTS must be positive");
    const char *mode = getenv("BENCH_MODE") ? getenv("BENCH_MODE") : "both";
    bool only_create = strcmp(mode, "create") == 0, only_wait = strcmp(mode, "wait") == 0;

    struct conn *conns = calloc((size_t)nc, sizeof *conns);
    for (long i = 0; i < nc; i++) {
        conns[i].ep = &endpoints[(size_t)i % n_endpoints];
        conns[i].fd = connect_to(conns[i].ep);
    }
    /* Tasks already in the store (none on the benches' fresh stores) are not ours to wait for.
     * The polls and the listing use a connection of their own to the first endpoint. */
    struct conn ctl = {.ep = &endpoints[0]};
    ctl.fd = connect_to(ctl.ep);
    long long already = only_wait ? 0 : total_of(&ctl, "success");

    long batch = getenv("BENCH_BATCH") ? atol(getenv("BENCH_BATCH")) : 1;
    if (batch < 1 || n % batch != 0)
        fail("BENCH_BATCH must be at least 1 and divide TASKS");
    struct creates cr = {.n = only_wait ? 0 : n / batch,
                         .batch = batch,
                         .body = task_body(argv[3], batch),
                         .path = batch > 1 ? "/v1/tasks/batch" : "/v1/tasks"};
    cr.ms = calloc((size_t)n, sizeof(double));
    double t0 = now_s();
    if (!only_wait)
        create_all(conns, (size_t)nc, &cr, t0 + timeout_s);
    double t_created = now_s();
    if (only_create) {
        print_create(&cr, t_created - t0);
        return 0;
    }
    wait_all_success(&ctl, n, already, t0, timeout_s);
    double t_seen = now_s();
    struct timings tm = {0};
    read_timings(&ctl, n, &tm);
    double e2e_s = (double)(tm.last_end - (only_wait ? tm.first_start : tm.first_created)) / 1000;
    if (!only_wait)
        print_create(&cr, t_created - t0);
    printf("RESULT e2e %ld %.3f %.1f\n", n, e2e_s, (double)n / e2e_s);
    printf("RESULT latency %.0f %.0f %.0f %.0f %.0f %.0f %.0f\n", pct(tm.lat, tm.n_lat, 50),
           pct(tm.lat, tm.n_lat, 99), tm.lat[tm.n_lat - 1], pct(tm.wait, tm.n_wait, 50),
           pct(tm.wait, tm.n_wait, 99), pct(tm.run, tm.n_wait, 50), pct(tm.run, tm.n_wait, 99));
    printf("RESULT wall %.3f %.1f %ld\n", t_seen - t0, (double)n / (t_seen - t0), cr.retries);
    printf("RESULT clientcpu %.2f\n", cpu_s());
    return 0;
}
