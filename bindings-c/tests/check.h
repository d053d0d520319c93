/* A tiny test harness for the C tests: counts checks, reports failures with file:line and the
 * library's last error, and ends with a "N passed" summary line. */
#ifndef NATSBRIDGE_TEST_CHECK_H
#define NATSBRIDGE_TEST_CHECK_H

#include <natsbridge.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (cond) {                                                                               \
            checks_passed++;                                                                      \
        } else {                                                                                  \
            checks_failed++;                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, #cond,       \
                    natsbridge_last_error());                                                     \
        }                                                                                         \
    } while (0)

/* A call that must return `expected`; on a mismatch both status names and the message show. */
#define CHECK_STATUS(call, expected)                                                              \
    do {                                                                                          \
        natsbridge_status got_ = (call);                                                          \
        if (got_ == (expected)) {                                                                 \
            checks_passed++;                                                                      \
        } else {                                                                                  \
            checks_failed++;                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s returned %s, expected %s (last error: %s)\n",         \
                    __FILE__, __LINE__, #call, natsbridge_status_name(got_),                      \
                    natsbridge_status_name(expected), natsbridge_last_error());                   \
        }                                                                                         \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, NATSBRIDGE_STATUS_OK)

/* Stops the program: for setup steps whose failure makes the rest meaningless. */
#define REQUIRE_OK(call)                                                                          \
    do {                                                                                          \
        natsbridge_status got_ = (call);                                                          \
        if (got_ != NATSBRIDGE_STATUS_OK) {                                                       \
            fprintf(stderr, "FATAL %s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #call,       \
                    natsbridge_status_name(got_), natsbridge_last_error());                       \
            exit(2);                                                                              \
        }                                                                                         \
    } while (0)

static int check_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

#endif
