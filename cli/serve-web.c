// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope serve's TLS, client certificates and basic auth (cli/serve-web.h), from the
 * exporter-toolkit web configuration file that the library parses (vmscope/webconfig.h).
 *
 * libmicrohttpd serves TLS with GnuTLS from the PEM text and a priority string. What it
 * does not do, client-certificate policy, is done on each connection's GnuTLS session as it
 * starts, before its handshake: the certificate is requested or required as Go's
 * crypto/tls client_auth_type says, verified (chain to client_ca_file, or the system's CAs,
 * and the TLS client purpose) in the handshake, and its SANs matched against
 * client_allowed_sans; a cipher suite negotiated for TLS 1.2 or older that cipher_suites
 * does not list ends the handshake, as GnuTLS priorities cannot name single suites. The
 * certificate, key and CAs are loaded once here first, so that a bad one is a clear message
 * at start-up rather than a daemon that does not start.
 *
 * The server's certificate and key are given to each handshake by a callback, which
 * reloads cert_file and key_file when either changed (looked at once a second at most), as
 * exporter-toolkit does: a renewed certificate is served without a restart. A renewal that
 * does not load (a key of another certificate, a file half written) keeps the previous
 * pair, with one line on stderr. Replaced pairs are kept until the exporter stops, since a
 * handshake in another thread may still use them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cli.h"
#include "serve-web.h"
#include "vmscope/webconfig.h"

#define MAX_CHAIN 16

/* A loaded certificate chain and its key. */
struct cert_pair {
	gnutls_pcert_st pcert[MAX_CHAIN];
	unsigned int n;
	gnutls_privkey_t key;
	struct cert_pair *older; /* replaced, kept until the end */
};

/* What identifies a file's version: a renewal replaces the file or rewrites it. */
struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct serve_web {
	struct vms_webconfig *cfg;
	gnutls_x509_trust_list_t trust; /* verifying client_auth_type only */
	pthread_mutex_t cert_lock;
	bool cert_lock_init;
	struct cert_pair *cert; /* served now */
	struct file_id cert_id, key_id;
	uint64_t cert_checked_ns;
	char priorities[512];
	char summary[160];
	struct MHD_OptionItem opts[8];
};

/* GnuTLS' verify and hook callbacks take no context: the one configuration of the process. */
static struct serve_web *the_web;

static bool verifies(enum vms_tls_client_auth a)
{
	return a == VMS_TLS_VERIFY_CLIENT_CERT_IF_GIVEN ||
	       a == VMS_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT;
}

/* Whether one of the certificate's SANs is in client_allowed_sans (Go's string forms). */
static bool san_allowed(const struct vms_webconfig *c, gnutls_x509_crt_t crt)
{
	for (unsigned int i = 0;; i++) {
		char buf[1024], name[INET6_ADDRSTRLEN];
		size_t size = sizeof(buf) - 1;
		const char *s = buf;
		int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &size, NULL);

		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			return false;
		if (type == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue;
		if (type < 0)
			return false;
		if (type == GNUTLS_SAN_IPADDRESS) {
			if (!inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, name, sizeof(name)) ||
			    (size != 4 && size != 16))
				continue;
			s = name;
		} else if (type == GNUTLS_SAN_DNSNAME || type == GNUTLS_SAN_RFC822NAME ||
			   type == GNUTLS_SAN_URI) {
			buf[size] = '\0';
			if (strlen(buf) != size)
				continue;
		} else {
			continue;
		}
		for (size_t k = 0; k < c->nclient_allowed_sans; k++)
			if (!strcmp(s, c->client_allowed_sans[k]))
				return true;
	}
}

