/* A mysql step as a state machine on libmariadb's non-blocking API, so a running step holds no
 * thread: the connect, the tenant guard's look at each account it names, the capture, done_if,
 * each statement and its results, and KILL QUERY from a second connection on a stop or the
 * timeout are all _start/_cont calls, moved on when the session's sockets are ready or its
 * timers are due. The caller's event loop drives it through exec_child_* (engine_loop.c); the
 * blocking exec_run drives the same machine with poll() on its own thread. What the statements
 * are and what the messages say is exec_mysql.c's. */
#include "exec/exec_int.h"
#include "exec/exec_mysql.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "common/xalloc.h"

enum {
    TICK_MS = 100,      /* exec_run: how often ctl->poll is called */
    KILL_TIMEOUT_S = 5, /* connect, read and write limit of the connection that sends KILL */
    DRAIN_MS = 5000,    /* after KILL QUERY, how long the statement gets to end */
};

/* One connection as the loop sees it: what the library waits for. */
struct conn {
    MYSQL *m;
    int wait;          /* the last _start/_cont status (MYSQL_WAIT_*); 0: nothing in flight */
    int64_t lib_until; /* MYSQL_WAIT_TIMEOUT asked for: when to report it; else INT64_MAX */
    int reg_fd;        /* the socket as it is in the epoll set, or -1 */
    uint32_t reg_events;
};

/* The main connection's call in flight. */
enum op { OP_NONE, OP_CONNECT, OP_QUERY, OP_STORE, OP_NEXT };
/* Where the run is: the templates are run in this order. */
enum stage { ST_CONNECT, ST_CAPTURE, ST_DONE_IF, ST_GUARD_ONLY, ST_STATEMENTS };
/* What the query in flight is for. */
enum purpose { Q_PRIVILEGES, Q_ROLES, Q_STATEMENT };
enum kill_state { KILLER_NONE, KILLER_CONNECT, KILLER_QUERY, KILLER_OVER };

struct mysql_step {
    struct exec_child base; /* first: exec_child_* dispatch through it */
    struct exec_mysql_plan plan;
    struct mysql_dsn dsn; /* parsed for connecting: the strings live while connects run */
    const struct exec_control *ctl;
    unsigned timeout_s;
    struct exec_result res; /* the outcome as far as it is known */
    struct conn main, kill;
    int epfd; /* the caller's epoll set, or -1 */
    void *tag;
    /* the main connection's call: what it is and where its results land */
    enum op op;
    MYSQL *ret_m;
    int ret_i;
    MYSQL_RES *ret_res;
    /* the template being run */
    enum stage stage;
    size_t next_statement; /* ST_GUARD_ONLY, ST_STATEMENTS: the next one's index */
    bool already_done;     /* done_if said an earlier run did the work */
    const char *tmpl;      /* borrowed from plan */
    char name[48];
    bool want_value;  /* capture, done_if: its first result is one value */
    bool guard_only;  /* only the guard runs (the statements of a step already done) */
    json_t *accounts; /* [user, host] pairs the template names */
    size_t account;   /* the one being checked */
    /* the query in flight */
    enum purpose purpose;
    char *sql; /* owned */
    bool first, busy;
    MYSQL_RES *kept; /* Q_PRIVILEGES, Q_ROLES: the result */
    json_t *value;   /* want_value: {"value": ...} */
    unsigned last_errno;
    /* the kill */
    enum kill_state kill_state;
    MYSQL *kill_ret_m;
    int kill_ret_i;
    char kill_sql[64];
    /* the clock */
    bool over;             /* no more calls on the main connection: res says how it went */
    enum exec_outcome why; /* EXEC_DONE while running; EXEC_STOPPED or EXEC_TIMEOUT once ended */
    int64_t deadline, drain_until, next_poll;
    bool abandoned; /* the drain ran out: the sockets were shut down */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- connections and the epoll set ---- */

static void conn_wait(struct conn *c, int status)
{
    c->wait = status;
    c->lib_until =
        status & MYSQL_WAIT_TIMEOUT ? now_ms() + mysql_get_timeout_value_ms(c->m) : INT64_MAX;
}

static uint32_t conn_epoll_events(const struct conn *c)
{
    return (c->wait & MYSQL_WAIT_READ ? EPOLLIN : 0u) |
           (c->wait & MYSQL_WAIT_WRITE ? EPOLLOUT : 0u) |
           (c->wait & MYSQL_WAIT_EXCEPT ? EPOLLPRI : 0u);
}

static short conn_poll_events(const struct conn *c)
{
    return (short)((c->wait & MYSQL_WAIT_READ ? POLLIN : 0) |
                   (c->wait & MYSQL_WAIT_WRITE ? POLLOUT : 0) |
                   (c->wait & MYSQL_WAIT_EXCEPT ? POLLPRI : 0));
}

/* What is ready for c, from poll's revents and the clock, as a status for its _cont; 0: none. */
static int conn_ready(const struct conn *c, short revents, int64_t now)
{
    int io = c->wait & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT), r;
    if (revents & (POLLERR | POLLHUP | POLLNVAL)) /* let the library see the error */
        r = io;
    else
        r = io &
            ((revents & POLLIN ? MYSQL_WAIT_READ : 0) | (revents & POLLOUT ? MYSQL_WAIT_WRITE : 0) |
             (revents & POLLPRI ? MYSQL_WAIT_EXCEPT : 0));
    if (!r && c->wait && now >= c->lib_until)
        r = MYSQL_WAIT_TIMEOUT;
    return r;
}

