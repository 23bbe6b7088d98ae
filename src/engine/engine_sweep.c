/* Leftovers after a crash: each exec step's process group is recorded in the store while it runs
 * (with the machine's boot id and the child's start time), and a node that starts kills the
 * groups its previous run left behind before it claims anything (DESIGN.md 5). A kill -9 of
 * asyncd kills its direct children (PR_SET_PDEATHSIG) but not what they started. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/engine_int.h"

#define GONE_WAIT_MS 1000 /* how long a killed group gets to disappear before claims begin */

static void read_boot_id(char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f)
        return;
    if (fgets(out, (int)cap, f))
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

/* pid's process group, start time (ticks after boot) and whether it is a zombie (dead, only not
 * reaped yet) from /proc/PID/stat; -1 when gone. The command name may hold spaces and
 * parentheses, so fields are counted after the last ')'. */
static int proc_stat(int pid, long long *pgrp, long long *start, bool *zombie)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* after ')': state(3) ppid(4) pgrp(5) ... starttime(22) */
    int field = 2;
    char *save = NULL; /* strtok_r: workers identify their children at once */
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        field++;
        if (field == 3)
            *zombie = tok[0] == 'Z' || tok[0] == 'X';
        if (field == 5)
            *pgrp = atoll(tok);
        if (field == 22) {
            *start = atoll(tok);
            return 0;
        }
    }
    return -1;
}

void engine_pgroup_identify(struct step_pgroup *g, int pid)
{
    long long pgrp = 0, start = 0;
    bool zombie;
    g->boot_id[0] = '\0';
    g->start_ticks = 0;
    if (proc_stat(pid, &pgrp, &start, &zombie) != 0)
        return;
    read_boot_id(g->boot_id, sizeof g->boot_id);
    g->start_ticks = start;
}

/* Whether pid's environment names the task (ASYNCD_TASK_ID=id): what every step child gets and,
 * unless it scrubs its environment, passes on to what it starts. */
static bool environ_names_task(int pid, const char *task_id)
{
    char path[64], want[STORE_ID_MAX + 20], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    snprintf(want, sizeof want, "ASYNCD_TASK_ID=%s", task_id);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
        if (strcmp(buf + i, want) == 0)
            return true;
    return false;
}

struct group_view {
    int members, live; /* live: not zombies */
    bool leader_matches, leader_differs, older_member, names_task;
};

/* Looks at every process in g's group. */
static void group_view(const struct step_pgroup *g, struct group_view *v)
{
    memset(v, 0, sizeof *v);
    DIR *d = opendir("/proc");
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        int pid = atoi(de->d_name);
        long long pgrp, start;
        bool zombie = false;
        if (proc_stat(pid, &pgrp, &start, &zombie) != 0 || pgrp != g->pgid)
            continue;
        v->members++;
        v->live += !zombie;
        if (start < g->start_ticks)
            v->older_member = true;
        if (pid == g->pgid) {
            v->leader_matches = start == g->start_ticks;
            v->leader_differs = start != g->start_ticks;
        }
        if (!v->names_task && environ_names_task(pid, g->task_id))
            v->names_task = true;
    }
    closedir(d);
}

/* NULL when g names a group of ours still alive to be killed, else why it is left alone. A pgid
 * is reused only once its group is empty, so a live group whose leader is the child we recorded
 * (same boot, same start time) is ours; without its leader, every member must be younger than
 * the child and one must carry the task's id in its environment. */
static const char *refusal(const struct step_pgroup *g, const char *boot_id, bool *gone)
{
    *gone = false;
    if (g->pgid <= 1 || g->pgid == getpid() || g->pgid == getpgrp())
        return "it is not a step's group (0, 1 or asyncd's own)";
    if (!g->boot_id[0] || !boot_id[0])
        return "/proc could not tell its start time, so it cannot be told from a reused group";
    if (strcmp(g->boot_id, boot_id) != 0) {
        *gone = true; /* the machine rebooted since: nothing of that run survives */
        return NULL;
    }
    struct group_view v;
    group_view(g, &v);
    if (v.live == 0) { /* zombies are dead already: nothing of the step runs */
        *gone = true;
        return NULL;
    }
    if (v.leader_differs || v.older_member)
        return "its number now belongs to another process group";
    if (!v.leader_matches && !v.names_task)
        return "its leader is gone and no member carries the task's ASYNCD_TASK_ID";
    return NULL;
}

/* Whether a process of the group still runs (zombies, waiting for whoever reaps orphans, do not).
 */
static bool group_alive(const struct step_pgroup *g)
{
    struct group_view v;
    group_view(g, &v);
    return v.live > 0;
}

static void sweep_one(struct store *s, const struct step_pgroup *g, const char *boot_id)
{
    bool gone;
    const char *why = refusal(g, boot_id, &gone);
    if (why) {
        log_warn("engine: left process group %lld of task %s alone: %s", (long long)g->pgid,
                 g->task_id, why);
    } else if (!gone) {
        kill(-(pid_t)g->pgid, SIGKILL);
        int64_t until = engine_mono_ms() + GONE_WAIT_MS;
        while (group_alive(g) && engine_mono_ms() < until) {
            struct timespec pause = {0, 10 * 1000000L};
            nanosleep(&pause, NULL);
        }
        log_warn("engine: killed process group %lld, left running by task %s's step when this "
                 "node last stopped without cleaning up%s",
                 (long long)g->pgid, g->task_id,
                 group_alive(g) ? " (some of it is still exiting)" : "");
    }
    struct err e;
    if (store_pgroup_clear(s, g->node, g->pgid, &e) != 0)
        log_warn("engine: clearing the record of process group %lld: %s", (long long)g->pgid,
                 e.msg);
}

void engine_sweep_leftovers(struct store *s, const char *node)
{
    struct step_pgroup *rows;
    size_t n;
    struct err e;
    if (store_pgroup_list(s, node, &rows, &n, &e) != 0) {
        log_warn("engine: cannot list the process groups this node's last run left: %s; "
                 "leftover steps are not killed",
                 e.msg);
        return;
    }
    char boot_id[40];
    read_boot_id(boot_id, sizeof boot_id);
    for (size_t i = 0; i < n; i++)
        sweep_one(s, &rows[i], boot_id);
    free(rows);
}
