// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The exporter-toolkit web configuration file (vmscope/webconfig.h): a YAML file read with
 * libyaml's document loader, then walked along its fixed schema, never recursively into
 * whatever the file holds, so that aliases (even cyclic ones) and deep nesting cost
 * nothing. As exporter-toolkit's yaml.UnmarshalStrict, an unknown or repeated key is an
 * error; a value of the wrong kind is an error; a string may be written plain or quoted, a
 * boolean only plain (YAML 1.1's yes/no/on/off too, as Go's yaml.v2 reads them). Where
 * exporter-toolkit would accept a file that cannot work (tls_server_config without a
 * certificate, min_version above max_version), this parser refuses it at start-up. The
 * cipher suites, curves and versions are Go's names; they become a GnuTLS priority string.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "vmscope-local.h"
#include "webconfig-local.h"

#define WEBCONFIG_MAX_FILE (1u << 20) /* the config file and each PEM file */

/* ---- Go's names ---- */

/* Go's crypto/tls.CipherSuites() (the secure ones) with their GnuTLS parts. */
static const struct cipher_suite {
	const char *name;
	uint16_t id;		       /* IANA's */
	const char *kx, *cipher, *mac; /* NULL kx: a TLS 1.3 suite, always enabled */
} cipher_suites[] = {
	{ "TLS_RSA_WITH_AES_128_CBC_SHA", 0x002F, "RSA", "AES-128-CBC", "SHA1" },
	{ "TLS_RSA_WITH_AES_256_CBC_SHA", 0x0035, "RSA", "AES-256-CBC", "SHA1" },
	{ "TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009C, "RSA", "AES-128-GCM", "AEAD" },
	{ "TLS_RSA_WITH_AES_256_GCM_SHA384", 0x009D, "RSA", "AES-256-GCM", "AEAD" },
	{ "TLS_AES_128_GCM_SHA256", 0x1301, NULL, NULL, NULL },
	{ "TLS_AES_256_GCM_SHA384", 0x1302, NULL, NULL, NULL },
	{ "TLS_CHACHA20_POLY1305_SHA256", 0x1303, NULL, NULL, NULL },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xC009, "ECDHE-ECDSA", "AES-128-CBC", "SHA1" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xC00A, "ECDHE-ECDSA", "AES-256-CBC", "SHA1" },
	{ "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xC013, "ECDHE-RSA", "AES-128-CBC", "SHA1" },
	{ "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xC014, "ECDHE-RSA", "AES-256-CBC", "SHA1" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xC02B, "ECDHE-ECDSA", "AES-128-GCM", "AEAD" },
	{ "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xC02C, "ECDHE-ECDSA", "AES-256-GCM", "AEAD" },
	{ "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xC02F, "ECDHE-RSA", "AES-128-GCM", "AEAD" },
	{ "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xC030, "ECDHE-RSA", "AES-256-GCM", "AEAD" },
	{ "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xCCA8, "ECDHE-RSA", "CHACHA20-POLY1305",
	  "AEAD" },
	{ "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0xCCA9, "ECDHE-ECDSA",
	  "CHACHA20-POLY1305", "AEAD" },
};

static const struct curve {
	const char *name, *group;
} curves[] = {
	{ "CurveP256", "SECP256R1" },
	{ "CurveP384", "SECP384R1" },
	{ "CurveP521", "SECP521R1" },
	{ "X25519", "X25519" },
};

/* The suite or curve of Go's name @name, or NULL. */
static const struct cipher_suite *suite(const char *name)
{
	for (size_t k = 0; name && k < VMS_ARRAY_SIZE(cipher_suites); k++)
		if (!strcmp(name, cipher_suites[k].name))
			return &cipher_suites[k];
	return NULL;
}

static const struct curve *curve(const char *name)
{
	for (size_t k = 0; name && k < VMS_ARRAY_SIZE(curves); k++)
		if (!strcmp(name, curves[k].name))
			return &curves[k];
	return NULL;
}

static const struct {
	const char *name;
	unsigned int version;
	const char *gnutls;
} versions[] = {
	{ "TLS10", VMS_TLS10, "TLS1.0" },
	{ "TLS11", VMS_TLS11, "TLS1.1" },
	{ "TLS12", VMS_TLS12, "TLS1.2" },
	{ "TLS13", VMS_TLS13, "TLS1.3" },
};

static const char *const client_auth_names[] = {
	[VMS_TLS_NO_CLIENT_CERT] = "NoClientCert",
	[VMS_TLS_REQUEST_CLIENT_CERT] = "RequestClientCert",
	[VMS_TLS_REQUIRE_ANY_CLIENT_CERT] = "RequireAnyClientCert",
	[VMS_TLS_VERIFY_CLIENT_CERT_IF_GIVEN] = "VerifyClientCertIfGiven",
	[VMS_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT] = "RequireAndVerifyClientCert",
};

/* The headers exporter-toolkit lets a file set, with their allowed values (NULL: any). */
static const struct {
	const char *name;
	const char *values[3];
} extra_headers[] = {
	{ "Strict-Transport-Security", { NULL } },
	{ "X-Content-Type-Options", { "nosniff", NULL } },
	{ "X-Frame-Options", { "deny", "sameorigin", NULL } },
	{ "X-XSS-Protection", { NULL } },
	{ "Content-Security-Policy", { NULL } },
};

const char *vms_webconfig_client_auth_name(enum vms_tls_client_auth a)
{
	if ((size_t)a < VMS_ARRAY_SIZE(client_auth_names))
		return client_auth_names[a];
	return "?";
}

/* ---- the walk ---- */

struct wc_parser {
	yaml_document_t *doc;
	const char *path;
	char *dir; /* the file's directory, or NULL for the current one */
	unsigned int flags;
	char *err;
	size_t errlen;
	struct vms_webconfig *c;
};

static unsigned long node_line(const yaml_node_t *n)
{
	return n ? (unsigned long)n->start_mark.line + 1 : 1;
}

__attribute__((format(printf, 4, 5))) static int wc_fail(struct wc_parser *p, const yaml_node_t *n,
							 const char *key, const char *fmt, ...)
{
	size_t len;
	va_list ap;

	if (!p->errlen)
		return -VMS_E_PARSE;
	snprintf(p->err, p->errlen, "%s:%lu: %s%s", p->path, node_line(n), key ? key : "",
		 key ? ": " : "");
	len = strlen(p->err);
	va_start(ap, fmt);
	vsnprintf(p->err + len, p->errlen - len, fmt, ap);
	va_end(ap);
	return -VMS_E_PARSE;
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* YAML's null: an empty or ~ or null plain scalar. */
static bool is_null(const yaml_node_t *n)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < VMS_ARRAY_SIZE(nulls); i++)
		if (!strcmp(scalar(n), nulls[i]))
			return true;
	return false;
}

static const char *kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return is_null(n) ? "nothing" : "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

/* A string value (any non-null scalar without NUL bytes); *s NULL for null. */
static int get_string(struct wc_parser *p, const yaml_node_t *n, const char *key, const char **s)
{
	*s = NULL;
	if (is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return wc_fail(p, n, key, "expected a string, found %s", kind(n));
	if (strlen(scalar(n)) != n->data.scalar.length)
		return wc_fail(p, n, key, "the string holds a NUL byte");
	*s = scalar(n);
	return 0;
}

static int get_bool(struct wc_parser *p, const yaml_node_t *n, const char *key, bool *b)
{
	static const char *const yes[] = { "y",	   "Y",	   "yes", "Yes", "YES", "true",
					   "True", "TRUE", "on",  "On",	 "ON" };
	static const char *const no[] = { "n",	   "N",	    "no",  "No",  "NO", "false",
					  "False", "FALSE", "off", "Off", "OFF" };

	if (is_null(n))
		return 0;
	if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		for (size_t i = 0; i < VMS_ARRAY_SIZE(yes); i++) {
			if (!strcmp(scalar(n), yes[i])) {
				*b = true;
				return 0;
			}
			if (!strcmp(scalar(n), no[i])) {
				*b = false;
				return 0;
			}
		}
	}
	if (n->type == YAML_SCALAR_NODE)
		return wc_fail(p, n, key, "expected true or false, found '%.64s'", scalar(n));
	return wc_fail(p, n, key, "expected true or false, found %s", kind(n));
}

/* The items of a list value (none for null); each item a node of the document. */
static int get_list(struct wc_parser *p, const yaml_node_t *n, const char *key,
		    yaml_node_item_t **items, size_t *count)
{
	*count = 0;
	*items = NULL;
	if (is_null(n))
		return 0;
	if (n->type != YAML_SEQUENCE_NODE)
		return wc_fail(p, n, key, "expected a list, found %s", kind(n));
	*items = n->data.sequence.items.start;
	*count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	return 0;
}

/* The pairs of a mapping value (none for null). */
static int get_map(struct wc_parser *p, const yaml_node_t *n, const char *key,
		   yaml_node_pair_t **pairs, size_t *count)
{
	*count = 0;
	*pairs = NULL;
	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return wc_fail(p, n, key, "expected a mapping, found %s", kind(n));
	*pairs = n->data.mapping.pairs.start;
	*count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	return 0;
}

/* Key and value nodes of a pair; the key must be a string. */
static int pair_nodes(struct wc_parser *p, const yaml_node_pair_t *pair, const char *key,
		      const yaml_node_t **k, const yaml_node_t **v, const char **name)
{
	*k = yaml_document_get_node(p->doc, pair->key);
	*v = yaml_document_get_node(p->doc, pair->value);
	if (!*k || !*v)
		return wc_fail(p, NULL, key, "a damaged mapping");
	if ((*k)->type != YAML_SCALAR_NODE)
		return wc_fail(p, *k, key, "a key must be a string, found %s", kind(*k));
	if (strlen(scalar(*k)) != (*k)->data.scalar.length)
		return wc_fail(p, *k, key, "a key holds a NUL byte");
	*name = scalar(*k);
	return 0;
}

/*
 * The index of @name among @n known keys, or the unknown-key error; a key seen before (bit
 * set in *seen) is the repeated-key error.
 */
static int known_key(struct wc_parser *p, const yaml_node_t *k, const char *where, const char *name,
		     const char *const *keys, size_t n, uint32_t *seen)
{
	char list[512];
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(name, keys[i]))
			continue;
		if (*seen & (1u << i))
			return wc_fail(p, k, where, "'%s' is given twice", name);
		*seen |= 1u << i;
		return (int)i;
	}
	list[0] = '\0';
	for (size_t i = 0; i < n && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
					i ? (i + 1 == n ? " or " : ", ") : "", keys[i]);
	return wc_fail(p, k, where, "unknown key '%.64s' (expected %s)", name, list);
}

/* @s resolved against the file's directory, malloc'ed. */
static char *resolve(struct wc_parser *p, const char *s)
{
	char *r;

	if (s[0] == '/' || !p->dir)
		return strdup(s);
	if (asprintf(&r, "%s/%s", p->dir, s) < 0)
		return NULL;
	return r;
}

static int get_path(struct wc_parser *p, const yaml_node_t *v, const char *key, char **out)
{
	const char *s;
	int err = get_string(p, v, key, &s);

	if (err || !s || !*s)
		return err;
	*out = resolve(p, s);
	return *out ? 0 : -ENOMEM;
}

/* A whole small file into a malloc'ed NUL-terminated string. */
static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t n = 0, cap = 4096;
	char *buf;
	int err = 0;

	*out = NULL;
	if (!f)
		return -errno;
	buf = malloc(cap);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - 1 - n, f);

		n += r;
		if (r == 0) {
			if (ferror(f))
				err = errno ? -errno : -EIO;
			break;
		}
		if (n == cap - 1) {
			char *nb;

			if (cap > WEBCONFIG_MAX_FILE) {
				err = -EFBIG;
				break;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				err = -ENOMEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf)
		return -ENOMEM;
	if (err) {
		free(buf);
		return err;
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

static int read_pem(struct wc_parser *p, const yaml_node_t *k, const char *key, const char *path,
		    char **pem)
{
	int err;

	if (!path || !(p->flags & VMS_WEBCONFIG_READ_FILES))
		return 0;
	err = read_file(path, pem, NULL);
	if (err == -ENOMEM)
		return err;
	if (err) {
		wc_fail(p, k, key, "cannot read %s: %s", path, vms_strerror(err));
		return err;
	}
	if (!**pem) {
		wc_fail(p, k, key, "%s is empty", path);
		return -VMS_E_PARSE;
	}
	return 0;
}

static int get_version(struct wc_parser *p, const yaml_node_t *v, const char *key,
		       unsigned int *out)
{
	const char *s;
	int err = get_string(p, v, key, &s);

	if (err || !s)
		return err;
	for (size_t i = 0; i < VMS_ARRAY_SIZE(versions); i++) {
		if (!strcmp(s, versions[i].name)) {
			*out = versions[i].version;
			return 0;
		}
	}
	return wc_fail(p, v, key, "unknown TLS version '%.64s' (TLS10, TLS11, TLS12 or TLS13)", s);
}

static const char *version_name(unsigned int v)
{
	for (size_t i = 0; i < VMS_ARRAY_SIZE(versions); i++)
		if (versions[i].version == v)
			return versions[i].name;
	return "?";
}

static int get_client_auth(struct wc_parser *p, const yaml_node_t *v, const char *key,
			   enum vms_tls_client_auth *out)
{
	const char *s;
	int err = get_string(p, v, key, &s);

	if (err || !s || !*s)
		return err;
	for (size_t i = 0; i < VMS_ARRAY_SIZE(client_auth_names); i++) {
		if (!strcmp(s, client_auth_names[i])) {
			*out = (enum vms_tls_client_auth)i;
			return 0;
		}
	}
	if (!strcmp(s, "RequireClientCert")) { /* exporter-toolkit's old name */
		*out = VMS_TLS_REQUIRE_ANY_CLIENT_CERT;
		return 0;
	}
	return wc_fail(p, v, key,
		       "unknown client_auth_type '%.64s' (NoClientCert, RequestClientCert, "
		       "RequireAnyClientCert, VerifyClientCertIfGiven or "
		       "RequireAndVerifyClientCert)",
		       s);
}

/*
 * A list of strings under @key: *@arr is allocated for as many elements of @size bytes as
 * it has (also when an error follows: the caller keeps it to free), then @item takes each
 * string in order with the array (its node for the line of an error); the first error
 * stops. Nothing is allocated for an empty or null list.
 */
static int get_string_list(struct wc_parser *p, const yaml_node_t *v, const char *key, void **arr,
			   size_t size,
			   int (*item)(struct wc_parser *p, const yaml_node_t *it, const char *key,
				       const char *s, void *arr))
{
	yaml_node_item_t *items;
	size_t n;
	int err = get_list(p, v, key, &items, &n);

	if (err || !n)
		return err;
	*arr = calloc(n, size);
	if (!*arr)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *it = yaml_document_get_node(p->doc, items[i]);
		const char *s;

		if (!it)
			return wc_fail(p, v, key, "a damaged list");
		err = get_string(p, it, key, &s);
		if (!err)
			err = item(p, it, key, s, *arr);
		if (err)
			return err;
	}
	return 0;
}

static int cipher_suite_item(struct wc_parser *p, const yaml_node_t *it, const char *key,
			     const char *s, void *arr)
{
	const char **out = arr;
	const struct cipher_suite *cs = suite(s);

	if (!cs)
		return wc_fail(p, it, key,
			       "unknown or insecure cipher suite '%.80s' (Go's names, "
			       "e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)",
			       s ? s : "");
	out[p->c->ncipher_suites++] = cs->name;
	return 0;
}

static int curve_item(struct wc_parser *p, const yaml_node_t *it, const char *key, const char *s,
		      void *arr)
{
	const char **out = arr;
	const struct curve *cv = curve(s);

	if (!cv)
		return wc_fail(p, it, key,
			       "unknown curve '%.64s' (CurveP256, CurveP384, CurveP521 "
			       "or X25519)",
			       s ? s : "");
	out[p->c->ncurves++] = cv->name;
	return 0;
}

static int san_item(struct wc_parser *p, const yaml_node_t *it, const char *key, const char *s,
		    void *arr)
{
	char **out = arr;
	struct vms_webconfig *c = p->c;

	if (!s || !*s)
		return wc_fail(p, it, key, "an empty name");
	out[c->nclient_allowed_sans] = strdup(s);
	if (!out[c->nclient_allowed_sans])
		return -ENOMEM;
	c->nclient_allowed_sans++;
	return 0;
}

enum tls_key {
	TLS_CERT_FILE,
	TLS_KEY_FILE,
	TLS_CLIENT_AUTH_TYPE,
	TLS_CLIENT_CA_FILE,
	TLS_MIN_VERSION,
	TLS_MAX_VERSION,
	TLS_CIPHER_SUITES,
	TLS_CURVE_PREFERENCES,
	TLS_PREFER_SERVER,
	TLS_CLIENT_ALLOWED_SANS,
	TLS_NKEYS
};

static int parse_tls(struct wc_parser *p, const yaml_node_t *tk, const yaml_node_t *tv)
{
	static const char *const keys[TLS_NKEYS] = {
		[TLS_CERT_FILE] = "cert_file",
		[TLS_KEY_FILE] = "key_file",
		[TLS_CLIENT_AUTH_TYPE] = "client_auth_type",
		[TLS_CLIENT_CA_FILE] = "client_ca_file",
		[TLS_MIN_VERSION] = "min_version",
		[TLS_MAX_VERSION] = "max_version",
		[TLS_CIPHER_SUITES] = "cipher_suites",
		[TLS_CURVE_PREFERENCES] = "curve_preferences",
		[TLS_PREFER_SERVER] = "prefer_server_cipher_suites",
		[TLS_CLIENT_ALLOWED_SANS] = "client_allowed_sans",
	};
	const yaml_node_t *knode[TLS_NKEYS] = { NULL };
	struct vms_webconfig *c = p->c;
	yaml_node_pair_t *pairs;
	uint32_t seen = 0;
	size_t n;
	int err = get_map(p, tv, "tls_server_config", &pairs, &n);

	if (err)
		return err;
	c->tls = true;
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *k, *v;
		const char *name;
		void *arr = NULL;
		char key[64];
		int idx;

		err = pair_nodes(p, &pairs[i], "tls_server_config", &k, &v, &name);
		if (err)
			return err;
		idx = known_key(p, k, "tls_server_config", name, keys, TLS_NKEYS, &seen);
		if (idx < 0)
			return idx;
		knode[idx] = k;
		snprintf(key, sizeof(key), "tls_server_config.%s", keys[idx]);
		switch ((enum tls_key)idx) {
		case TLS_CERT_FILE:
			err = get_path(p, v, key, &c->cert_file);
			break;
		case TLS_KEY_FILE:
			err = get_path(p, v, key, &c->key_file);
			break;
		case TLS_CLIENT_CA_FILE:
			err = get_path(p, v, key, &c->client_ca_file);
			break;
		case TLS_CLIENT_AUTH_TYPE:
			err = get_client_auth(p, v, key, &c->client_auth);
			break;
		case TLS_MIN_VERSION:
			err = get_version(p, v, key, &c->min_version);
			break;
		case TLS_MAX_VERSION:
			err = get_version(p, v, key, &c->max_version);
			break;
		case TLS_CIPHER_SUITES:
			err = get_string_list(p, v, key, &arr, sizeof(*c->cipher_suites),
					      cipher_suite_item);
			c->cipher_suites = arr;
			break;
		case TLS_CURVE_PREFERENCES:
			err = get_string_list(p, v, key, &arr, sizeof(*c->curves), curve_item);
			c->curves = arr;
			break;
		case TLS_PREFER_SERVER:
			err = get_bool(p, v, key, &c->prefer_server_cipher_suites);
			break;
		case TLS_CLIENT_ALLOWED_SANS:
			err = get_string_list(p, v, key, &arr, sizeof(*c->client_allowed_sans),
					      san_item);
			c->client_allowed_sans = arr;
			break;
		default:
			break;
		}
		if (err)
			return err;
	}
	if (!c->cert_file)
		return wc_fail(p, tk, "tls_server_config",
			       "cert_file is missing (TLS needs a certificate and its key)");
	if (!c->key_file)
		return wc_fail(p, tk, "tls_server_config",
			       "key_file is missing (TLS needs a certificate and its key)");
	if (c->client_ca_file && c->client_auth == VMS_TLS_NO_CLIENT_CERT)
		return wc_fail(p, knode[TLS_CLIENT_CA_FILE], "tls_server_config.client_ca_file",
			       "a client CA is given but client_auth_type is NoClientCert (set "
			       "it to RequireAndVerifyClientCert)");
	if (c->nclient_allowed_sans && c->client_auth != VMS_TLS_REQUIRE_ANY_CLIENT_CERT &&
	    c->client_auth != VMS_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT)
		return wc_fail(p, knode[TLS_CLIENT_ALLOWED_SANS],
			       "tls_server_config.client_allowed_sans",
			       "needs client_auth_type RequireAnyClientCert or "
			       "RequireAndVerifyClientCert, not %s",
			       vms_webconfig_client_auth_name(c->client_auth));
	if (c->min_version > c->max_version)
		return wc_fail(p, knode[TLS_MIN_VERSION] ? knode[TLS_MIN_VERSION] : tk,
			       "tls_server_config.min_version",
			       "%s is above max_version %s: no TLS version is left",
			       version_name(c->min_version), version_name(c->max_version));
	err = read_pem(p, knode[TLS_CERT_FILE], "tls_server_config.cert_file", c->cert_file,
		       &c->cert_pem);
	if (!err)
		err = read_pem(p, knode[TLS_KEY_FILE], "tls_server_config.key_file", c->key_file,
			       &c->key_pem);
	if (!err)
		err = read_pem(p, knode[TLS_CLIENT_CA_FILE], "tls_server_config.client_ca_file",
			       c->client_ca_file, &c->client_ca_pem);
	return err;
}

/* ---- http_server_config, basic_auth_users ---- */

struct name_ref {
	const char *name;
	size_t idx;
};

static int name_ref_cmp(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	return r ? r : (x->idx > y->idx) - (x->idx < y->idx);
}

/*
 * The index of the first of @n names (in the file's order) that repeats an earlier one:
 * -1 when none does, -ENOMEM. Sorted, so that a big basic_auth_users is checked in n log n.
 */
static ssize_t first_repeat(const char *(*name_of)(const void *, size_t), const void *arr, size_t n)
{
	struct name_ref *r = malloc((n ? n : 1) * sizeof(*r));
	ssize_t rep = -1;

	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		r[i] = (struct name_ref){ name_of(arr, i), i };
	qsort(r, n, sizeof(*r), name_ref_cmp);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(r[i].name, r[i - 1].name) && (rep < 0 || r[i].idx < (size_t)rep))
			rep = (ssize_t)r[i].idx;
	free(r);
	return rep;
}

