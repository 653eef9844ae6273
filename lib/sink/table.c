// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The table sink (see vmscope/table.h): cells are kept typed, so CSV and JSON carry exact
 * values while the text table scales and rounds them for people.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "vmscope/table.h"

struct column {
	char *key, *title, *suffix;
	enum vms_col_type type;
	double scale;
	int decimals;
};

struct cell {
	bool set;
	union {
		char *s;
		uint64_t u;
		int64_t i;
		double d;
	};
};

struct vms_table {
	struct column *cols;
	int ncols;
	struct cell *cells; /* rows * ncols */
	size_t nrows, cap;
	int err;
};

struct vms_table *vms_table_new(void)
{
	return calloc(1, sizeof(struct vms_table));
}

void vms_table_free(struct vms_table *t)
{
	if (!t)
		return;
	for (size_t r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++)
			if (t->cols[c].type == VMS_COL_STR && t->cells[r * t->ncols + c].set)
				free(t->cells[r * t->ncols + c].s);
	for (int c = 0; c < t->ncols; c++) {
		free(t->cols[c].key);
		free(t->cols[c].title);
		free(t->cols[c].suffix);
	}
	free(t->cols);
	free(t->cells);
	free(t);
}

int vms_table_column(struct vms_table *t, const char *key, const char *title,
		     enum vms_col_type type, double scale, int decimals, const char *suffix)
{
	struct column *nc;

	if (t->nrows)
		return -EBUSY; /* columns first */
	nc = realloc(t->cols, (t->ncols + 1) * sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	t->cols = nc;
	nc = &t->cols[t->ncols];
	nc->key = strdup(key);
	nc->title = strdup(title ? title : key);
	nc->suffix = suffix ? strdup(suffix) : NULL;
	nc->type = type;
	nc->scale = scale > 0 ? scale : 1;
	nc->decimals = decimals;
	if (!nc->key || !nc->title || (suffix && !nc->suffix))
		return -ENOMEM;
	return t->ncols++;
}

int vms_table_row(struct vms_table *t)
{
	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 32;
		struct cell *nc = realloc(t->cells, ncap * t->ncols * sizeof(*nc));

		if (!nc)
			return t->err = -ENOMEM;
		t->cells = nc;
		t->cap = ncap;
	}
	memset(&t->cells[t->nrows * t->ncols], 0, t->ncols * sizeof(struct cell));
	t->nrows++;
	return 0;
}

static struct cell *cur(struct vms_table *t, int col)
{
	if (!t->nrows || col < 0 || col >= t->ncols)
		return NULL;
	return &t->cells[(t->nrows - 1) * t->ncols + col];
}

void vms_table_str(struct vms_table *t, int col, const char *s)
{
	struct cell *c = cur(t, col);

	if (!c || t->cols[col].type != VMS_COL_STR || !s)
		return;
	if (c->set)
		free(c->s);
	c->s = strdup(s);
	c->set = c->s != NULL;
}

void vms_table_u64(struct vms_table *t, int col, uint64_t v)
{
	struct cell *c = cur(t, col);

	if (c && t->cols[col].type == VMS_COL_U64) {
		c->u = v;
		c->set = true;
	}
}

void vms_table_i64(struct vms_table *t, int col, int64_t v)
{
	struct cell *c = cur(t, col);

	if (c && t->cols[col].type == VMS_COL_I64) {
		c->i = v;
		c->set = true;
	}
}

void vms_table_f64(struct vms_table *t, int col, double v)
{
	struct cell *c = cur(t, col);

	if (c && t->cols[col].type == VMS_COL_F64) {
		c->d = v;
		c->set = true;
	}
}

size_t vms_table_rows(const struct vms_table *t)
{
	return t->nrows;
}

