/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small helpers shared by the test tools (gentrace, dat2perf).
 */
#ifndef VMS_TOOLS_UTIL_H
#define VMS_TOOLS_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * A whole file in a new NUL-terminated buffer (caller frees), its length in *len.
 * NULL with errno set on failure (ENOMEM, EIO, or open's).
 */
static inline char *tools_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		size_t k;

		if (n + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 16384);

			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		k = fread(buf + n, 1, cap - n - 1, f);
		n += k;
		if (!k)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

#endif /* VMS_TOOLS_UTIL_H */
