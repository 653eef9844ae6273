// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of the web configuration file (lib/util/webconfig.c) and of basic auth against
 * it (lib/util/basic-auth.c). Every key of the exporter-toolkit format is read into the
 * right member, with its default when absent or null; every error is refused with a
 * message that names the file, the line and the key: unknown keys at every level, a
 * value of the wrong kind, a repeated key, a missing cert_file or key_file, an unreadable
 * configuration or PEM file, bad bcrypt hashes, a user given twice, bad TLS versions, an
 * unknown client_auth_type, cipher suite or curve, a header that cannot be set, YAML that
 * does not parse. Relative paths are resolved against the file's directory; the GnuTLS
 * priority strings are the expected ones. Basic auth: the right password of every bcrypt
 * flavour is accepted, wrong ones, unknown users and malformed headers are not, a NUL byte
 * cannot cut a password short, and a successful check is remembered (the second one costs
 * no bcrypt). No root, no network.
 */
#include <crypt.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit-files.h"
#include "vmscope/webconfig.h"

/* A bcrypt hash of @pass made here ($2b$, $2y$ or $2a$ by @prefix, cost @cost). */
static char *bcrypt_hash(const char *prefix, unsigned long cost, const char *pass)
{
	static struct crypt_data data;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h;

	assert_non_null(crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof(salt)));
	memset(&data, 0, sizeof(data));
	h = crypt_r(pass, salt, &data);
	assert_non_null(h);
	assert_int_equal(strlen(h), 60);
	return strdup(h);
}

static struct vms_webconfig *parse_ok(const char *text)
{
	struct vms_webconfig *c = NULL;
	char err[512] = "";
	int ret = vms_webconfig_parse(text, strlen(text), "/etc/vmscope/web.yml", 0, &c, err,
				      sizeof(err));

	if (ret)
		fail_msg("parse failed (%d): %s", ret, err);
	assert_non_null(c);
	return c;
}

/* The text must be refused with -VMS_E_PARSE and a message holding every @want. */
#define PARSE_BAD(text, ...)                                                                     \
	do {                                                                                     \
		const char *want_[] = { __VA_ARGS__, NULL };                                     \
		struct vms_webconfig *c_ = (void *)1;                                            \
		char err_[512] = "";                                                             \
		int r_ = vms_webconfig_parse(text, strlen(text), "/etc/vmscope/web.yml", 0, &c_, \
					     err_, sizeof(err_));                                \
		if (r_ != -VMS_E_PARSE)                                                          \
			fail_msg("%s: got %d (%s), expected a parse error", #text, r_, err_);    \
		assert_null(c_);                                                                 \
		for (const char **w_ = want_; *w_; w_++)                                         \
			if (!strstr(err_, *w_))                                                  \
				fail_msg("message '%s' lacks '%s'", err_, *w_);                  \
	} while (0)

static void test_defaults(void **state)
{
	static const char *const empties[] = { "", "---\n", "~\n", "# nothing\n",
					       "tls_server_config: {}\n" };
	struct vms_webconfig *c;
	char prio[512];

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		c = parse_ok(empties[i]);
		assert_false(c->tls);
		assert_int_equal(c->nusers, 0);
		assert_int_equal(c->nheaders, 0);
		assert_true(c->http2);
		assert_true(c->prefer_server_cipher_suites);
		assert_int_equal(c->min_version, VMS_TLS12);
		assert_int_equal(c->max_version, VMS_TLS13);
		assert_int_equal(c->client_auth, VMS_TLS_NO_CLIENT_CERT);
		assert_string_equal(c->path, "/etc/vmscope/web.yml");
		/* No users: everything is allowed. */
		assert_int_equal(vms_webconfig_authorize(c, NULL), 0);
		assert_true(vms_webconfig_cipher_allowed(c, 0x002F));
		assert_true(vms_webconfig_tls_priorities(c, prio, sizeof(prio)) > 0);
		assert_string_equal(prio, "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.2:"
					  "+VERS-TLS1.3");
		vms_webconfig_free(c);
	}
	/* An empty tls_server_config asks for TLS without a certificate. */
	PARSE_BAD(empties[4], "web.yml:1: tls_server_config: cert_file is missing");
	/* Null values keep the defaults. */
	c = parse_ok("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
		     "  min_version:\n  max_version: ~\n  prefer_server_cipher_suites: null\n"
		     "  cipher_suites:\n  client_auth_type:\nhttp_server_config:\n  http2:\n"
		     "basic_auth_users:\n");
	assert_true(c->tls);
	assert_int_equal(c->min_version, VMS_TLS12);
	assert_int_equal(c->max_version, VMS_TLS13);
	assert_true(c->prefer_server_cipher_suites);
	assert_true(c->http2);
	assert_int_equal(c->ncipher_suites, 0);
	vms_webconfig_free(c);
	vms_webconfig_free(NULL);
}