static void conn_unregister(struct mysql_step *s, struct conn *c)
{
    if (c->reg_fd >= 0 && s->epfd >= 0)
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->reg_fd, NULL);
    c->reg_fd = -1;
}

/* Makes the epoll set hold c's socket with what the library waits for (nothing when it waits
 * for nothing). Run on the loop's thread right after each call into the library, before the
 * loop adds anything: a socket the library closed meanwhile has left the set by itself, and its
 * number (maybe another's by now) is only deleted, never left to name our step. -1 when the
 * kernel refuses the watch. */
static int conn_register(struct mysql_step *s, struct conn *c)
{
    if (s->epfd < 0)
        return 0;
    uint32_t ev = c->m && c->wait ? conn_epoll_events(c) : 0;
    int fd = ev ? (int)mysql_get_socket(c->m) : -1;
    if (c->reg_fd >= 0 && c->reg_fd != fd)
        conn_unregister(s, c);
    if (fd < 0 || (c->reg_fd == fd && c->reg_events == ev))
        return 0;
    struct epoll_event e = {.events = ev, .data.ptr = s->tag};
    int rc = epoll_ctl(s->epfd, c->reg_fd == fd ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e);
    if (rc < 0 && errno == ENOENT) /* closed and opened again under the same number */
        rc = epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e);
    else if (rc < 0 && errno == EEXIST)
        rc = epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &e);
    if (rc < 0) {
        c->reg_fd = -1;
        return -1;
    }
    c->reg_fd = fd;
    c->reg_events = ev;
    return 0;
}

/* Both connections into the epoll set as they now wait. A watch the kernel refuses leaves the
 * step unwatched (-1 with errno; nothing of it is left in the set): then it is read at every
 * tick (exec_child_tick). */
static int step_register(struct mysql_step *s)
{
    if (s->epfd < 0 || (conn_register(s, &s->main) == 0 && conn_register(s, &s->kill) == 0))
        return 0;
    int saved = errno;
    conn_unregister(s, &s->main);
    conn_unregister(s, &s->kill);
    s->epfd = -1;
    errno = saved;
    return -1;
}

static void conn_close(struct mysql_step *s, struct conn *c)
{
    conn_unregister(s, c); /* before the number is free for another descriptor */
    if (c->m)
        mysql_close(c->m);
    c->m = NULL;
    c->wait = 0;
    c->lib_until = INT64_MAX;
}

/* ---- KILL QUERY from a second connection ---- */

/* Moves the kill connection on. Best effort: if it cannot connect or send, the statement is
 * abandoned when the drain runs out (step_check). */
