/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmscope serve's web configuration (--web-config, the exporter-toolkit file): what the
 * libmicrohttpd daemon needs for TLS and client certificates, and the basic-auth check of
 * every request. Built only with libmicrohttpd (cli/serve-web.c); every function accepts a
 * NULL web configuration, which means plain HTTP without authentication.
 */
#ifndef VMSCOPE_CLI_SERVE_WEB_H
#define VMSCOPE_CLI_SERVE_WEB_H

#include <stdbool.h>

#include <microhttpd.h>

struct serve_web;

/*
 * Read and check @path (the file, its certificate and key, its client CAs). On a problem,
 * one line on stderr naming the file and the problem, and CLI_EXIT_FAIL; else 0 and *out
 * (free with serve_web_close()).
 */
int serve_web_open(const char *cmd, const char *path, struct serve_web **out);
void serve_web_close(struct serve_web *w);

/* MHD_USE_TLS with TLS, else 0; and the options to start the daemon with (MHD_OPTION_ARRAY). */
unsigned int serve_web_daemon_flags(const struct serve_web *w);
struct MHD_OptionItem *serve_web_daemon_options(struct serve_web *w);

/* "https" or "http"; and a few words on what protects the endpoint ("" for nothing). */
const char *serve_web_scheme(const struct serve_web *w);
const char *serve_web_summary(const struct serve_web *w);

/*
 * Whether the request on @conn may be answered (its basic-auth credentials); when not, a
 * 401 with WWW-Authenticate: Basic is queued and *ret is what the access handler returns.
 */
bool serve_web_allowed(struct serve_web *w, struct MHD_Connection *conn, enum MHD_Result *ret);

/* The file's http_server_config.headers, on a response. */
void serve_web_add_headers(const struct serve_web *w, struct MHD_Response *r);

#endif /* VMSCOPE_CLI_SERVE_WEB_H */