static void test_every_key(void **state)
{
	char *h1 = bcrypt_hash("$2y$", 4, "one"), *h2 = bcrypt_hash("$2b$", 4, "two");
	char text[4096], prio[512];
	struct vms_webconfig *c;

	(void)state;
	snprintf(text, sizeof(text),
		 "# every key\n"
		 "tls_server_config:\n"
		 "  cert_file: certs/server.crt\n"
		 "  key_file: \"/abs/server.key\"\n"
		 "  client_auth_type: RequireAndVerifyClientCert\n"
		 "  client_ca_file: 'ca.crt'\n"
		 "  min_version: TLS11\n"
		 "  max_version: TLS12\n"
		 "  cipher_suites:\n"
		 "    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
		 "    - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n"
		 "    - TLS_RSA_WITH_AES_256_CBC_SHA\n"
		 "    - TLS_AES_128_GCM_SHA256\n"
		 "  curve_preferences: [X25519, CurveP384]\n"
		 "  prefer_server_cipher_suites: no\n"
		 "  client_allowed_sans: [client.example, 10.0.0.1]\n"
		 "http_server_config:\n"
		 "  http2: false\n"
		 "  headers:\n"
		 "    X-Frame-Options: deny\n"
		 "    Strict-Transport-Security: max-age=31536000\n"
		 "basic_auth_users:\n"
		 "  alice: %s\n"
		 "  \"bob\": '%s'\n",
		 h1, h2);
	c = parse_ok(text);
	assert_true(c->tls);
	assert_string_equal(c->cert_file, "/etc/vmscope/certs/server.crt");
	assert_string_equal(c->key_file, "/abs/server.key");
	assert_string_equal(c->client_ca_file, "/etc/vmscope/ca.crt");
	assert_null(c->cert_pem); /* no VMS_WEBCONFIG_READ_FILES */
	assert_int_equal(c->client_auth, VMS_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT);
	assert_string_equal(vms_webconfig_client_auth_name(c->client_auth),
			    "RequireAndVerifyClientCert");
	assert_int_equal(c->min_version, VMS_TLS11);
	assert_int_equal(c->max_version, VMS_TLS12);
	assert_int_equal(c->ncipher_suites, 4);
	assert_string_equal(c->cipher_suites[1], "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
	assert_int_equal(c->ncurves, 2);
	assert_string_equal(c->curves[0], "X25519");
	assert_string_equal(c->curves[1], "CurveP384");
	assert_false(c->prefer_server_cipher_suites);
	assert_int_equal(c->nclient_allowed_sans, 2);
	assert_string_equal(c->client_allowed_sans[1], "10.0.0.1");
	assert_false(c->http2);
	assert_int_equal(c->nheaders, 2);
	assert_string_equal(c->headers[1].name, "Strict-Transport-Security");
	assert_string_equal(c->headers[1].value, "max-age=31536000");
	assert_int_equal(c->nusers, 2);
	assert_string_equal(c->users[0].name, "alice");
	assert_string_equal(c->users[0].hash, h1);
	assert_string_equal(c->users[1].name, "bob");
	assert_string_equal(c->users[1].hash, h2);

	/* The suites' parts in order (TLS 1.3 left out: max_version is TLS12), the curves. */
	assert_true(vms_webconfig_tls_priorities(c, prio, sizeof(prio)) > 0);
	assert_string_equal(prio, "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.2"
				  ":-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA:+RSA"
				  ":-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305:+AES-256-CBC"
				  ":-MAC-ALL:+AEAD:+SHA1"
				  ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP384R1");
	assert_int_equal(vms_webconfig_tls_priorities(c, prio, 20), -ENOSPC);
	/* The negotiated suite, by its IANA number: listed, not listed, TLS 1.3's. */
	assert_int_equal(vms_webconfig_cipher_id("TLS_RSA_WITH_AES_256_CBC_SHA"), 0x0035);
	assert_int_equal(vms_webconfig_cipher_id("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), 0xC02F);
	assert_int_equal(vms_webconfig_cipher_id("TLS_RSA_WITH_RC4_128_SHA"), 0);
	assert_int_equal(vms_webconfig_cipher_id(NULL), 0);
	assert_true(vms_webconfig_cipher_allowed(c, 0x0035));
	assert_true(vms_webconfig_cipher_allowed(c, 0xC02F));
	assert_true(vms_webconfig_cipher_allowed(c, 0xCCA9));
	assert_false(vms_webconfig_cipher_allowed(c, 0x002F));
	assert_false(vms_webconfig_cipher_allowed(c, 0xC014)); /* ECDHE-RSA + AES-256-CBC */
	assert_true(vms_webconfig_cipher_allowed(c, 0x1302));
	vms_webconfig_free(c);

	/* TLS 1.3 allowed: its AEAD ciphers come along with a CBC-only list. */
	c = parse_ok("tls_server_config:\n  cert_file: a\n  key_file: b\n"
		     "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n");
	assert_true(vms_webconfig_tls_priorities(c, prio, sizeof(prio)) > 0);
	assert_string_equal(prio, "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3"
				  ":-KX-ALL:+ECDHE-RSA:-CIPHER-ALL:+AES-128-CBC:+AES-128-GCM"
				  ":+AES-256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+SHA1:+AEAD");
	assert_string_equal(c->cert_file, "/etc/vmscope/a");
	vms_webconfig_free(c);

	/* Every client_auth_type; booleans as YAML 1.1 has them; the old RequireClientCert. */
	static const struct {
		const char *name;
		enum vms_tls_client_auth a;
	} auths[] = {
		{ "NoClientCert", VMS_TLS_NO_CLIENT_CERT },
		{ "RequestClientCert", VMS_TLS_REQUEST_CLIENT_CERT },
		{ "RequireAnyClientCert", VMS_TLS_REQUIRE_ANY_CLIENT_CERT },
		{ "RequireClientCert", VMS_TLS_REQUIRE_ANY_CLIENT_CERT },
		{ "VerifyClientCertIfGiven", VMS_TLS_VERIFY_CLIENT_CERT_IF_GIVEN },
		{ "RequireAndVerifyClientCert", VMS_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT },
	};
	for (size_t i = 0; i < sizeof(auths) / sizeof(auths[0]); i++) {
		snprintf(text, sizeof(text),
			 "tls_server_config:\n  cert_file: a\n  key_file: b\n"
			 "  client_auth_type: %s\n  prefer_server_cipher_suites: %s\n",
			 auths[i].name, i % 2 ? "On" : "TRUE");
		c = parse_ok(text);
		assert_int_equal(c->client_auth, auths[i].a);
		assert_true(c->prefer_server_cipher_suites);
		vms_webconfig_free(c);
	}
	/* Relative paths of a file in the current directory stay relative to it. */
	c = NULL;
	{
		const char *t = "tls_server_config: {cert_file: a.crt, key_file: /k}\n";

		assert_int_equal(
			vms_webconfig_parse(t, strlen(t), "web.yml", 0, &c, text, sizeof(text)), 0);
	}
	assert_string_equal(c->cert_file, "a.crt");
	vms_webconfig_free(c);
	free(h1);
	free(h2);
}

static void test_errors(void **state)
{
	char text[1024];
	char *h = bcrypt_hash("$2b$", 4, "x");

	(void)state;
	/* Unknown keys, at every level. */
	PARSE_BAD("rate_limit:\n  burst: 1\n", "/etc/vmscope/web.yml:1: unknown key 'rate_limit'",
		  "tls_server_config, http_server_config or basic_auth_users");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n  cert: x\n",
		  "web.yml:4: tls_server_config: unknown key 'cert'");
	PARSE_BAD("http_server_config:\n  http3: true\n",
		  "web.yml:2: http_server_config: unknown key 'http3'");
	/* Wrong kinds. */
	PARSE_BAD("- a\n- b\n", "web.yml:1: expected a mapping", "found a list");
	PARSE_BAD("just text\n", "expected a mapping", "found a scalar");
	PARSE_BAD("tls_server_config: 3\n", "web.yml:1: tls_server_config: expected a mapping");
	PARSE_BAD("tls_server_config:\n  cert_file: [a]\n  key_file: b\n",
		  "web.yml:2: tls_server_config.cert_file: expected a string, found a list");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: "
		  "TLS_AES_128_GCM_SHA256\n",
		  "web.yml:4: tls_server_config.cipher_suites: expected a list");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n"
		  "  prefer_server_cipher_suites: \"true\"\n",
		  "web.yml:4: tls_server_config.prefer_server_cipher_suites: expected true or "
		  "false");
	PARSE_BAD("http_server_config:\n  http2: maybe\n", "http_server_config.http2", "'maybe'");
	PARSE_BAD("http_server_config:\n  headers: [a]\n", "http_server_config.headers: expected "
							   "a mapping");
	PARSE_BAD("basic_auth_users: [alice]\n", "basic_auth_users: expected a mapping");
	PARSE_BAD("basic_auth_users:\n  alice:\n    hash: x\n",
		  "web.yml:3: basic_auth_users.alice: expected a string, found a mapping");
	PARSE_BAD("basic_auth_users:\n  [a]: x\n", "basic_auth_users: a key must be a string");
	PARSE_BAD("tls_server_config:\n  cert_file: \"a\\0b\"\n  key_file: b\n", "NUL byte");
	/* Repeated keys. */
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  cert_file: b\n",
		  "web.yml:3: tls_server_config: 'cert_file' is given twice");
	PARSE_BAD("basic_auth_users: {}\nbasic_auth_users: {}\n",
		  "web.yml:2: 'basic_auth_users' is given twice");
	PARSE_BAD("http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
		  "    X-Frame-Options: sameorigin\n",
		  "web.yml:4: http_server_config.headers: 'X-Frame-Options' is given twice");
	/* Certificate and key. */
	PARSE_BAD("tls_server_config:\n  key_file: b\n",
		  "web.yml:1: tls_server_config: cert_file is missing");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: ''\n",
		  "web.yml:1: tls_server_config: key_file is missing");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
		  "web.yml:4: tls_server_config.client_ca_file: a client CA is given but "
		  "client_auth_type is NoClientCert");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n"
		  "  client_auth_type: VerifyClientCertIfGiven\n  client_allowed_sans: [x]\n",
		  "web.yml:5: tls_server_config.client_allowed_sans: needs client_auth_type "
		  "RequireAnyClientCert or RequireAndVerifyClientCert, not "
		  "VerifyClientCertIfGiven");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n"
		  "  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: ['']\n",
		  "client_allowed_sans: an empty name");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n"
		  "  client_auth_type: Always\n",
		  "web.yml:4: tls_server_config.client_auth_type: unknown client_auth_type "
		  "'Always'");
	/* TLS versions, suites, curves. */
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n",
		  "web.yml:4: tls_server_config.min_version: unknown TLS version 'TLS14'");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: 1.3\n",
		  "tls_server_config.max_version: unknown TLS version '1.3'");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n"
		  "  max_version: TLS12\n",
		  "web.yml:4: tls_server_config.min_version: TLS13 is above max_version TLS12");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n"
		  "    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n    - TLS_RSA_WITH_RC4_128_SHA\n",
		  "web.yml:6: tls_server_config.cipher_suites: unknown or insecure cipher suite "
		  "'TLS_RSA_WITH_RC4_128_SHA'");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [[x]]\n",
		  "cipher_suites: expected a string, found a list");
	PARSE_BAD("tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: "
		  "[X448]\n",
		  "web.yml:4: tls_server_config.curve_preferences: unknown curve 'X448'");
	/* Headers. */
	PARSE_BAD("http_server_config:\n  headers:\n    X-Foo: bar\n",
		  "web.yml:3: http_server_config.headers: HTTP header 'X-Foo' cannot be "
		  "configured");
	PARSE_BAD("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
		  "X-Content-Type-Options cannot be 'sniff' (nosniff)");
	PARSE_BAD("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
		  "X-Frame-Options cannot be 'allow' (deny or sameorigin)");
	/* bcrypt hashes and users. */
	PARSE_BAD("basic_auth_users:\n  alice: secret\n",
		  "web.yml:2: basic_auth_users.alice: too short to be a bcrypt hash");
	PARSE_BAD("basic_auth_users:\n  alice:\n", "basic_auth_users.alice: too short");
	PARSE_BAD("basic_auth_users:\n  alice: 12345\n", "basic_auth_users.alice: too short");
	PARSE_BAD("basic_auth_users:\n  alice: $1$abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu"
		  "vwxyzabcde\n",
		  "not a bcrypt hash");
	PARSE_BAD("basic_auth_users:\n  alice: $2y$03$abcdefghijklmnopqrstuu5JYT5Yvd4Q6X0Qu2ZJuImG"
		  "4tqiHKAaq\n",
		  "bcrypt cost 3 is outside the allowed range (4 to 31)");
	PARSE_BAD("basic_auth_users:\n  alice: $2y$32$abcdefghijklmnopqrstuu5JYT5Yvd4Q6X0Qu2ZJuImG"
		  "4tqiHKAaq\n",
		  "bcrypt cost 32 is outside");
	PARSE_BAD("basic_auth_users:\n  alice: $2y$1x$abcdefghijklmnopqrstuu5JYT5Yvd4Q6X0Qu2ZJuImG"
		  "4tqiHKAaq\n",
		  "no bcrypt cost");
	PARSE_BAD("basic_auth_users:\n  alice: $2y$10$abcdefghijklmnopqrstuu5JYT5Yvd4Q6X0Qu2ZJuImG"
		  "4tqiHKAa!\n",
		  "a character that bcrypt's base64 does not use");
	PARSE_BAD("basic_auth_users:\n  alice: $2y$10$abcdefghijklmnopqrstuu5JYT5Yvd4Q6X0Qu2ZJuImG"
		  "4tqiHKAaqq\n",
		  "too long");
	snprintf(text, sizeof(text), "basic_auth_users:\n  alice: %s\n  bob: %s\n  alice: %s\n", h,
		 h, h);
	PARSE_BAD(text, "web.yml:4: basic_auth_users: user 'alice' is given twice");
	snprintf(text, sizeof(text), "basic_auth_users:\n  'a:b': %s\n", h);
	PARSE_BAD(text, "basic_auth_users.a:b: a user name cannot hold ':'");
	/* Not YAML. */
	PARSE_BAD("tls_server_config:\n  cert_file: [a\n", "web.yml:", "not valid YAML");
	PARSE_BAD("a: b\n- c\n", "web.yml:2: not valid YAML");
	PARSE_BAD("x: *nowhere\n", "not valid YAML");
	PARSE_BAD("a: \xc3\x28\n", "web.yml:1: not UTF-8");
	free(h);
}

