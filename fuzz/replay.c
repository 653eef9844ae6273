// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Corpus replay driver: runs a libFuzzer harness (LLVMFuzzerTestOneInput) once on every
 * file named on the command line or found in a named directory. Linked with each harness,
 * it turns the corpus into a regression test that any compiler can build; under the
 * AddressSanitizer build it catches the same faults the fuzzer would.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (!f) {
		perror(path);
		return -1;
	}
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(len > 0 ? (size_t)len : 1);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "%s: read failed\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int files = 0, failed = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			struct dirent **ents;
			int n = scandir(argv[i], &ents, NULL, alphasort);

			for (int j = 0; j < n; j++) {
				char path[4096];

				if (ents[j]->d_name[0] != '.') {
					snprintf(path, sizeof(path), "%s/%s", argv[i],
						 ents[j]->d_name);
					failed += run_file(path) < 0;
					files++;
				}
				free(ents[j]);
			}
			free(ents);
		} else {
			failed += run_file(argv[i]) < 0;
			files++;
		}
	}
	printf("replayed %d inputs, %d unreadable\n", files, failed);
	/* An empty corpus proves nothing: fail rather than pass silently. */
	return files == 0 || failed ? 1 : 0;
}
