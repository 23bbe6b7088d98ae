/* Canonical task states, the transition table of DESIGN.md section 4, and operator verbs. */
#include "task/task_state.h"

#include <string.h>

static const char *const state_names[TASK_STATE_COUNT] = {
    [TASK_INITIAL] = "initial", [TASK_RUNNING] = "running", [TASK_PAUSED] = "paused",
    [TASK_UNDOED] = "undoed",   [TASK_FAILED] = "failed",   [TASK_SUCCESS] = "success",
    [TASK_KILLED] = "killed",   [TASK_REMOVED] = "removed", [TASK_WAITING] = "waiting",
};

/* allowed[from] is a bit set of the states `from` may move to. */
#define BIT(s) (1u << (s))
static const unsigned allowed[TASK_STATE_COUNT] = {
    [TASK_INITIAL] = BIT(TASK_RUNNING) | BIT(TASK_REMOVED),
    [TASK_RUNNING] = BIT(TASK_SUCCESS) | BIT(TASK_PAUSED) | BIT(TASK_UNDOED) | BIT(TASK_FAILED) |
                     BIT(TASK_KILLED) | BIT(TASK_WAITING),
    /* running <-> waiting as a switch waits for and reaches its window; an operator may kill it */
    [TASK_WAITING] = BIT(TASK_RUNNING) | BIT(TASK_KILLED),
    [TASK_PAUSED] = BIT(TASK_RUNNING) | BIT(TASK_UNDOED) | BIT(TASK_FAILED) | BIT(TASK_KILLED),
};

const char *task_state_name(enum task_state s)
{
    return (unsigned)s < TASK_STATE_COUNT ? state_names[s] : "unknown";
}

int task_state_parse(const char *word, enum task_state *out)
{
    for (int s = 0; s < TASK_STATE_COUNT; s++)
        if (strcmp(word, state_names[s]) == 0) {
            *out = (enum task_state)s;
            return 0;
        }
    return -1;
}

bool task_state_is_final(enum task_state s)
{
    return s == TASK_UNDOED || s == TASK_FAILED || s == TASK_SUCCESS || s == TASK_KILLED ||
           s == TASK_REMOVED;
}

bool task_state_can_move(enum task_state from, enum task_state to)
{
    return (unsigned)from < TASK_STATE_COUNT && (unsigned)to < TASK_STATE_COUNT &&
           (allowed[from] & BIT(to)) != 0;
}

static const char *const verb_names[VERB_COUNT] = {
    [VERB_PAUSE] = "pause", [VERB_RESUME] = "resume", [VERB_SKIP] = "skip",
    [VERB_UNDO] = "undo",   [VERB_KILL] = "kill",     [VERB_REMOVE] = "remove",
};

int task_verb_parse(const char *word, enum task_verb *out)
{
    for (int v = 0; v < VERB_COUNT; v++)
        if (strcmp(word, verb_names[v]) == 0) {
            *out = (enum task_verb)v;
            return 0;
        }
    return -1;
}

const char *task_verb_name(enum task_verb v)
{
    return (unsigned)v < VERB_COUNT ? verb_names[v] : "unknown";
}

struct verb_rule {
    enum task_state from;
    enum task_state to;
};

/* Each verb's legal (from -> to) moves, repeated to fill the row (a zero entry would read as
 * initial -> initial); anything else is refused with a reason. */
static const struct verb_rule verb_rules[VERB_COUNT][3] = {
    [VERB_PAUSE] = {{TASK_RUNNING, TASK_PAUSED},
                    {TASK_RUNNING, TASK_PAUSED},
                    {TASK_RUNNING, TASK_PAUSED}},
    [VERB_RESUME] = {{TASK_PAUSED, TASK_RUNNING},
                     {TASK_PAUSED, TASK_RUNNING},
                     {TASK_PAUSED, TASK_RUNNING}},
    [VERB_SKIP] = {{TASK_PAUSED, TASK_RUNNING},
                   {TASK_PAUSED, TASK_RUNNING},
                   {TASK_PAUSED, TASK_RUNNING}},
    [VERB_UNDO] = {{TASK_PAUSED, TASK_RUNNING},
                   {TASK_RUNNING, TASK_RUNNING},
                   {TASK_RUNNING, TASK_RUNNING}},
    [VERB_KILL] = {{TASK_RUNNING, TASK_KILLED},
                   {TASK_PAUSED, TASK_KILLED},
                   {TASK_WAITING, TASK_KILLED}},
    [VERB_REMOVE] = {{TASK_INITIAL, TASK_REMOVED},
                     {TASK_INITIAL, TASK_REMOVED},
                     {TASK_INITIAL, TASK_REMOVED}},
};

static const char *const verb_needs[VERB_COUNT] = {
    [VERB_PAUSE] = "pause needs a running task",
    [VERB_RESUME] = "resume needs a paused task",
    [VERB_SKIP] = "skip needs a paused task",
    [VERB_UNDO] = "undo needs a paused or running task",
    [VERB_KILL] = "kill needs a running, waiting or paused task",
    [VERB_REMOVE] = "remove needs a task that has not started (initial)",
};

int task_verb_target(enum task_verb verb, enum task_state from, enum task_state *to,
                     const char **why)
{
    if ((unsigned)verb >= VERB_COUNT) {
        *why = "unknown verb";
        return -1;
    }
    for (int i = 0; i < 3; i++)
        if (verb_rules[verb][i].from == from) {
            *to = verb_rules[verb][i].to;
            return 0;
        }
    *why = verb_needs[verb];
    return -1;
}