static void kill_advance(struct mysql_step *s, int ready)
{
    MYSQL *k = s->kill.m;
    const struct mysql_dsn *d = &s->dsn;
    while (s->kill_state == KILLER_CONNECT || s->kill_state == KILLER_QUERY) {
        bool start = s->kill.wait == 0;
        int status;
        if (s->kill_state == KILLER_CONNECT)
            status = start ? mysql_real_connect_start(&s->kill_ret_m, k, d->host, d->user,
                                                      d->password ? d->password : "", d->db,
                                                      d->port, NULL, 0)
                           : mysql_real_connect_cont(&s->kill_ret_m, k, ready);
        else
            status = start ? mysql_real_query_start(&s->kill_ret_i, k, s->kill_sql,
                                                    (unsigned long)strlen(s->kill_sql))
                           : mysql_real_query_cont(&s->kill_ret_i, k, ready);
        ready = 0;
        conn_wait(&s->kill, status);
        if (status)
            return;
        struct err ignored;
        if (s->kill_state == KILLER_CONNECT &&
            mysql_conn_connected(k, s->kill_ret_m != NULL, d, &ignored) == 0) {
            s->kill_state = KILLER_QUERY;
            continue;
        }
        /* sent ("unknown thread" when the statement ended meanwhile: nothing to do), or not */
        conn_close(s, &s->kill);
        s->kill_state = KILLER_OVER;
    }
}

static void kill_start(struct mysql_step *s)
{
    if (s->kill_state != KILLER_NONE)
        return;
    s->kill.m = mysql_conn_prepare(&s->dsn, KILL_TIMEOUT_S);
    snprintf(s->kill_sql, sizeof s->kill_sql, "KILL QUERY %lu", mysql_thread_id(s->main.m));
    s->kill_state = KILLER_CONNECT;
    kill_advance(s, 0);
}

/* ---- the run: templates, the guard, statements ---- */

/* No more calls on the main connection; the step is done once the kill connection is too. */
static void run_end(struct mysql_step *s)
{
    s->over = true;
    s->busy = false;
    s->op = OP_NONE;
}

static bool step_done(const struct mysql_step *s) { return s->over && s->kill.wait == 0; }

/* Sends sql (owned) next, unless the run was stopped meanwhile. */
static void issue(struct mysql_step *s, enum purpose purpose, char *sql)
{
    if (s->why != EXEC_DONE) {
        free(sql);
        run_end(s);
        return;
    }
    s->purpose = purpose;
    s->sql = sql;
    s->first = true;
    s->busy = true;
    s->op = OP_QUERY;
}

static const char *account_part(const struct mysql_step *s, size_t part)
{
    return json_string_value(json_array_get(json_array_get(s->accounts, s->account), part));
}

static void go_on(struct mysql_step *s);

/* The guard's live look at the next account the template names, then the statement itself. */
static void guard_next(struct mysql_step *s)
{
    MYSQL *m = s->main.m;
    if (s->account < json_array_size(s->accounts)) {
        char *sql = mysql_conn_privileges_query(m, account_part(s, 0), account_part(s, 1));
        if (sql) {
            issue(s, Q_PRIVILEGES, sql);
        } else {
            exec_mysql_unverifiable(m, account_part(s, 0), account_part(s, 1), &s->res);
            run_end(s);
        }
        return;
    }
    if (s->guard_only) {
        go_on(s);
        return;
    }
    char *sql;
    struct err e;
    if (mysql_conn_render_captured(m, s->tmpl, s->plan.args, s->plan.captured, &sql, &e) < 0) {
        snprintf(s->res.message, sizeof s->res.message, "mysql.%s: %s", s->name, e.msg);
        run_end(s);
        return;
    }
    issue(s, Q_STATEMENT, sql);
}

/* Renders nothing yet: the guard's rules (reserved names, system schemas) first, then each
 * account's live privileges (guard_next). */
static void start_template(struct mysql_step *s, const char *tmpl, const char *name,
                           bool want_value, bool guard_only)
{
    struct err e;
    s->tmpl = tmpl;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->want_value = want_value;
    s->guard_only = guard_only;
    json_decref(s->accounts);
    s->accounts = json_array();
    s->account = 0;
    if (mysql_conn_guard(tmpl, s->plan.args, &s->plan.guard, s->accounts, &e) < 0) {
        snprintf(s->res.message, sizeof s->res.message, "%s: %s", err_tencent_code(e.code), e.msg);
        run_end(s);
        return;
    }
    guard_next(s);
}

/* The next template of the run: the capture, done_if, then the statements (only guarded when
 * done_if found the work done); at the end the run is done. */
