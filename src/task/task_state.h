/* The task model shared by the store, the engine and the products: the canonical task states,
 * which transitions between them are legal, and the operator verbs. It depends on nothing. */
#ifndef ASYNCD_TASK_STATE_H
#define ASYNCD_TASK_STATE_H
#include <stdbool.h>

enum task_state {
    TASK_INITIAL,
    TASK_RUNNING,
    TASK_PAUSED,
    TASK_UNDOED,
    TASK_FAILED,
    TASK_SUCCESS,
    TASK_KILLED,
    TASK_REMOVED,
    TASK_WAITING, /* a switch waits for the instance's maintenance window (cdb UNDEFINED) */
    TASK_STATE_COUNT
};

/* Lower-case canonical name ("initial", ...); never NULL for a valid state. */
const char *task_state_name(enum task_state s);
/* Parses a canonical name; returns 0, or -1 when the word names no state. */
int task_state_parse(const char *word, enum task_state *out);
bool task_state_is_final(enum task_state s);
/* True when DESIGN.md allows from -> to. */
bool task_state_can_move(enum task_state from, enum task_state to);

/* Operator verbs of the admin API, and the state each leads to. */
enum task_verb {
    VERB_PAUSE,
    VERB_RESUME,
    VERB_SKIP,
    VERB_UNDO,
    VERB_KILL,
    VERB_REMOVE,
    VERB_COUNT
};
int task_verb_parse(const char *word, enum task_verb *out);
const char *task_verb_name(enum task_verb v);
/* The state `verb` moves a task in state `from` to; -1 with *why set when not allowed. */
int task_verb_target(enum task_verb verb, enum task_state from, enum task_state *to,
                     const char **why);

#endif
