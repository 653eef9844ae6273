/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CHECK() for the C tests of the kvm suite: count checks and failures, print what failed
 * with its values. The test ends with CHECK_DONE().
 */
#ifndef VMS_TESTS_CHECK_H
#define VMS_TESTS_CHECK_H

#include <stdio.h>

static int failures, checks;

#define CHECK(cond, ...)                     \
	do {                                 \
		checks++;                    \
		if (!(cond)) {               \
			failures++;          \
			printf("FAIL: ");    \
			printf(__VA_ARGS__); \
			printf("\n");        \
		}                            \
	} while (0)

/* The exit status of the test: 0 when every check passed (and at least one ran). */
#define CHECK_DONE() \
	(printf("%d of %d checks failed\n", failures, checks), failures || !checks ? 1 : 0)

#endif /* VMS_TESTS_CHECK_H */
