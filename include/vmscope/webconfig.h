/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The web configuration file of Prometheus exporters (the exporter-toolkit format, the
 * file of `--web.config.file`): TLS for the HTTP server, optional client certificates, and
 * HTTP basic auth against bcrypt hashes. A YAML file with three keys at the top:
 *
 *   tls_server_config:   cert_file, key_file, client_auth_type, client_ca_file,
 *                        min_version, max_version, cipher_suites, curve_preferences,
 *                        prefer_server_cipher_suites, client_allowed_sans
 *   http_server_config:  http2, headers
 *   basic_auth_users:    user: bcrypt hash
 *
 * The file is untrusted input: it is parsed strictly (an unknown or repeated key is an
 * error, as exporter-toolkit's strict unmarshalling is), and every error message names the
 * file, the line and the key. Relative paths in the file are relative to its directory.
 * The library only reads and checks the file; serving TLS is the caller's business, with
 * the PEM text and the GnuTLS priority string that this module hands over.
 */
#ifndef VMSCOPE_WEBCONFIG_H
#define VMSCOPE_WEBCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmscope/vmscope.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tls_server_config.client_auth_type, Go's crypto/tls names. */
enum vms_tls_client_auth {
	VMS_TLS_NO_CLIENT_CERT,		       /* NoClientCert (the default) */
	VMS_TLS_REQUEST_CLIENT_CERT,	       /* RequestClientCert: asked, not verified */
	VMS_TLS_REQUIRE_ANY_CLIENT_CERT,       /* RequireAnyClientCert: required, not verified */
	VMS_TLS_VERIFY_CLIENT_CERT_IF_GIVEN,   /* VerifyClientCertIfGiven */
	VMS_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT /* RequireAndVerifyClientCert */
};

/* TLS protocol versions as on the wire: TLS10 is 0x0301, TLS13 0x0304. */
#define VMS_TLS10 0x0301
#define VMS_TLS11 0x0302
#define VMS_TLS12 0x0303
#define VMS_TLS13 0x0304

/* One user of basic_auth_users. */
struct vms_webconfig_user {
	char *name;
	char *hash; /* a bcrypt hash: $2a$, $2b$ or $2y$, cost 4 to 31 */
};

/* One header of http_server_config.headers, added to every response. */
struct vms_webconfig_header {
	char *name;
	char *value;
};

struct vms_webconfig_cache;

/*
 * A parsed web configuration. Read-only for the caller; every member is owned by it and
 * freed by vms_webconfig_free().
 */
struct vms_webconfig {
	char *path; /* the file, as given */

	/* tls_server_config; tls is false when the file has none (plain HTTP) */
	bool tls;
	char *cert_file, *key_file, *client_ca_file; /* resolved against the file's dir */
	char *cert_pem, *key_pem, *client_ca_pem;    /* their text with VMS_WEBCONFIG_READ_FILES */
	enum vms_tls_client_auth client_auth;
	unsigned int min_version, max_version; /* VMS_TLS1x; defaults TLS12 and TLS13 */
	const char **cipher_suites;	       /* Go's (IANA) names, static strings, in order */
	size_t ncipher_suites;
	const char **curves; /* "X25519", "CurveP256", "CurveP384", "CurveP521" */
	size_t ncurves;
	bool prefer_server_cipher_suites; /* default true */
	char **client_allowed_sans;	  /* DNS names, e-mail addresses, IPs, URIs */
	size_t nclient_allowed_sans;

	/* http_server_config */
	bool http2; /* default true; accepted, libmicrohttpd speaks HTTP/1.1 only */
	struct vms_webconfig_header *headers;
	size_t nheaders;

	/* basic_auth_users; none: no authentication */
	struct vms_webconfig_user *users;
	size_t nusers;

	struct vms_webconfig_cache *cache; /* private: recent successful checks */
};

/* Flags of vms_webconfig_parse(). */
#define VMS_WEBCONFIG_READ_FILES 0x1 /* read cert_file, key_file, client_ca_file */

/**
 * vms_webconfig_parse() - parse and check a web configuration file's text
 * @text: the YAML text (need not be NUL-terminated)
 * @len: its length
 * @path: the file's name: messages name it, relative paths are resolved against its dir
 * @flags: VMS_WEBCONFIG_READ_FILES to read the PEM files too (into cert_pem, key_pem,
 *	   client_ca_pem); without it no file is opened
 * @out: receives the configuration (free with vms_webconfig_free())
 * @err: receives "PATH:LINE: KEY: what is wrong", at most @errlen bytes
 * @errlen: size of @err
 *
 * Return: 0; -VMS_E_PARSE when the file is not a valid web configuration (unknown or
 * repeated key, wrong type, bad value, missing cert_file, bad bcrypt hash, duplicate
 * user...); a negative errno when a PEM file cannot be read; -ENOMEM.
 */
VMS_API int vms_webconfig_parse(const char *text, size_t len, const char *path, unsigned int flags,
				struct vms_webconfig **out, char *err, size_t errlen);

/**
 * vms_webconfig_load() - read, parse and check a web configuration file and its PEM files
 * @path: the file
 * @out: receives the configuration (free with vms_webconfig_free())
 * @err: receives "PATH: what is wrong" or "PATH:LINE: KEY: what is wrong"
 * @errlen: size of @err
 *
 * vms_webconfig_parse() with VMS_WEBCONFIG_READ_FILES on the file's text.
 * Return: 0, a negative errno (the file cannot be read), or as vms_webconfig_parse().
 */
VMS_API int vms_webconfig_load(const char *path, struct vms_webconfig **out, char *err,
			       size_t errlen);

/**
 * vms_webconfig_reread_keypair() - read cert_file and key_file again (a renewal)
 * @c: a configuration with TLS
 * @err: receives "cannot read FILE: why" or "FILE is empty", at most @errlen bytes
 * @errlen: size of @err
 *
 * Replaces cert_pem and key_pem (the old key's text is wiped) when both files read and
 * are not empty; else leaves them as they were.
 * Return: 0, -EINVAL (no TLS), a negative errno (a file cannot be read), -VMS_E_PARSE (a
 * file is empty), -ENOMEM.
 */
VMS_API int vms_webconfig_reread_keypair(struct vms_webconfig *c, char *err, size_t errlen);

/** vms_webconfig_free() - free a configuration; NULL is a no-op. */
VMS_API void vms_webconfig_free(struct vms_webconfig *c);

/**
 * vms_webconfig_tls_priorities() - the GnuTLS priority string of the TLS settings
 * @c: the configuration
 * @buf: receives the string (e.g. "NORMAL:%SERVER_PRECEDENCE:-VERS-ALL:+VERS-TLS1.2:
 *	 +VERS-TLS1.3"), NUL-terminated
 * @size: size of @buf
 *
 * Versions min_version to max_version; with cipher_suites, the key exchanges, ciphers and
 * MACs of the TLS 1.2 suites listed (GnuTLS cannot name single suites: the caller checks the
 * suite negotiated against the list) plus TLS 1.3's, which Go always enables; with
 * curve_preferences, those groups in that order.
 * Return: the length, or -ENOSPC.
 */
VMS_API int vms_webconfig_tls_priorities(const struct vms_webconfig *c, char *buf, size_t size);

/**
 * vms_webconfig_cipher_allowed() - whether a negotiated cipher suite may be used
 * @c: the configuration
 * @id: the suite's IANA number (as in the ServerHello)
 *
 * Return: true when cipher_suites is empty or lists @id, or @id is a TLS 1.3 suite (Go
 * enables them all whatever cipher_suites says).
 */
VMS_API bool vms_webconfig_cipher_allowed(const struct vms_webconfig *c, unsigned int id);

/** vms_webconfig_cipher_id() - the IANA number of a Go cipher suite name, 0 if unknown. */
VMS_API unsigned int vms_webconfig_cipher_id(const char *name);

/** vms_webconfig_client_auth_name() - "RequireAndVerifyClientCert"... (static string). */
VMS_API const char *vms_webconfig_client_auth_name(enum vms_tls_client_auth a);

/**
 * vms_webconfig_authorize() - check an HTTP request's Authorization header
 * @c: the configuration
 * @authorization: the header's value ("Basic base64(user:password)"), or NULL when absent
 *
 * With no basic_auth_users every request is authorized. Otherwise the user must be listed
 * and the password must match its bcrypt hash (libxcrypt); the hash is always computed, with
 * a decoy hash for an unknown user, and compared in constant time, so that the time taken
 * does not tell which users exist. A successful check is remembered for
 * VMS_WEBCONFIG_AUTH_CACHE_S seconds (up to 16 users and passwords), as exporter-toolkit
 * caches them, so that a scrape does not pay bcrypt's cost every time. Thread-safe; the
 * bcrypt computations are serialized.
 * Return: 0 when authorized, -EACCES when not (missing, malformed or wrong credentials),
 * -ENOMEM.
 */
VMS_API int vms_webconfig_authorize(struct vms_webconfig *c, const char *authorization);

#define VMS_WEBCONFIG_AUTH_CACHE_S 60

#ifdef __cplusplus
}
#endif

#endif /* VMSCOPE_WEBCONFIG_H */
