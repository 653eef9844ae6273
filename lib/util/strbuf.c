// SPDX-License-Identifier: LGPL-2.1-or-later
/* Bounded text building (see struct vms_strbuf in vmscope-local.h). */
#include <stdio.h>

#include "vmscope-local.h"

void vms_sb_add(struct vms_strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->buf + b->len, b->size - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->size - b->len)
		b->full = true;
	else
		b->len += (size_t)n;
}
