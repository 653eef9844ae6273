/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Constants of the trace-cmd .dat file format shared by the reader (dat-file.c,
 * dat-stream.c) and the writer (dat-writer.c): option ids (trace-cmd.dat.v7(5), and
 * vmscope's own) and section flags. One list, so the two cannot disagree.
 */
#ifndef VMS_DAT_FORMAT_H
#define VMS_DAT_FORMAT_H

#include "vmscope/trace-writer.h"

#define DAT_MAGIC "\x17\x08\x44tracing" /* the first 10 bytes of every file */

enum dat_option {
	OPT_DONE = 0,
	OPT_DATE = 1,
	OPT_CPUSTAT = 2,
	OPT_BUFFER = 3,
	OPT_TRACECLOCK = 4,
	OPT_UNAME = 5,
	OPT_CPUCOUNT = 8,
	OPT_VERSION = 9,
	OPT_TRACEID = 11,
	OPT_GUEST = VMS_DAT_OPTION_GUEST,
	OPT_STRINGS = 15,
	OPT_HEADER_INFO = 16,
	OPT_FTRACE_EVENTS = 17,
	OPT_EVENT_FORMATS = 18,
	OPT_KALLSYMS = 19,
	OPT_PRINTK = 20,
	OPT_CMDLINES = 21,
	/* vmscope's own: key=value lines, what a report needs that the trace cannot tell */
	OPT_VMSCOPE_META = VMS_DAT_OPTION_META,
};

#define SEC_FL_COMPRESS 1 /* a section's flags: its content is compressed */

#endif /* VMS_DAT_FORMAT_H */