static void go_on(struct mysql_step *s)
{
    const char *t;
    char name[48];
    switch (s->stage) {
    case ST_CONNECT:
        s->stage = ST_CAPTURE;
        if ((t = exec_mysql_plan_template(&s->plan, "capture"))) {
            start_template(s, t, "capture", true, false);
            return;
        }
        /* fall through */
    case ST_CAPTURE:
        s->stage = ST_DONE_IF;
        if ((t = exec_mysql_plan_template(&s->plan, "done_if"))) {
            start_template(s, t, "done_if", true, false);
            return;
        }
        /* fall through */
    case ST_DONE_IF:
        s->stage = s->already_done ? ST_GUARD_ONLY : ST_STATEMENTS;
        s->next_statement = 0;
        /* fall through */
    case ST_GUARD_ONLY:
    case ST_STATEMENTS:
        t = exec_mysql_plan_statement(&s->plan, s->next_statement, name, sizeof name);
        if (!t) {
            exec_mysql_plan_done(&s->plan, &s->res);
            run_end(s);
            return;
        }
        s->next_statement++;
        start_template(s, t, name, false, s->stage == ST_GUARD_ONLY);
        return;
    }
}

/* A capture's or done_if's value arrived: keep what it says, then go on. */
static void template_done(struct mysql_step *s)
{
    if (s->stage == ST_CAPTURE) {
        s->plan.own_capture = s->value;
        if (!s->plan.captured)
            s->plan.captured = s->plan.own_capture;
    } else if (s->stage == ST_DONE_IF) {
        const char *text = json_string_value(json_object_get(s->value, "value"));
        s->already_done = text && *text && strcmp(text, "0") != 0;
        json_decref(s->value);
    }
    s->value = NULL;
    go_on(s);
}

/* Frees a guard check's result set; when the check denied the account (its verdict already in
 * s->res), ends the run and returns true. The row a verdict quoted lives in the set, so the set is
 * freed only after the verdict was written. */
static bool check_result_drop(struct mysql_step *s, bool denied)
{
    mysql_free_result(s->kept);
    s->kept = NULL;
    if (denied)
        run_end(s);
    return denied;
}

/* An account with SUPER, FILE, GRANT OPTION, any privilege on a system schema... was not made
 * by a tenant; nor was one holding a MariaDB role. */
static void privileges_checked(struct mysql_step *s, int rc)
{
    const char *user = account_part(s, 0), *host = account_part(s, 1);
    MYSQL *m = s->main.m;
    if (rc < 0) {
        exec_mysql_unverifiable(m, user, host, &s->res); /* fails closed */
        run_end(s);
        return;
    }
    MYSQL_ROW row = exec_mysql_operator_privilege(s->kept);
    if (row) {
        char what[300];
        snprintf(what, sizeof what, "holds %.40s%s%.64s%s, which tenants cannot have",
                 row[2] ? row[2] : "", row[1] ? " on " : "", row[1] ? row[1] : "",
                 row[3] && strcmp(row[3], "YES") == 0 ? " WITH GRANT OPTION" : "");
        exec_mysql_denied(&s->res, user, host, what);
    }
    if (check_result_drop(s, row != NULL))
        return;
    char *sql = mysql_conn_roles_query(m, user, host);
    if (sql) {
        issue(s, Q_ROLES, sql);
    } else {
        exec_mysql_unverifiable(m, user, host, &s->res);
        run_end(s);
    }
}

static void roles_checked(struct mysql_step *s, int rc)
{
    const char *user = account_part(s, 0), *host = account_part(s, 1);
    if (rc < 0 && s->last_errno != 1146) { /* 1146: no such table (MySQL): no roles */
        exec_mysql_unverifiable(s->main.m, user, host, &s->res);
        run_end(s);
        return;
    }
    MYSQL_ROW row = rc < 0 ? NULL : mysql_fetch_row(s->kept);
    if (row) {
        char what[160];
        snprintf(what, sizeof what, "holds the role %.64s", row[0] ? row[0] : "");
        exec_mysql_denied(&s->res, user, host, what);
    }
    if (check_result_drop(s, row != NULL))
        return;
    s->account++;
    guard_next(s);
}

