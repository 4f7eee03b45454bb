/* A few checks for the C tests: each failing check prints where and why and
 * counts; the test's exit status is the count (0: passed). */
#ifndef NKCLASS_TESTS_CHECK_H
#define NKCLASS_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

#include "nkclass/nkclass.h"

static int check_failures = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            ++check_failures;                                                        \
        }                                                                            \
    } while (0)

/* `call` returns `want`, and a failing call leaves a message naming `needle`. */
#define CHECK_STATUS(call, want, needle)                                                   \
    do {                                                                                   \
        nk_status got_ = (call);                                                           \
        if (got_ != (want)) {                                                              \
            fprintf(stderr, "%s:%d: %s gave %s, expected %s (%s)\n", __FILE__, __LINE__,   \
                    #call, nk_status_name(got_), nk_status_name(want), nk_last_error());   \
            ++check_failures;                                                              \
        } else if ((want) != NK_OK && strstr(nk_last_error(), (needle)) == NULL) {         \
            fprintf(stderr, "%s:%d: %s: message \"%s\" does not name \"%s\"\n", __FILE__,  \
                    __LINE__, #call, nk_last_error(), (needle));                           \
            ++check_failures;                                                              \
        }                                                                                  \
    } while (0)

#endif