static const char *user_name(const void *arr, size_t i)
{
	return ((const struct vms_webconfig_user *)arr)[i].name;
}

static const char *header_name(const void *arr, size_t i)
{
	return ((const struct vms_webconfig_header *)arr)[i].name;
}

static int parse_headers(struct wc_parser *p, const yaml_node_t *hv)
{
	const char *key = "http_server_config.headers";
	struct vms_webconfig *c = p->c;
	yaml_node_pair_t *pairs;
	ssize_t rep;
	size_t n;
	int err = get_map(p, hv, key, &pairs, &n);

	if (err || !n)
		return err;
	c->headers = calloc(n, sizeof(*c->headers));
	if (!c->headers)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *k, *v;
		const char *name, *value;
		size_t h;
		bool ok;

		err = pair_nodes(p, &pairs[i], key, &k, &v, &name);
		if (!err)
			err = get_string(p, v, key, &value);
		if (err)
			return err;
		for (h = 0; h < VMS_ARRAY_SIZE(extra_headers); h++)
			if (!strcmp(name, extra_headers[h].name))
				break;
		if (h == VMS_ARRAY_SIZE(extra_headers))
			return wc_fail(
				p, k, key,
				"HTTP header '%.64s' cannot be configured (only "
				"Strict-Transport-Security, X-Content-Type-Options, "
				"X-Frame-Options, X-XSS-Protection, Content-Security-Policy)",
				name);
		value = value ? value : "";
		ok = !extra_headers[h].values[0];
		for (size_t j = 0; !ok && extra_headers[h].values[j]; j++)
			ok = !strcmp(value, extra_headers[h].values[j]);
		if (!ok)
			return wc_fail(p, v, key, "%s cannot be '%.64s' (%s%s%s)", name, value,
				       extra_headers[h].values[0],
				       extra_headers[h].values[1] ? " or " : "",
				       extra_headers[h].values[1] ? extra_headers[h].values[1]
								  : "");
		if (strpbrk(value, "\r\n"))
			return wc_fail(p, v, key, "%s holds a line break", name);
		c->headers[i].name = strdup(name);
		c->headers[i].value = strdup(value);
		c->nheaders++;
		if (!c->headers[i].name || !c->headers[i].value)
			return -ENOMEM;
	}
	rep = first_repeat(header_name, c->headers, c->nheaders);
	if (rep == -ENOMEM)
		return -ENOMEM;
	if (rep >= 0)
		return wc_fail(p, yaml_document_get_node(p->doc, pairs[rep].key), key,
			       "'%s' is given twice", c->headers[rep].name);
	return 0;
}