/* A cell as text: @human for the aligned table (scaled, rounded, suffixed), else exact. */
static void cell_text(const struct column *col, const struct cell *c, bool human, char *buf,
		      size_t len)
{
	buf[0] = '\0';
	if (!c->set) {
		if (human)
			snprintf(buf, len, "-");
		return;
	}
	switch (col->type) {
	case VMS_COL_STR:
		snprintf(buf, len, "%s", c->s);
		return;
	case VMS_COL_U64:
		if (human && col->scale != 1)
			snprintf(buf, len, "%.*f", col->decimals, (double)c->u / col->scale);
		else
			snprintf(buf, len, "%" PRIu64, c->u);
		break;
	case VMS_COL_I64:
		if (human && col->scale != 1)
			snprintf(buf, len, "%.*f", col->decimals, (double)c->i / col->scale);
		else
			snprintf(buf, len, "%" PRId64, c->i);
		break;
	case VMS_COL_F64:
		if (!isfinite(c->d))
			snprintf(buf, len, human ? "-" : "");
		else if (human)
			snprintf(buf, len, "%.*f", col->decimals, c->d / col->scale);
		else
			snprintf(buf, len, "%.17g", c->d);
		break;
	}
	if (human && col->suffix && (col->type != VMS_COL_F64 || isfinite(c->d)))
		strncat(buf, col->suffix, len - strlen(buf) - 1);
}

static void csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\n\r")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void vms_table_json(const struct vms_table *t, struct vms_json *j, const char *key)
{
	vms_json_array_begin(j, key);
	for (size_t r = 0; r < t->nrows; r++) {
		vms_json_object_begin(j, NULL);
		for (int c = 0; c < t->ncols; c++) {
			const struct cell *cl = &t->cells[r * t->ncols + c];
			const char *k = t->cols[c].key;

			if (!cl->set) {
				vms_json_null(j, k);
				continue;
			}
			switch (t->cols[c].type) {
			case VMS_COL_STR:
				vms_json_string(j, k, cl->s);
				break;
			case VMS_COL_U64:
				vms_json_u64(j, k, cl->u);
				break;
			case VMS_COL_I64:
				vms_json_i64(j, k, cl->i);
				break;
			case VMS_COL_F64:
				vms_json_double(j, k, cl->d);
				break;
			}
		}
		vms_json_object_end(j);
	}
	vms_json_array_end(j);
}

int vms_table_print(const struct vms_table *t, FILE *f, enum vms_format fmt)
{
	char buf[256];

	if (t->err)
		return t->err;
	if (fmt == VMS_FORMAT_JSON) {
		struct vms_json j;

		vms_json_init(&j, f, true);
		vms_table_json(t, &j, NULL);
		return vms_json_finish(&j);
	}
	if (fmt == VMS_FORMAT_CSV) {
		for (int c = 0; c < t->ncols; c++) {
			if (c)
				fputc(',', f);
			csv_field(f, t->cols[c].key);
		}
		fputc('\n', f);
		for (size_t r = 0; r < t->nrows; r++) {
			for (int c = 0; c < t->ncols; c++) {
				if (c)
					fputc(',', f);
				cell_text(&t->cols[c], &t->cells[r * t->ncols + c], false, buf,
					  sizeof(buf));
				csv_field(f, buf);
			}
			fputc('\n', f);
		}
		return ferror(f) ? -EIO : 0;
	}
	{
		size_t *w = calloc((size_t)t->ncols, sizeof(*w));

		if (!w)
			return -ENOMEM;
		for (int c = 0; c < t->ncols; c++) {
			w[c] = strlen(t->cols[c].title);
			for (size_t r = 0; r < t->nrows; r++) {
				cell_text(&t->cols[c], &t->cells[r * t->ncols + c], true, buf,
					  sizeof(buf));
				if (strlen(buf) > w[c])
					w[c] = strlen(buf);
			}
		}
		/* The first column (a name) is left-aligned, numbers right-aligned. */
		for (int c = 0; c < t->ncols; c++)
			fprintf(f, c ? "  %*s" : "%-*s", (int)w[c], t->cols[c].title);
		fputc('\n', f);
		for (size_t r = 0; r < t->nrows; r++) {
			for (int c = 0; c < t->ncols; c++) {
				cell_text(&t->cols[c], &t->cells[r * t->ncols + c], true, buf,
					  sizeof(buf));
				if (t->cols[c].type == VMS_COL_STR && c)
					fprintf(f, "  %-*s", (int)w[c], buf);
				else
					fprintf(f, c ? "  %*s" : "%-*s", (int)w[c], buf);
			}
			fputc('\n', f);
		}
		free(w);
	}
	return ferror(f) ? -EIO : 0;
}
