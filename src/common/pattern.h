/* Checks on the POSIX extended regular expressions operators write in templates and catalogues,
 * before they reach regcomp. */
#ifndef ASYNCD_PATTERN_H
#define ASYNCD_PATTERN_H

#include <stdbool.h>

#define PATTERN_MAX_LEN 512

/* False for a pattern longer than PATTERN_MAX_LEN bytes, or with a quantifier applied to a
 * quantifier ("a??", "a*{2}", "a{1,2}+"): POSIX leaves those undefined, and glibc's regcomp spends
 * gigabytes on a run of them ("[a-z]???...?{1,32}", found by fuzz_flows). Bracket expressions and
 * escaped characters are skipped; a malformed pattern passes here and regcomp reports it. */
bool pattern_is_tame(const char *pattern);

#endif