static int parse_http(struct wc_parser *p, const yaml_node_t *hv)
{
	static const char *const keys[] = { "http2", "headers" };
	yaml_node_pair_t *pairs;
	uint32_t seen = 0;
	size_t n;
	int err = get_map(p, hv, "http_server_config", &pairs, &n);

	for (size_t i = 0; !err && i < n; i++) {
		const yaml_node_t *k, *v;
		const char *name;
		int idx;

		err = pair_nodes(p, &pairs[i], "http_server_config", &k, &v, &name);
		if (err)
			return err;
		idx = known_key(p, k, "http_server_config", name, keys, VMS_ARRAY_SIZE(keys),
				&seen);
		if (idx < 0)
			return idx;
		if (idx == 0)
			err = get_bool(p, v, "http_server_config.http2", &p->c->http2);
		else
			err = parse_headers(p, v);
	}
	return err;
}

/*
 * A bcrypt hash as Go's bcrypt.Cost() accepts it and crypt_r() computes it: $2a$, $2b$ or
 * $2y$, a two-digit cost from 04 to 31, 53 characters of bcrypt's base64 (salt and hash).
 */
static const char *bcrypt_problem(const char *h, char *buf, size_t size)
{
	unsigned int cost;

	if (strlen(h) != 60)
		return strlen(h) < 60 ? "too short to be a bcrypt hash"
				      : "too long for a bcrypt hash";
	if (h[0] != '$' || h[1] != '2' || !strchr("aby", h[2]) || h[3] != '$')
		return "not a bcrypt hash (it must start with $2y$, $2b$ or $2a$)";
	if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' || h[6] != '$')
		return "no bcrypt cost (two digits) after its $2?$";
	cost = (unsigned int)(h[4] - '0') * 10 + (unsigned int)(h[5] - '0');
	if (cost < 4 || cost > 31) {
		snprintf(buf, size, "bcrypt cost %u is outside the allowed range (4 to 31)", cost);
		return buf;
	}
	for (const char *s = h + 7; *s; s++)
		if (!strchr("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", *s))
			return "a character that bcrypt's base64 does not use";
	return NULL;
}

