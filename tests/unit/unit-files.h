/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Scratch files of the unit tests: write one into a temporary directory, remove a tree.
 * Include after <cmocka.h>.
 */
#ifndef VMSCOPE_UNIT_FILES_H
#define VMSCOPE_UNIT_FILES_H

#include <ftw.h>
#include <stdio.h>

/* Write @text to @dir/@name (the test fails if it cannot). */
static inline void unit_write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static inline int unit_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove @path, a file or a whole tree (symbolic links are not followed): 0 or -1. */
static inline int unit_rm_tree(const char *path)
{
	return nftw(path, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