/* A directory of files for vms_webconfig_load(), removed by teardown. */
static char dir[64];

static void write_file(const char *name, const char *text)
{
	unit_write_file(dir, name, text);
}

static int setup_dir(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/vmscope-webconfig-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	(void)state;
	return unit_rm_tree(dir);
}

static void test_load(void **state)
{
	struct vms_webconfig *c = NULL;
	char path[128], err[512];
	int ret;

	(void)state;
	write_file("server.crt", "-----BEGIN CERTIFICATE-----\ncert\n");
	write_file("server.key", "-----BEGIN PRIVATE KEY-----\nkey\n");
	write_file("ca.crt", "-----BEGIN CERTIFICATE-----\nca\n");
	write_file("empty.crt", "");
	write_file("web.yml",
		   "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
		   "  client_ca_file: ca.crt\n"
		   "  client_auth_type: RequireAndVerifyClientCert\n");
	snprintf(path, sizeof(path), "%s/web.yml", dir);
	ret = vms_webconfig_load(path, &c, err, sizeof(err));
	if (ret)
		fail_msg("%s", err);
	assert_string_equal(c->cert_pem, "-----BEGIN CERTIFICATE-----\ncert\n");
	assert_string_equal(c->key_pem, "-----BEGIN PRIVATE KEY-----\nkey\n");
	assert_string_equal(c->client_ca_pem, "-----BEGIN CERTIFICATE-----\nca\n");
	snprintf(path, sizeof(path), "%s/server.crt", dir);
	assert_string_equal(c->cert_file, path);

	/* A renewal: both files read again; an empty or missing one keeps the pair read. */
	write_file("server.crt", "-----BEGIN CERTIFICATE-----\nrenewed\n");
	write_file("server.key", "-----BEGIN PRIVATE KEY-----\nrenewed key\n");
	assert_int_equal(vms_webconfig_reread_keypair(c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(c->cert_pem, "-----BEGIN CERTIFICATE-----\nrenewed\n");
	assert_string_equal(c->key_pem, "-----BEGIN PRIVATE KEY-----\nrenewed key\n");
	write_file("server.key", "");
	assert_int_equal(vms_webconfig_reread_keypair(c, err, sizeof(err)), -VMS_E_PARSE);
	assert_non_null(strstr(err, "server.key is empty"));
	assert_string_equal(c->key_pem, "-----BEGIN PRIVATE KEY-----\nrenewed key\n");
	snprintf(path, sizeof(path), "%s/server.crt", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(vms_webconfig_reread_keypair(c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot read "));
	assert_non_null(strstr(err, "server.crt: No such file or directory"));
	assert_string_equal(c->cert_pem, "-----BEGIN CERTIFICATE-----\nrenewed\n");
	vms_webconfig_free(c);
	c = parse_ok("basic_auth_users: {}\n"); /* no TLS: nothing to read again */
	assert_int_equal(vms_webconfig_reread_keypair(c, err, sizeof(err)), -EINVAL);
	vms_webconfig_free(c);
	write_file("server.crt", "-----BEGIN CERTIFICATE-----\ncert\n");
	write_file("server.key", "-----BEGIN PRIVATE KEY-----\nkey\n");

	/* The configuration itself cannot be read. */
	snprintf(path, sizeof(path), "%s/none.yml", dir);
	assert_int_equal(vms_webconfig_load(path, &c, err, sizeof(err)), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(err, "none.yml: No such file or directory"));
	assert_int_equal(vms_webconfig_load(dir, &c, err, sizeof(err)), -EISDIR);

	/* A PEM file cannot be read, or is empty: the key's line. */
	write_file("web.yml",
		   "tls_server_config:\n  cert_file: server.crt\n  key_file: gone.key\n");
	snprintf(path, sizeof(path), "%s/web.yml", dir);
	assert_int_equal(vms_webconfig_load(path, &c, err, sizeof(err)), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(err, "web.yml:3: tls_server_config.key_file: cannot read "));
	assert_non_null(strstr(err, "gone.key: No such file or directory"));
	write_file("web.yml",
		   "tls_server_config:\n  cert_file: empty.crt\n  key_file: server.key\n");
	assert_int_equal(vms_webconfig_load(path, &c, err, sizeof(err)), -VMS_E_PARSE);
	assert_non_null(strstr(err, "web.yml:2: tls_server_config.cert_file: "));
	assert_non_null(strstr(err, "empty.crt is empty"));
	write_file("web.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: "
			      "server.key\n  client_ca_file: .\n  client_auth_type: "
			      "RequireAnyClientCert\n");
	assert_int_equal(vms_webconfig_load(path, &c, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "web.yml:4: tls_server_config.client_ca_file: cannot read"));

	/* A file of more than 1 MiB is no web configuration. */
	{
		char *big = malloc((2u << 20) + 1);

		assert_non_null(big);
		memset(big, '#', 2u << 20);
		big[2u << 20] = '\0';
		write_file("big.yml", big);
		free(big);
		snprintf(path, sizeof(path), "%s/big.yml", dir);
		assert_int_equal(vms_webconfig_load(path, &c, err, sizeof(err)), -VMS_E_PARSE);
		assert_non_null(strstr(err, "bigger than 1 MiB"));
	}
}

/* "Basic base64(user:pass)" of @n bytes of @userpass. */
static char *basic(const char *userpass, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(6 + (n + 2) / 3 * 4 + 1), *o;

	assert_non_null(out);
	o = out + sprintf(out, "Basic ");
	for (size_t i = 0; i < n; i += 3) {
		unsigned int v = (unsigned char)userpass[i] << 16;

		v |= i + 1 < n ? (unsigned char)userpass[i + 1] << 8 : 0;
		v |= i + 2 < n ? (unsigned char)userpass[i + 2] : 0;
		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int auth(struct vms_webconfig *c, const char *userpass)
{
	char *h = basic(userpass, strlen(userpass));
	int ret = vms_webconfig_authorize(c, h);

	free(h);
	return ret;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_authorize(void **state)
{
	char *hy = bcrypt_hash("$2y$", 4, "pw-y"), *hb = bcrypt_hash("$2b$", 4, "pw-b");
	char *ha = bcrypt_hash("$2a$", 4, "pw-a"), *hslow = bcrypt_hash("$2b$", 12, "slow");
	char text[1024], *h;
	struct vms_webconfig *c;
	double t0, first, second;

	(void)state;
	snprintf(text, sizeof(text),
		 "basic_auth_users:\n  yan: %s\n  bea: %s\n  ada: %s\n  sam: %s\n  '': %s\n", hy,
		 hb, ha, hslow, hb);
	c = parse_ok(text);
	/* Every flavour of bcrypt, the right password. */
	assert_int_equal(auth(c, "yan:pw-y"), 0);
	assert_int_equal(auth(c, "bea:pw-b"), 0);
	assert_int_equal(auth(c, "ada:pw-a"), 0);
	assert_int_equal(auth(c, ":pw-b"), 0); /* an empty user name is a name */
	/* Wrong passwords, users, headers. */
	assert_int_equal(auth(c, "yan:pw-b"), -EACCES);
	assert_int_equal(auth(c, "yan:pw-"), -EACCES);
	assert_int_equal(auth(c, "yan:pw-yy"), -EACCES);
	assert_int_equal(auth(c, "yan:"), -EACCES);
	assert_int_equal(auth(c, "eve:pw-b"), -EACCES);
	assert_int_equal(auth(c, "Yan:pw-y"), -EACCES);
	assert_int_equal(auth(c, "yanpw-y"), -EACCES);
	assert_int_equal(vms_webconfig_authorize(c, NULL), -EACCES);
	assert_int_equal(vms_webconfig_authorize(c, ""), -EACCES);
	assert_int_equal(vms_webconfig_authorize(c, "Bearer eWFuOnB3LXk="), -EACCES);
	assert_int_equal(vms_webconfig_authorize(c, "Basic"), -EACCES);
	assert_int_equal(vms_webconfig_authorize(c, "Basic !!!!"), -EACCES);
	assert_int_equal(vms_webconfig_authorize(c, "Basic eWFuOnB3LXk==="), -EACCES);
	/* The scheme is case-insensitive; padding optional. */
	assert_int_equal(vms_webconfig_authorize(c, "basic   eWFuOnB3LXk="), 0);
	assert_int_equal(vms_webconfig_authorize(c, "Basic eWFuOnB3LXk"), 0);
	/* A NUL byte does not cut a password short ("yan:pw-y\0junk"). */
	h = basic("yan:pw-y\0junk", 13);
	assert_int_equal(vms_webconfig_authorize(c, h), -EACCES);
	free(h);
	/* bcrypt reads 72 bytes: a longer password is refused, not truncated. */
	{
		char long_pw[128];

		memset(long_pw, 'p', sizeof(long_pw));
		memcpy(long_pw, "yan:", 4);
		long_pw[sizeof(long_pw) - 1] = '\0';
		assert_int_equal(auth(c, long_pw), -EACCES);
	}
	/* A success is remembered: the second check of a cost-12 hash costs no bcrypt. */
	t0 = now_s();
	assert_int_equal(auth(c, "sam:slow"), 0);
	first = now_s() - t0;
	t0 = now_s();
	assert_int_equal(auth(c, "sam:slow"), 0);
	second = now_s() - t0;
	print_message("bcrypt cost 12: %.1f ms, remembered: %.3f ms\n", first * 1e3, second * 1e3);
	assert_true(second * 20 < first);
	/* A failure is not remembered, and a remembered user still needs the right password. */
	t0 = now_s();
	assert_int_equal(auth(c, "sam:slo"), -EACCES);
	assert_true((now_s() - t0) * 4 > first);
	vms_webconfig_free(c);
	free(hy);
	free(hb);
	free(ha);
	free(hslow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_errors),
		cmocka_unit_test_setup_teardown(test_load, setup_dir, teardown_dir),
		cmocka_unit_test(test_authorize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