/* In the handshake, once the client's certificate arrived: 0 lets the handshake go on. */
static int verify_client(gnutls_session_t session)
{
	struct serve_web *w = the_web;
	const struct vms_webconfig *c = w->cfg;
	gnutls_x509_crt_t crts[MAX_CHAIN];
	unsigned int n = 0, imported = 0, status = 1;
	const gnutls_datum_t *raw = gnutls_certificate_get_peers(session, &n);
	int ret = GNUTLS_E_CERTIFICATE_ERROR;

	if (!raw || !n) /* none given: the request mode decided whether that is fine */
		return c->client_auth == VMS_TLS_REQUIRE_ANY_CLIENT_CERT ||
				       c->client_auth == VMS_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT
			       ? GNUTLS_E_NO_CERTIFICATE_FOUND
			       : 0;
	if (n > MAX_CHAIN)
		return GNUTLS_E_CERTIFICATE_ERROR;
	for (; imported < n; imported++) {
		if (gnutls_x509_crt_init(&crts[imported]) < 0)
			goto out;
		if (gnutls_x509_crt_import(crts[imported], &raw[imported], GNUTLS_X509_FMT_DER) <
		    0) {
			gnutls_x509_crt_deinit(crts[imported]);
			goto out;
		}
	}
	if (verifies(c->client_auth)) {
		gnutls_typed_vdata_st purpose = { GNUTLS_DT_KEY_PURPOSE_OID,
						  (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 };

		if (gnutls_x509_trust_list_verify_crt2(w->trust, crts, n, &purpose, 1, 0, &status,
						       NULL) < 0 ||
		    status)
			goto out;
	}
	if (c->nclient_allowed_sans && !san_allowed(c, crts[0]))
		goto out;
	ret = 0;
out:
	while (imported)
		gnutls_x509_crt_deinit(crts[--imported]);
	return ret;
}

/*
 * Once the ServerHello is out: refuse a suite that cipher_suites lacks. GnuTLS tells the
 * suite of a handshake only once it is over; the ServerHello names it: version (2 bytes),
 * random (32), session id (1 + its length), then the suite.
 */
static int check_suite(gnutls_session_t session, unsigned int htype, unsigned int when,
		       unsigned int incoming, const gnutls_datum_t *msg)
{
	const unsigned char *m = msg ? msg->data : NULL;
	size_t at;

	(void)session;
	(void)htype;
	(void)when;
	(void)incoming;
	if (!m || msg->size < 35)
		return GNUTLS_E_UNEXPECTED_PACKET;
	at = 35 + (size_t)m[34];
	if (msg->size < at + 2)
		return GNUTLS_E_UNEXPECTED_PACKET;
	return vms_webconfig_cipher_allowed(the_web->cfg, (unsigned int)(m[at] << 8 | m[at + 1]))
		       ? 0
		       : GNUTLS_E_NO_CIPHER_SUITES;
}

/* A new connection, before its handshake: the client-certificate policy on its session. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct serve_web *w = cls;
	const struct vms_webconfig *c = w->cfg;
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t session;

	(void)socket_context;
	if (code != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;
	session = ci->tls_session;
	switch (c->client_auth) {
	case VMS_TLS_NO_CLIENT_CERT:
		gnutls_certificate_server_set_request(session, GNUTLS_CERT_IGNORE);
		break;
	case VMS_TLS_REQUEST_CLIENT_CERT:
	case VMS_TLS_VERIFY_CLIENT_CERT_IF_GIVEN:
		gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
		break;
	case VMS_TLS_REQUIRE_ANY_CLIENT_CERT:
	case VMS_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT:
		gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
		break;
	}
	if (verifies(c->client_auth) || c->nclient_allowed_sans)
		gnutls_session_set_verify_function(session, verify_client);
	if (c->ncipher_suites)
		gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_SERVER_HELLO,
						   GNUTLS_HOOK_POST, check_suite);
}

static void pair_free(struct cert_pair *p)
{
	while (p) {
		struct cert_pair *older = p->older;

		for (unsigned int i = 0; i < p->n; i++)
			gnutls_pcert_deinit(&p->pcert[i]);
		if (p->key)
			gnutls_privkey_deinit(p->key);
		free(p);
		p = older;
	}
}

/* Load @c's PEM chain and its key (checked to match); NULL with the reason in @why. */
static struct cert_pair *pair_load(const struct vms_webconfig *c, const char **why)
{
	gnutls_datum_t cert = { (unsigned char *)c->cert_pem, (unsigned int)strlen(c->cert_pem) };
	gnutls_datum_t key = { (unsigned char *)c->key_pem, (unsigned int)strlen(c->key_pem) };
	gnutls_certificate_credentials_t cred;
	struct cert_pair *p = calloc(1, sizeof(*p));
	int ret;

	*why = "out of memory";
	if (!p || gnutls_certificate_allocate_credentials(&cred) < 0) {
		free(p);
		return NULL;
	}
	/* the same checks as at start-up: a chain, and the key of its first certificate */
	ret = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_certificate_free_credentials(cred);
	p->n = MAX_CHAIN;
	if (ret >= 0)
		ret = gnutls_pcert_list_import_x509_raw(p->pcert, &p->n, &cert, GNUTLS_X509_FMT_PEM,
							0);
	if (ret < 0)
		p->n = 0;
	if (ret >= 0 && (ret = gnutls_privkey_init(&p->key)) >= 0)
		ret = gnutls_privkey_import_x509_raw(p->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (ret < 0) {
		*why = gnutls_strerror(ret);
		pair_free(p);
		return NULL;
	}
	return p;
}

static int file_id_of(const char *path, struct file_id *id)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	*id = (struct file_id){ st.st_dev, st.st_ino, st.st_size, st.st_mtim };
	return 0;
}

static bool same_file(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Under cert_lock: reload cert_file and key_file if either changed since the last look. */
static void maybe_reload(struct serve_web *w)
{
	struct vms_webconfig *c = w->cfg;
	struct file_id cid, kid;
	struct timespec now;
	uint64_t ns;
	struct cert_pair *p = NULL;
	char why[600];
	const char *bad = why;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	if (ns - w->cert_checked_ns < 1000000000ULL)
		return;
	w->cert_checked_ns = ns;
	if (file_id_of(c->cert_file, &cid) || file_id_of(c->key_file, &kid) ||
	    (same_file(&cid, &w->cert_id) && same_file(&kid, &w->key_id)))
		return; /* a renewal in progress may remove a file for a moment */
	if (!vms_webconfig_reread_keypair(c, why, sizeof(why)))
		p = pair_load(c, &bad);
	/* the files as they were read: a failed pair is not tried again until they change */
	w->cert_id = cid;
	w->key_id = kid;
	if (!p) {
		fprintf(stderr,
			"vmscope serve: %s: cert_file %s or key_file %s changed, but they are not "
			"a PEM certificate and its key (%s): still serving the previous one\n",
			c->path, c->cert_file, c->key_file, bad);
		return;
	}
	p->older = w->cert;
	w->cert = p;
}

/* GnuTLS asks for the server's certificate, in each handshake. */
static int retrieve_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
			 const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
			 gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *key)
{
	struct serve_web *w = the_web;

	(void)session;
	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (!w || !w->cert)
		return -1;
	pthread_mutex_lock(&w->cert_lock);
	maybe_reload(w);
	*pcert = w->cert->pcert;
	*pcert_length = w->cert->n;
	*key = w->cert->key;
	pthread_mutex_unlock(&w->cert_lock);
	return 0;
}

/* The certificate and key, and the client CAs, loaded as the TLS server will: 0 or the error. */
static int check_tls(const char *cmd, struct serve_web *w)
{
	const struct vms_webconfig *c = w->cfg;
	gnutls_priority_t prio;
	const char *where = NULL, *why;
	int ret;

	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return cli_error(cmd, "%s: this libmicrohttpd was built without TLS", c->path);
	w->cert = pair_load(c, &why);
	if (!w->cert)
		return cli_error(cmd,
				 "%s: tls_server_config: cert_file %s and key_file %s are not a "
				 "PEM certificate and its unencrypted key: %s",
				 c->path, c->cert_file, c->key_file, why);
	/* what the files are now: the pair read with the configuration (a change from here on
	 * is a renewal) */
	if (file_id_of(c->cert_file, &w->cert_id) || file_id_of(c->key_file, &w->key_id))
		return cli_error(cmd, "%s: tls_server_config: cannot stat %s or %s: %s", c->path,
				 c->cert_file, c->key_file, strerror(errno));
	ret = vms_webconfig_tls_priorities(c, w->priorities, sizeof(w->priorities));
	if (ret < 0 || gnutls_priority_init(&prio, w->priorities, &where) < 0)
		return cli_error(cmd,
				 "%s: tls_server_config: GnuTLS refuses its settings (%s at '%s')",
				 c->path, w->priorities, where ? where : "?");
	gnutls_priority_deinit(prio);
	if (!verifies(c->client_auth))
		return 0;
	if (gnutls_x509_trust_list_init(&w->trust, 0) < 0)
		return cli_error(cmd, "%s: out of memory", c->path);
	if (c->client_ca_pem) {
		gnutls_datum_t ca = { (unsigned char *)c->client_ca_pem,
				      (unsigned int)strlen(c->client_ca_pem) };

		ret = gnutls_x509_trust_list_add_trust_mem(w->trust, &ca, NULL, GNUTLS_X509_FMT_PEM,
							   0, 0);
		if (ret <= 0)
			return cli_error(cmd,
					 "%s: tls_server_config: client_ca_file %s holds no PEM "
					 "certificate%s%s",
					 c->path, c->client_ca_file, ret < 0 ? ": " : "",
					 ret < 0 ? gnutls_strerror(ret) : "");
	} else {
		/* Go verifies against the system's CAs when no client CA is given. */
		ret = gnutls_x509_trust_list_add_system_trust(w->trust, 0, 0);
		if (ret <= 0)
			return cli_error(cmd,
					 "%s: tls_server_config: %s without client_ca_file needs "
					 "the system's CAs, and none could be read",
					 c->path, vms_webconfig_client_auth_name(c->client_auth));
	}
	return 0;
}

int serve_web_open(const char *cmd, const char *path, struct serve_web **out)
{
	struct serve_web *w = calloc(1, sizeof(*w));
	struct MHD_OptionItem *o;
	char err[1024];
	size_t len = 0;
	int ret;

	*out = NULL;
	if (!w)
		return cli_error(cmd, "out of memory");
	pthread_mutex_init(&w->cert_lock, NULL);
	w->cert_lock_init = true;
	ret = vms_webconfig_load(path, &w->cfg, err, sizeof(err));
	if (ret) {
		free(w);
		return cli_error(cmd, "%s", err);
	}
	if (w->cfg->tls && check_tls(cmd, w)) {
		serve_web_close(w);
		return CLI_EXIT_FAIL;
	}
	o = w->opts;
	if (w->cfg->tls) {
		const struct vms_webconfig *c = w->cfg;

		if (MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) == MHD_YES) {
			*o++ = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
							(void *)retrieve_cert };
		} else { /* served as loaded: a renewal needs a restart */
			*o++ = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, c->cert_pem };
			*o++ = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, c->key_pem };
		}
		*o++ = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0, w->priorities };
		/* Also names the acceptable CAs in the server's certificate request. */
		if (c->client_ca_pem)
			*o++ = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0,
							c->client_ca_pem };
		*o++ = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
						(intptr_t)on_connection, w };
		/* 0x0301 is TLS 1.0 */
		len += (size_t)snprintf(w->summary + len, sizeof(w->summary) - len, "TLS 1.%u",
					(c->min_version & 0xff) - 1);
		if (c->max_version != c->min_version)
			len += (size_t)snprintf(w->summary + len, sizeof(w->summary) - len, "-1.%u",
						(c->max_version & 0xff) - 1);
		if (c->client_auth != VMS_TLS_NO_CLIENT_CERT)
			len += (size_t)snprintf(w->summary + len, sizeof(w->summary) - len,
						", client certificates: %s",
						vms_webconfig_client_auth_name(c->client_auth));
	}
	*o = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	if (w->cfg->nusers)
		snprintf(w->summary + len, sizeof(w->summary) - len, "%sbasic auth (%zu user%s)%s",
			 len ? ", " : "", w->cfg->nusers, w->cfg->nusers == 1 ? "" : "s",
			 w->cfg->tls ? "" : " without TLS: passwords cross the network in clear");
	the_web = w;
	*out = w;
	return 0;
}

