/* Checks on operators' regular expressions before regcomp (see pattern.h). */
#include "common/pattern.h"

#include <string.h>

/* p points at '['; returns the ']' that closes the bracket expression, or NULL. */
static const char *bracket_end(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++; /* a leading ']' is a member */
    for (; *p && *p != ']'; p++) {
        if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            char kind = p[1];
            const char *close = p + 2;
            while (*close && !(close[0] == kind && close[1] == ']'))
                close++;
            if (!*close)
                return NULL;
            p = close + 1;
        }
    }
    return *p ? p : NULL;
}

bool pattern_is_tame(const char *pattern)
{
    if (strlen(pattern) > PATTERN_MAX_LEN)
        return false;
    bool after_quantifier = false;
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            after_quantifier = false;
            continue;
        }
        if (*p == '[') {
            if (!(p = bracket_end(p)))
                return true;
            after_quantifier = false;
            continue;
        }
        bool quantifier = *p == '?' || *p == '*' || *p == '+' || *p == '{';
        if (quantifier && after_quantifier)
            return false;
        if (*p == '{' && !(p = strchr(p, '}')))
            return true;
        after_quantifier = quantifier;
    }
    return true;
}
