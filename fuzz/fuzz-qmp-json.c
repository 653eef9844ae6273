// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for the JSON reader of vmscope's QMP client (lib/stats/qmp.c), which reads
 * what a QEMU monitor socket sends: the greeting, command replies, events. When it accepts
 * an input, the tree is walked and its promises are checked: containers hold as many
 * items as they say, object members have keys that find a member, a string's text is
 * NUL-terminated, vms_qjson_u64() accepts only what reads back as the same decimal digits. A
 * broken promise aborts. Linked with replay.c it is the 'fuzz' test that replays
 * fuzz/corpus/qmp-json/.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope/qmp.h"
#include "fuzz.h"

static volatile size_t sink;

static void walk(const struct vms_qjson *v, int depth)
{
	uint64_t u;

	CHECK(depth < 10000);
	switch (v->type) {
	case VMS_QJSON_STRING:
		CHECK(v->text && vms_qjson_str(v) == v->text);
		sink = strlen(v->text);
		break;
	case VMS_QJSON_NUMBER:
		CHECK(v->text && *v->text);
		if (vms_qjson_u64(v, &u)) {
			char buf[32];

			snprintf(buf, sizeof(buf), "%" PRIu64, u);
			CHECK(!strcmp(buf, v->text));
		}
		break;
	case VMS_QJSON_OBJECT:
		for (size_t i = 0; i < v->n; i++) {
			CHECK(v->keys && v->keys[i]);
			CHECK(vms_qjson_get(v, v->keys[i]) != NULL);
		}
		/* fall through */
	case VMS_QJSON_ARRAY:
		CHECK(!v->n || v->items);
		for (size_t i = 0; i < v->n; i++)
			walk(&v->items[i], depth + 1);
		break;
	default:
		CHECK(!vms_qjson_str(v));
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct vms_qjson *v = vms_qjson_parse((const char *)data, size, err, sizeof(err));

	if (!v) {
		CHECK(err[0]);
		return 0;
	}
	walk(v, 0);
	vms_qjson_free(v);
	return 0;
}