static int parse_users(struct wc_parser *p, const yaml_node_t *uv)
{
	struct vms_webconfig *c = p->c;
	yaml_node_pair_t *pairs;
	ssize_t rep;
	size_t n;
	int err = get_map(p, uv, "basic_auth_users", &pairs, &n);

	if (err || !n)
		return err;
	c->users = calloc(n, sizeof(*c->users));
	if (!c->users)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const yaml_node_t *k, *v;
		const char *name, *hash, *problem;
		char key[128], buf[96];

		err = pair_nodes(p, &pairs[i], "basic_auth_users", &k, &v, &name);
		if (err)
			return err;
		snprintf(key, sizeof(key), "basic_auth_users.%.64s", name);
		if (strchr(name, ':'))
			return wc_fail(p, k, key, "a user name cannot hold ':' (HTTP basic auth)");
		err = get_string(p, v, key, &hash);
		if (err)
			return err;
		problem = bcrypt_problem(hash ? hash : "", buf, sizeof(buf));
		if (problem)
			return wc_fail(p, v, key,
				       "%s (make one with htpasswd -nbBC 10 USER PASSWORD)",
				       problem);
		c->users[i].name = strdup(name);
		c->users[i].hash = strdup(hash);
		c->nusers++;
		if (!c->users[i].name || !c->users[i].hash)
			return -ENOMEM;
	}
	rep = first_repeat(user_name, c->users, c->nusers);
	if (rep == -ENOMEM)
		return -ENOMEM;
	if (rep >= 0)
		return wc_fail(p, yaml_document_get_node(p->doc, pairs[rep].key),
			       "basic_auth_users", "user '%.64s' is given twice",
			       c->users[rep].name);
	return vms_webconfig_cache_new(c);
}