static void statement_done(struct mysql_step *s, int rc)
{
    if (rc == -1 && !s->want_value && exec_mysql_plan_ignorable(&s->plan, s->last_errno)) {
        s->plan.ignored++;
        s->plan.ignored_errno = s->last_errno;
        rc = 0;
    }
    if (rc == -1)
        exec_mysql_plan_fail(&s->plan, s->main.m, &s->res);
    if (rc < 0) { /* -2: a capture of the wrong shape, its message set */
        run_end(s);
        return;
    }
    s->plan.ran += !s->want_value;
    template_done(s);
}

/* The query ended: 0; -1 for a MySQL error (the connection's); -2 with res.message filled for a
 * capture of the wrong shape. */
static void query_done(struct mysql_step *s, int rc)
{
    s->busy = false;
    s->last_errno = rc == -1 ? mysql_errno(s->main.m) : 0;
    if (rc == 0 && s->purpose == Q_STATEMENT && !s->want_value)
        exec_mysql_crash_hook(s->sql);
    free(s->sql);
    s->sql = NULL;
    if (s->why != EXEC_DONE) {
        mysql_free_result(s->kept);
        s->kept = NULL;
        json_decref(s->value);
        s->value = NULL;
        run_end(s);
        return;
    }
    switch (s->purpose) {
    case Q_PRIVILEGES:
        privileges_checked(s, rc);
        break;
    case Q_ROLES:
        roles_checked(s, rc);
        break;
    case Q_STATEMENT:
        statement_done(s, rc);
        break;
    }
}

/* ---- the main connection's calls ---- */

static void more_results(struct mysql_step *s)
{
    s->first = false;
    if (mysql_more_results(s->main.m))
        s->op = OP_NEXT;
    else
        query_done(s, 0);
}

/* The next result of the statement: stored (a guard's query keeps its one result; with
 * want_value the first one is the value), or none. */
static void next_result(struct mysql_step *s)
{
    if (s->purpose != Q_STATEMENT || mysql_field_count(s->main.m) > 0) {
        s->op = OP_STORE;
    } else if (s->first && s->want_value) {
        snprintf(s->res.message, sizeof s->res.message,
                 "capture: expected a SELECT returning one value");
        query_done(s, -2);
    } else {
        more_results(s);
    }
}

static void stored(struct mysql_step *s, MYSQL_RES *res)
{
    if (!res) {
        query_done(s, -1);
    } else if (s->purpose != Q_STATEMENT) {
        s->kept = res;
        query_done(s, 0);
    } else if (s->first && s->want_value &&
               !(s->value = exec_mysql_take_value(res, s->res.message, sizeof s->res.message))) {
        mysql_free_result(res);
        query_done(s, -2);
    } else {
        mysql_free_result(res);
        more_results(s);
    }
}

static void connected(struct mysql_step *s)
{
    struct err e;
    if (mysql_conn_connected(s->main.m, s->ret_m != NULL, &s->dsn, &e) < 0) {
        snprintf(s->res.message, sizeof s->res.message, "%s", e.msg);
        run_end(s);
    } else if (s->why != EXEC_DONE) {
        run_end(s);
    } else {
        go_on(s);
    }
}

/* The call of s->op ended: what it means and what comes next (s->op, or the run's end). */
static void op_done(struct mysql_step *s)
{
    enum op op = s->op;
    s->op = OP_NONE;
    switch (op) {
    case OP_CONNECT:
        connected(s);
        break;
    case OP_QUERY:
        if (s->ret_i)
            query_done(s, -1);
        else
            next_result(s);
        break;
    case OP_STORE:
        stored(s, s->ret_res);
        break;
    case OP_NEXT:
        if (s->ret_i == 0)
            next_result(s);
        else
            query_done(s, s->ret_i > 0 ? -1 : 0);
        break;
    case OP_NONE:
        run_end(s);
        break;
    }
}

