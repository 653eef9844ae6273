// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for the web configuration file of vmscope serve (lib/util/webconfig.c):
 * the exporter-toolkit YAML file, read with libyaml and checked along its schema. No file
 * is opened (no VMS_WEBCONFIG_READ_FILES). When the parser refuses an input its message
 * must name the file; when it accepts one, its promises are checked: every string is there
 * and NUL-free up to its end, TLS means a certificate and a key, the versions are in
 * order, every user has a well-formed bcrypt hash, the GnuTLS priority string can be
 * built, and a request without credentials is refused exactly when there are users. A
 * broken promise aborts. Linked with replay.c it is the 'fuzz' test that replays
 * fuzz/corpus/web-config/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope/webconfig.h"
#include "fuzz.h"

#define PATH "/etc/vmscope/web.yml"

static volatile size_t sink;

static void check_str(const char *s)
{
	CHECK(s);
	sink += strlen(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vms_webconfig *c = NULL;
	char err[512], prio[1024];
	int ret;

	if (size > 64 * 1024)
		return 0;
	ret = vms_webconfig_parse((const char *)data, size, PATH, 0, &c, err, sizeof(err));
	if (ret) {
		CHECK(!c);
		CHECK(ret == -VMS_E_PARSE || ret == -ENOMEM);
		CHECK(!strncmp(err, PATH ":", strlen(PATH ":")));
		return 0;
	}
	CHECK(c);
	check_str(c->path);
	if (c->tls) {
		check_str(c->cert_file);
		check_str(c->key_file);
		CHECK(*c->cert_file && *c->key_file);
		CHECK(!c->cert_pem && !c->key_pem && !c->client_ca_pem);
		/* Relative paths are resolved against the file's directory. */
		CHECK(c->cert_file[0] == '/');
	}
	CHECK(c->min_version >= VMS_TLS10 && c->min_version <= c->max_version &&
	      c->max_version <= VMS_TLS13);
	if (c->client_ca_file)
		CHECK(c->client_auth != VMS_TLS_NO_CLIENT_CERT);
	check_str(vms_webconfig_client_auth_name(c->client_auth));
	for (size_t i = 0; i < c->ncipher_suites; i++)
		CHECK(!strncmp(c->cipher_suites[i], "TLS_", 4));
	for (size_t i = 0; i < c->ncurves; i++)
		check_str(c->curves[i]);
	for (size_t i = 0; i < c->nclient_allowed_sans; i++)
		CHECK(*c->client_allowed_sans[i]);
	for (size_t i = 0; i < c->nheaders; i++) {
		check_str(c->headers[i].name);
		check_str(c->headers[i].value);
		CHECK(!strpbrk(c->headers[i].value, "\r\n"));
	}
	for (size_t i = 0; i < c->nusers; i++) {
		check_str(c->users[i].name);
		CHECK(!strchr(c->users[i].name, ':'));
		CHECK(strlen(c->users[i].hash) == 60 && !strncmp(c->users[i].hash, "$2", 2));
		for (size_t k = 0; k < i; k++)
			CHECK(strcmp(c->users[k].name, c->users[i].name));
	}
	ret = vms_webconfig_tls_priorities(c, prio, sizeof(prio));
	CHECK(ret > 0 && (size_t)ret == strlen(prio) && !strncmp(prio, "NORMAL", 6));
	for (size_t i = 0; i < c->ncipher_suites; i++)
		CHECK(vms_webconfig_cipher_allowed(c,
						   vms_webconfig_cipher_id(c->cipher_suites[i])));
	/* No credentials: refused exactly when there are users, and no bcrypt is run. */
	CHECK(vms_webconfig_authorize(c, NULL) == (c->nusers ? -EACCES : 0));
	vms_webconfig_free(c);
	return 0;
}