/* ---- the file ---- */

static int parse_top(struct wc_parser *p, const yaml_node_t *root)
{
	static const char *const keys[] = { "tls_server_config", "http_server_config",
					    "basic_auth_users" };
	yaml_node_pair_t *pairs;
	uint32_t seen = 0;
	size_t n;
	int err;

	if (!root || is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return wc_fail(p, root, NULL,
			       "expected a mapping of tls_server_config, http_server_config and "
			       "basic_auth_users, found %s",
			       kind(root));
	err = get_map(p, root, NULL, &pairs, &n);
	for (size_t i = 0; !err && i < n; i++) {
		const yaml_node_t *k, *v;
		const char *name;
		int idx;

		err = pair_nodes(p, &pairs[i], NULL, &k, &v, &name);
		if (err)
			return err;
		idx = known_key(p, k, NULL, name, keys, VMS_ARRAY_SIZE(keys), &seen);
		if (idx < 0)
			return idx;
		if (idx == 0)
			err = parse_tls(p, k, v);
		else if (idx == 1)
			err = parse_http(p, v);
		else
			err = parse_users(p, v);
	}
	return err;
}

static const char *yaml_problem_kind(yaml_error_type_t e)
{
	switch (e) {
	case YAML_MEMORY_ERROR:
		return "out of memory";
	case YAML_READER_ERROR:
		return "not UTF-8 text";
	default:
		return "not valid YAML";
	}
}

int vms_webconfig_parse(const char *text, size_t len, const char *path, unsigned int flags,
			struct vms_webconfig **out, char *err, size_t errlen)
{
	struct wc_parser p = {
		.path = path ? path : "web config", .flags = flags, .err = err, .errlen = errlen
	};
	yaml_parser_t parser;
	yaml_document_t doc;
	const char *slash;
	int ret;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	p.c = calloc(1, sizeof(*p.c));
	if (!p.c)
		return -ENOMEM;
	p.c->path = strdup(p.path);
	p.c->min_version = VMS_TLS12;
	p.c->max_version = VMS_TLS13;
	p.c->prefer_server_cipher_suites = true;
	p.c->http2 = true;
	slash = strrchr(p.path, '/');
	if (slash)
		p.dir = slash == p.path ? strdup("/") : strndup(p.path, (size_t)(slash - p.path));
	if (!p.c->path || (slash && !p.dir)) {
		ret = -ENOMEM;
		goto out;
	}
	if (!yaml_parser_initialize(&parser)) {
		ret = -ENOMEM;
		goto out;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		if (errlen)
			snprintf(err, errlen, "%s:%lu: %s: %s%s%s", p.path,
				 (unsigned long)parser.problem_mark.line + 1,
				 yaml_problem_kind(parser.error),
				 parser.problem ? parser.problem : "unknown problem",
				 parser.context ? " " : "", parser.context ? parser.context : "");
		ret = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -VMS_E_PARSE;
		yaml_parser_delete(&parser);
		goto out;
	}
	/* Only the first document counts, as for Go's yaml.Unmarshal. */
	p.doc = &doc;
	ret = parse_top(&p, yaml_document_get_root_node(&doc));
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
out:
	free(p.dir);
	if (ret) {
		if (ret == -ENOMEM && errlen)
			snprintf(err, errlen, "%s: out of memory", p.path);
		vms_webconfig_free(p.c);
		return ret;
	}
	*out = p.c;
	return 0;
}

int vms_webconfig_load(const char *path, struct vms_webconfig **out, char *err, size_t errlen)
{
	size_t len;
	char *text;
	int ret;

	*out = NULL;
	ret = read_file(path, &text, &len);
	if (ret) {
		if (errlen)
			snprintf(err, errlen, "%s: %s", path,
				 ret == -EFBIG ? "bigger than 1 MiB: not a web configuration"
					       : vms_strerror(ret));
		return ret == -EFBIG ? -VMS_E_PARSE : ret;
	}
	ret = vms_webconfig_parse(text, len, path, VMS_WEBCONFIG_READ_FILES, out, err, errlen);
	free(text);
	return ret;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

int vms_webconfig_reread_keypair(struct vms_webconfig *c, char *err, size_t errlen)
{
	char *cert = NULL, *key = NULL;
	const char *bad = NULL;
	int ret;

	if (errlen)
		err[0] = '\0';
	if (!c->cert_file || !c->key_file)
		return -EINVAL;
	ret = read_file(c->cert_file, &cert, NULL);
	bad = c->cert_file;
	if (!ret) {
		ret = read_file(c->key_file, &key, NULL);
		bad = c->key_file;
	}
	if (!ret && (!*cert || !*key)) {
		ret = -VMS_E_PARSE;
		bad = !*cert ? c->cert_file : c->key_file;
	}
	if (ret) {
		if (errlen && ret == -VMS_E_PARSE)
			snprintf(err, errlen, "%s is empty", bad);
		else if (errlen)
			snprintf(err, errlen, "cannot read %s: %s", bad, vms_strerror(ret));
		free(cert);
		free_secret(key);
		return ret;
	}
	free(c->cert_pem);
	free_secret(c->key_pem);
	c->cert_pem = cert;
	c->key_pem = key;
	return 0;
}

void vms_webconfig_free(struct vms_webconfig *c)
{
	if (!c)
		return;
	vms_webconfig_cache_free(c);
	free(c->path);
	free(c->cert_file);
	free(c->key_file);
	free(c->client_ca_file);
	free(c->cert_pem);
	free_secret(c->key_pem);
	free(c->client_ca_pem);
	free(c->cipher_suites);
	free(c->curves);
	for (size_t i = 0; i < c->nclient_allowed_sans; i++)
		free(c->client_allowed_sans[i]);
	free(c->client_allowed_sans);
	for (size_t i = 0; i < c->nheaders; i++) {
		free(c->headers[i].name);
		free(c->headers[i].value);
	}
	free(c->headers);
	for (size_t i = 0; i < c->nusers; i++) {
		free(c->users[i].name);
		free(c->users[i].hash);
	}
	free(c->users);
	free(c);
}

/* ---- GnuTLS ---- */

static void add_part(struct vms_strbuf *b, const struct vms_webconfig *c, size_t i,
		     const char *(*part)(const char *), const char *prefix)
{
	const char *s = part(c->cipher_suites[i]);

	if (!s)
		return;
	for (size_t j = 0; j < i; j++) {
		const char *t = part(c->cipher_suites[j]);

		if (t && !strcmp(s, t))
			return;
	}
	vms_sb_add(b, ":+%s%s", prefix, s);
}

static const char *suite_kx(const char *name)
{
	return suite(name) ? suite(name)->kx : NULL;
}

static const char *suite_cipher(const char *name)
{
	return suite(name) ? suite(name)->cipher : NULL;
}

static const char *suite_mac(const char *name)
{
	return suite(name) ? suite(name)->mac : NULL;
}

int vms_webconfig_tls_priorities(const struct vms_webconfig *c, char *buf, size_t size)
{
	/* TLS 1.3's AEAD ciphers, which Go always enables whatever cipher_suites says. */
	static const char *const tls13[] = { "AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305" };
	struct vms_strbuf b = { buf, size, 0, size == 0 };

	vms_sb_add(&b, "NORMAL%s:-VERS-ALL",
		   c->prefer_server_cipher_suites ? ":%SERVER_PRECEDENCE" : "");
	for (size_t i = 0; i < VMS_ARRAY_SIZE(versions); i++)
		if (versions[i].version >= c->min_version && versions[i].version <= c->max_version)
			vms_sb_add(&b, ":+VERS-%s", versions[i].gnutls);
	if (c->ncipher_suites) {
		bool aead = false;

		vms_sb_add(&b, ":-KX-ALL");
		for (size_t i = 0; i < c->ncipher_suites; i++)
			add_part(&b, c, i, suite_kx, "");
		vms_sb_add(&b, ":-CIPHER-ALL");
		for (size_t i = 0; i < c->ncipher_suites; i++)
			add_part(&b, c, i, suite_cipher, "");
		if (c->max_version >= VMS_TLS13) {
			for (size_t k = 0; k < VMS_ARRAY_SIZE(tls13); k++) {
				bool listed = false;

				for (size_t i = 0; i < c->ncipher_suites && !listed; i++) {
					const char *ci = suite_cipher(c->cipher_suites[i]);

					listed = ci && !strcmp(ci, tls13[k]);
				}
				if (!listed)
					vms_sb_add(&b, ":+%s", tls13[k]);
			}
		}
		vms_sb_add(&b, ":-MAC-ALL");
		for (size_t i = 0; i < c->ncipher_suites; i++) {
			const char *m = suite_mac(c->cipher_suites[i]);

			aead |= m && !strcmp(m, "AEAD");
			add_part(&b, c, i, suite_mac, "");
		}
		if (c->max_version >= VMS_TLS13 && !aead)
			vms_sb_add(&b, ":+AEAD");
	}
	if (c->ncurves) {
		vms_sb_add(&b, ":-GROUP-ALL");
		for (size_t i = 0; i < c->ncurves; i++)
			if (curve(c->curves[i]))
				vms_sb_add(&b, ":+GROUP-%s", curve(c->curves[i])->group);
	}
	if (b.full) {
		if (size)
			buf[0] = '\0';
		return -ENOSPC;
	}
	return (int)b.len;
}

unsigned int vms_webconfig_cipher_id(const char *name)
{
	const struct cipher_suite *cs = name ? suite(name) : NULL;

	return cs ? cs->id : 0;
}

bool vms_webconfig_cipher_allowed(const struct vms_webconfig *c, unsigned int id)
{
	if (!c->ncipher_suites || (id >> 8) == 0x13) /* TLS 1.3's: always, as in Go */
		return true;
	for (size_t i = 0; i < c->ncipher_suites; i++)
		if (suite(c->cipher_suites[i])->id == id)
			return true;
	return false;
}