/* Starts s->op, or continues it with what is ready; its wait status (0: it ended). */
static int op_call(struct mysql_step *s, int ready)
{
    MYSQL *m = s->main.m;
    const struct mysql_dsn *d = &s->dsn;
    bool start = s->main.wait == 0;
    switch (s->op) {
    case OP_CONNECT:
        return start ? mysql_real_connect_start(&s->ret_m, m, d->host, d->user,
                                                d->password ? d->password : "", d->db, d->port,
                                                NULL, 0)
                     : mysql_real_connect_cont(&s->ret_m, m, ready);
    case OP_QUERY:
        return start ? mysql_real_query_start(&s->ret_i, m, s->sql, (unsigned long)strlen(s->sql))
                     : mysql_real_query_cont(&s->ret_i, m, ready);
    case OP_STORE:
        return start ? mysql_store_result_start(&s->ret_res, m)
                     : mysql_store_result_cont(&s->ret_res, m, ready);
    case OP_NEXT:
        return start ? mysql_next_result_start(&s->ret_i, m)
                     : mysql_next_result_cont(&s->ret_i, m, ready);
    case OP_NONE:
        break;
    }
    return 0;
}

/* Runs the main connection's calls as far as they go without waiting. ready: what is ready for
 * the call in flight (0: nothing; a call not yet started needs nothing). */
static void main_advance(struct mysql_step *s, int ready)
{
    while (!s->over) {
        if (s->main.wait && !ready)
            return;
        int status = op_call(s, ready);
        ready = 0;
        conn_wait(&s->main, status);
        if (status)
            return;
        op_done(s);
    }
}

/* ---- the clock: ctl->poll, the timeout, the drain ---- */

/* With poll, asks ctl->poll whether to stop (it goes on being asked while the statement drains:
 * that renews the caller's lease). On the first stop request or at the deadline a statement in
 * flight gets KILL QUERY and DRAIN_MS to end; after that both sockets are shut down, so the
 * library reads EOF and its call ends with an error. */
static void step_check(struct mysql_step *s, bool poll)
{
    int64_t now = now_ms();
    bool stop = poll && s->ctl && s->ctl->poll && s->ctl->poll(s->ctl->ctx);
    if (s->why == EXEC_DONE && !s->over) {
        if (now >= s->deadline)
            s->why = EXEC_TIMEOUT;
        else if (stop)
            s->why = EXEC_STOPPED;
        if (s->why != EXEC_DONE) {
            s->drain_until = now + DRAIN_MS;
            if (s->busy)
                kill_start(s);
        }
    }
    if (s->why != EXEC_DONE && !s->abandoned && now >= s->drain_until) {
        s->abandoned = true;
        if (s->main.wait)
            shutdown((int)mysql_get_socket(s->main.m), SHUT_RDWR);
        if (s->kill.wait)
            shutdown((int)mysql_get_socket(s->kill.m), SHUT_RDWR);
    }
}

/* Waits up to timeout_ms (0: not at all) for either socket, and moves on what is ready. */
static void step_pump(struct mysql_step *s, int64_t timeout_ms)
{
    struct conn *cs[2] = {&s->main, &s->kill};
    struct pollfd pfd[2];
    for (int i = 0; i < 2; i++) {
        short ev = cs[i]->wait ? conn_poll_events(cs[i]) : 0;
        pfd[i] = (struct pollfd){ev ? (int)mysql_get_socket(cs[i]->m) : -1, ev, 0};
    }
    if (poll(pfd, 2, (int)(timeout_ms > 0 ? timeout_ms : 0)) < 0)
        pfd[0].revents = pfd[1].revents = 0;
    int64_t now = now_ms();
    int ready = conn_ready(&s->kill, pfd[1].revents, now);
    if (ready)
        kill_advance(s, ready);
    ready = conn_ready(&s->main, pfd[0].revents, now);
    if (ready)
        main_advance(s, ready);
}

static int64_t step_due_ms(const struct mysql_step *s)
{
    if (step_done(s))
        return 0;
    int64_t due = INT64_MAX;
    if (s->why == EXEC_DONE && !s->over)
        due = s->deadline;
    else if (s->why != EXEC_DONE && !s->abandoned)
        due = s->drain_until;
    if (s->main.wait)
        due = min64(due, s->main.lib_until);
    if (s->kill.wait)
        due = min64(due, s->kill.lib_until);
    return due;
}

/* Runs s to its end on this thread. */
static void step_run_here(struct mysql_step *s)
{
    while (!step_done(s)) {
        int64_t now = now_ms();
        step_pump(s, min64(step_due_ms(s), s->next_poll) - now);
        now = now_ms();
        bool poll = now >= s->next_poll;
        if (poll)
            s->next_poll = now + TICK_MS;
        step_check(s, poll);
    }
}

/* ---- exec_child_* ---- */