void serve_web_close(struct serve_web *w)
{
	if (!w)
		return;
	if (the_web == w)
		the_web = NULL;
	if (w->trust)
		gnutls_x509_trust_list_deinit(w->trust, 1);
	pair_free(w->cert);
	if (w->cert_lock_init)
		pthread_mutex_destroy(&w->cert_lock);
	vms_webconfig_free(w->cfg);
	free(w);
}

unsigned int serve_web_daemon_flags(const struct serve_web *w)
{
	return w && w->cfg->tls ? MHD_USE_TLS : 0;
}

struct MHD_OptionItem *serve_web_daemon_options(struct serve_web *w)
{
	static struct MHD_OptionItem none[] = { { MHD_OPTION_END, 0, NULL } };

	return w ? w->opts : none;
}

const char *serve_web_scheme(const struct serve_web *w)
{
	return w && w->cfg->tls ? "https" : "http";
}

const char *serve_web_summary(const struct serve_web *w)
{
	return w ? w->summary : "";
}

bool serve_web_allowed(struct serve_web *w, struct MHD_Connection *conn, enum MHD_Result *ret)
{
	static const char msg[] = "Unauthorized\n";
	struct MHD_Response *r;

	if (!w || !w->cfg->nusers)
		return true;
	if (!vms_webconfig_authorize(w->cfg,
				     MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								 MHD_HTTP_HEADER_AUTHORIZATION)))
		return true;
	r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
	if (!r) {
		*ret = MHD_NO;
		return false;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"vmscope\"");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	serve_web_add_headers(w, r);
	*ret = MHD_queue_response(conn, MHD_HTTP_UNAUTHORIZED, r);
	MHD_destroy_response(r);
	return false;
}

void serve_web_add_headers(const struct serve_web *w, struct MHD_Response *r)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->cfg->nheaders; i++)
		MHD_add_response_header(r, w->cfg->headers[i].name, w->cfg->headers[i].value);
}
