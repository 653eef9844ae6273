/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What every harness shares: libFuzzer's entry point (replay.c calls it too) and CHECK,
 * which aborts on a broken promise of the parser, so that the fuzzer and the corpus replay
 * both see it as a crash.
 */
#ifndef VMSCOPE_FUZZ_H
#define VMSCOPE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

#endif
