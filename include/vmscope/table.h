/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A table sink: the rows of a report, printed as an aligned text table for people, CSV
 * (RFC 4180: header once, fields with commas, quotes or newlines quoted) or JSON (an array
 * of objects keyed by column name). Numbers keep their full value for CSV and JSON; the
 * text table rounds them to the column's decimals.
 */
#ifndef VMSCOPE_TABLE_H
#define VMSCOPE_TABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmscope/json.h"
#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vms_col_type { VMS_COL_STR, VMS_COL_U64, VMS_COL_I64, VMS_COL_F64 };
enum vms_format { VMS_FORMAT_TABLE, VMS_FORMAT_CSV, VMS_FORMAT_JSON };

struct vms_table;

/** vms_table_new() - an empty table; free with vms_table_free(). NULL on ENOMEM. */
VMS_API struct vms_table *vms_table_new(void);
VMS_API void vms_table_free(struct vms_table *t);

/**
 * vms_table_column() - add a column
 * @key: its name in CSV and JSON ("min_ns")
 * @title: its header in the text table ("Min Time")
 * @scale: text table only: the value is divided by it (1e3 shows ns as us)
 * @decimals: text table only: digits after the point for VMS_COL_F64 or a scale != 1
 * @suffix: text table only: appended to each value ("%", "us"), or NULL
 * Return: the column index, or -ENOMEM.
 */
VMS_API int vms_table_column(struct vms_table *t, const char *key, const char *title,
			     enum vms_col_type type, double scale, int decimals,
			     const char *suffix);

/** vms_table_row() - start a new row (cells left unset print as empty / null). */
VMS_API int vms_table_row(struct vms_table *t);
VMS_API void vms_table_str(struct vms_table *t, int col, const char *s);
VMS_API void vms_table_u64(struct vms_table *t, int col, uint64_t v);
VMS_API void vms_table_i64(struct vms_table *t, int col, int64_t v);
VMS_API void vms_table_f64(struct vms_table *t, int col, double v);

VMS_API size_t vms_table_rows(const struct vms_table *t);

/**
 * vms_table_print() - print in @fmt; for JSON inside a larger document use
 * vms_table_json() with the caller's writer.
 * Return: 0 or a negative errno (-EIO on a write error).
 */
VMS_API int vms_table_print(const struct vms_table *t, FILE *f, enum vms_format fmt);

/** vms_table_json() - the rows as a JSON array member @key (NULL at top level). */
VMS_API void vms_table_json(const struct vms_table *t, struct vms_json *j, const char *key);

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_TABLE_H */
