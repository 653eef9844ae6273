// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer harness for the reader of QEMU command lines that finds a VM's QMP socket
 * (vms_qmp_socket_from_cmdline(), lib/stats/qmp-stats.c): it reads /proc/PID/cmdline of
 * any process, bytes someone else chose. The first input byte picks the size of the
 * caller's path buffer (1 to 256), the rest is the command line (NUL-separated, maybe
 * without its last NUL). The promises checked: a found path is not empty and fits the
 * buffer; otherwise the buffer holds "" and the error is -ENOENT or -ENAMETOOLONG. A
 * broken promise aborts. Linked with replay.c it is the 'fuzz' test that replays
 * fuzz/corpus/qmp-cmdline/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope/qmp.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[257];
	size_t len;
	char *copy;
	int ret;

	if (!size)
		return 0;
	len = (size_t)data[0] + 1;
	/* An exact-size copy: a read past the end is a fault under ASan. */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	memset(path, 'x', sizeof(path));
	ret = vms_qmp_socket_from_cmdline(copy, size - 1, path, len);
	if (ret == 0) {
		CHECK(path[0] != '\0');
		CHECK(strnlen(path, len) < len);
	} else {
		CHECK(ret == -ENOENT || ret == -ENAMETOOLONG);
		CHECK(path[0] == '\0');
	}
	CHECK(path[len] == 'x'); /* nothing written past the buffer */
	free(copy);
	return 0;
}