static int ops_attach(struct exec_child *c, int epfd, void *tag)
{
    struct mysql_step *s = (struct mysql_step *)c;
    s->epfd = epfd;
    s->tag = tag;
    return step_register(s);
}

static bool ops_on_event(struct exec_child *c)
{
    struct mysql_step *s = (struct mysql_step *)c;
    step_pump(s, 0);
    step_check(s, false);
    step_register(s);
    return step_done(s);
}

static bool ops_tick(struct exec_child *c, bool poll)
{
    struct mysql_step *s = (struct mysql_step *)c;
    step_check(s, poll);
    step_pump(s, 0); /* the library's own timeouts; all of the I/O when unwatched */
    step_register(s);
    return step_done(s);
}

static int64_t ops_due_ms(const struct exec_child *c)
{
    return step_due_ms((const struct mysql_step *)c);
}

static void ops_finish(struct exec_child *c, struct exec_result *out)
{
    struct mysql_step *s = (struct mysql_step *)c;
    if (!step_done(s)) { /* finished early: stopped as a kill would stop it, here */
        if (s->why == EXEC_DONE && !s->over) {
            s->why = EXEC_STOPPED;
            s->drain_until = now_ms() + DRAIN_MS;
            if (s->busy)
                kill_start(s);
        }
        step_run_here(s);
    }
    conn_close(s, &s->main);
    conn_close(s, &s->kill);
    *out = s->res;
    if (s->why != EXEC_DONE) {
        json_decref(out->output);
        out->output = NULL;
        out->outcome = s->why;
        out->exit_code = -1;
        if (s->why == EXEC_TIMEOUT)
            snprintf(out->message, sizeof out->message, "timed out after %u s", s->timeout_s);
        else
            snprintf(out->message, sizeof out->message, "stopped by request");
    }
    exec_utf8_fix(out->message);
    mysql_free_result(s->kept);
    json_decref(s->value);
    json_decref(s->accounts);
    free(s->sql);
    exec_mysql_plan_free(&s->plan);
    mysql_dsn_free(&s->dsn);
    free(s);
}

static const struct exec_child_ops mysql_step_ops = {ops_attach, ops_on_event, ops_tick, ops_due_ms,
                                                     ops_finish};

/* ---- starting ---- */

struct exec_child *exec_mysql_start(const struct exec_job *job, const struct exec_control *ctl,
                                    struct exec_result *out)
{
    struct mysql_dsn d;
    struct err e;
    out->outcome = EXEC_FAILED;
    out->exit_code = -1;
    if (!job->dsn || strncasecmp(job->dsn, "mysql://", 8) != 0) {
        snprintf(out->message, sizeof out->message,
                 "this step needs an instance with a mysql:// DSN");
        return NULL;
    }
    if (mysql_dsn_parse(job->dsn, &d, &e) < 0) {
        snprintf(out->message, sizeof out->message, "%s", e.msg);
        exec_utf8_fix(out->message);
        return NULL;
    }
    struct mysql_step *s = xcalloc(1, sizeof *s);
    s->base.ops = &mysql_step_ops;
    exec_mysql_plan_init(&s->plan, job);
    s->dsn = d;
    s->ctl = ctl;
    s->timeout_s = job->timeout_s;
    s->res.outcome = EXEC_FAILED;
    s->res.exit_code = -1;
    s->epfd = -1;
    s->main.reg_fd = s->kill.reg_fd = -1;
    s->main.lib_until = s->kill.lib_until = INT64_MAX;
    s->why = EXEC_DONE;
    s->next_poll = now_ms() + TICK_MS;
    s->deadline = job->timeout_s ? now_ms() + (int64_t)job->timeout_s * 1000 : INT64_MAX;
    s->main.m = mysql_conn_prepare(&s->dsn, 0);
    s->op = OP_CONNECT;
    s->stage = ST_CONNECT;
    main_advance(s, 0);
    return &s->base;
}

int exec_mysql_run(const struct exec_job *job, const struct exec_control *ctl,
                   struct exec_result *out, struct err *e)
{
    (void)e; /* the action was validated; everything from here on is an outcome */
    struct exec_child *c = exec_mysql_start(job, ctl, out);
    if (!c)
        return 0;
    step_run_here((struct mysql_step *)c);
    ops_finish(c, out);
    return 0;
}
