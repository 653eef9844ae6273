// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmscope serve: a Prometheus exporter. Every scrape of /metrics takes a new sample of the
 * host's VMs (the sampler stat and top use) and answers with its exposition
 * (vmscope/prom.h); nothing is computed between scrapes. A VM that goes away mid-scrape is
 * simply not in the answer; a VM whose KVM statistics or events cannot be read is logged
 * once, with the reason, and its source_up gauge says so.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "vmscope/prom.h"
#include "vmscope/sampler.h"

#ifdef VMS_HAVE_MICROHTTPD
#include <microhttpd.h>

#include "serve-web.h"
#endif

#define CMD "serve"
#define DEFAULT_PORT 9977

static const char usage_text[] =
	"Usage: vmscope serve [OPTIONS]\n"
	"\n"
	"A Prometheus exporter: every scrape of http://LISTEN/metrics samples the host's KVM\n"
	"VMs and answers with per VM and per vCPU CPU seconds (run, run-queue wait, user,\n"
	"system, guest), kvm trace events counted in the kernel, exits by reason (-x),\n"
	"wakeup-latency histograms (traced), every KVM statistic in base units, the host\n"
	"CPUs' time by mode (guest and steal apart), and per-source up gauges. Names\n"
	"follow Prometheus' conventions and the libvirt exporters' where they overlap\n"
	"(libvirt_domain_vcpu_time_seconds_total).\n"
	"\n"
	"Options:\n"
	"  -l, --listen ADDR:PORT   where to listen [127.0.0.1:9977]; ADDR 0.0.0.0 for all\n"
	"  -x, --exit-reasons       also exits by reason per vCPU (see vmscope stat -x)\n"
	"      --no-events          no kernel-counted trace events\n"
	"      --no-kvm-stats       leave KVM's own statistics out, and ask no VMM for them\n"
	"                           (QEMU answers query-stats in tens of ms per VM)\n"
	"      --web-config FILE    TLS, client certificates and basic auth from FILE, the\n"
	"                           Prometheus exporters' web configuration file (their\n"
	"                           flag web.config.file works too): tls_server_config\n"
	"                           (cert_file, key_file, client_auth_type, client_ca_file,\n"
	"                           min_version, max_version, cipher_suites,\n"
	"                           curve_preferences, client_allowed_sans...),\n"
	"                           http_server_config (headers), basic_auth_users (user:\n"
	"                           bcrypt hash). Relative paths are relative to FILE's\n"
	"                           directory. E.g.\n"
	"                             tls_server_config:\n"
	"                               cert_file: vmscope.crt\n"
	"                               key_file: vmscope.key\n"
	"                             basic_auth_users:\n"
	"                               prometheus: $2y$10$... (htpasswd -nbBC 10 USER PW)\n"
	"  -v, --verbose            library detail on stderr\n"
	"  -h, --help               this text\n"
	"\n"
	"Runs until SIGINT or SIGTERM. Exit status: 0, 1 when it cannot listen or the web\n"
	"configuration is wrong, 2 for a wrong command line.\n";

struct serve_args {
	struct sockaddr_in addr;
	bool reasons, events, kvm_stats, verbose;
	const char *web_config; /* --web-config FILE, or NULL */
};

static int parse_listen(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	unsigned long long port;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (!colon || (size_t)(colon - s) >= sizeof(host) ||
	    cli_parse_uint(colon + 1, 65535, &port) || !port)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	if (inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &sa->sin_addr) != 1)
		return -1;
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

static int parse_args(int argc, char **argv, struct serve_args *a)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "exit-reasons", no_argument, NULL, 'x' },
		{ "no-events", no_argument, NULL, 'E' },
		{ "no-kvm-stats", no_argument, NULL, 'K' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "web-config", required_argument, NULL, 'W' },
		{ "web.config.file", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	int c, ret;

	memset(a, 0, sizeof(*a));
	a->events = a->kvm_stats = true;
	parse_listen("127.0.0.1:9977", &a->addr);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "l:xvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (parse_listen(optarg, &a->addr))
				return cli_usage_error(CMD,
						       "--listen takes IPv4-ADDRESS:PORT (e.g. "
						       "127.0.0.1:9977), not '%s'",
						       optarg);
			break;
		case 'x':
			a->reasons = true;
			break;
		case 'E':
			a->events = false;
			break;
		case 'K':
			a->kvm_stats = false;
			break;
		case 'W':
			a->web_config = optarg;
			break;
		default:
			ret = cli_common_option(CMD, c, argv, usage_text, NULL, &a->verbose);
			if (ret)
				return ret;
			break;
		}
	}
	if (optind < argc)
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
	return 0;
}

#ifdef VMS_HAVE_MICROHTTPD

struct server {
	struct serve_args *a;
	struct vms_sampler *s;
	pthread_mutex_t lock;
	int *logged; /* pids whose trouble was logged once */
	size_t nlogged;
	struct serve_web *web; /* --web-config, or NULL */
};

/* Each VM's trouble (KVM statistics, events) once on stderr, not on every scrape. */
static void log_once(struct server *sv, const struct vms_sample *smp)
{
	for (size_t i = 0; i < smp->nvms; i++) {
		const struct vms_sample_vm *v = &smp->vms[i];
		bool seen = false;
		int *p;

		if (!v->kvm_err && !v->events_err)
			continue;
		for (size_t k = 0; k < sv->nlogged && !seen; k++)
			seen = sv->logged[k] == v->vm->pid;
		if (seen)
			continue;
		if (v->kvm_err && sv->a->kvm_stats)
			cli_error(CMD, "VM %d \"%s\": KVM statistics not readable: %s", v->vm->pid,
				  v->vm->name,
				  v->kvm_msg[0] ? v->kvm_msg : vms_strerror(v->kvm_err));
		if (v->events_err && sv->a->events)
			cli_error(CMD, "VM %d \"%s\": events not counted: %s", v->vm->pid,
				  v->vm->name,
				  v->events_msg[0] ? v->events_msg : vms_strerror(v->events_err));
		p = realloc(sv->logged, (sv->nlogged + 1) * sizeof(*p));
		if (!p)
			return;
		sv->logged = p;
		sv->logged[sv->nlogged++] = v->vm->pid;
	}
}

/* The exposition of a new sample, malloc'ed; NULL and *code on failure. */
static char *scrape(struct server *sv, size_t *len, unsigned int *code)
{
	struct vms_prom_opts po = { sizeof(po), sv->a->kvm_stats, 0 };
	char *buf = NULL;
	uint64_t t0 = cli_mono_ns();
	FILE *f;
	int err;

	pthread_mutex_lock(&sv->lock);
	err = vms_sampler_update(sv->s);
	if (err) {
		pthread_mutex_unlock(&sv->lock);
		cli_error(CMD, "cannot sample the host: %s", vms_strerror(err));
		*code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		return NULL;
	}
	log_once(sv, vms_sampler_sample(sv->s));
	f = open_memstream(&buf, len);
	po.scrape_seconds = (double)(cli_mono_ns() - t0) / 1e9;
	if (!f || vms_prom_write(f, sv->s, &po)) {
		if (f)
			fclose(f);
		free(buf);
		pthread_mutex_unlock(&sv->lock);
		*code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		return NULL;
	}
	fclose(f);
	pthread_mutex_unlock(&sv->lock);
	*code = MHD_HTTP_OK;
	return buf;
}

static const char index_page[] =
	"<html><head><title>vmscope</title></head><body><h1>vmscope exporter</h1>"
	"<p><a href=\"/metrics\">metrics</a></p></body></html>\n";

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **con_cls)
{
	struct server *sv = cls;
	struct MHD_Response *r;
	unsigned int code = MHD_HTTP_OK;
	enum MHD_Result ret;
	const char *type = "text/plain; charset=utf-8";

	(void)version;
	(void)upload;
	(void)upload_len;
	if (!*con_cls) { /* the headers: answer once the request is whole */
		*con_cls = (void *)1;
		return MHD_YES;
	}
	if (!serve_web_allowed(sv->web, conn, &ret)) /* basic auth */
		return ret;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		static const char msg[] = "only GET and HEAD\n";

		r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						    MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (!strcmp(url, "/metrics")) {
		size_t len = 0;
		char *body = scrape(sv, &len, &code);

		if (body) {
			r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
			type = "text/plain; version=0.0.4; charset=utf-8";
		} else {
			static const char msg[] =
				"vmscope could not sample the host; see its log\n";

			r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
							    MHD_RESPMEM_PERSISTENT);
		}
	} else if (!strcmp(url, "/")) {
		r = MHD_create_response_from_buffer(sizeof(index_page) - 1, (void *)index_page,
						    MHD_RESPMEM_PERSISTENT);
		type = "text/html; charset=utf-8";
	} else {
		static const char msg[] = "not found: the metrics are at /metrics\n";

		r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						    MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_NOT_FOUND;
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	serve_web_add_headers(sv->web, r);
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int serve(struct serve_args *a)
{
	struct vms_sampler_opts so = {
		.sz = sizeof(so),
		.no_events = !a->events,
		.exit_reasons = a->reasons,
		.wakeup_latency = true,
		.no_vmm_stats = !a->kvm_stats,
	};
	struct server sv = { a, NULL, PTHREAD_MUTEX_INITIALIZER, NULL, 0 };
	struct MHD_Daemon *d;
	char addr[INET_ADDRSTRLEN];
	struct sigaction sig;
	sigset_t block, old;
	int err;

	if (a->web_config && serve_web_open(CMD, a->web_config, &sv.web))
		return CLI_EXIT_FAIL;
	err = vms_sampler_new(&so, &sv.s);
	if (err) {
		serve_web_close(sv.web);
		return cli_error(CMD, "%s", vms_strerror(err));
	}
	memset(&sig, 0, sizeof(sig));
	sig.sa_handler = on_signal;
	sigaction(SIGINT, &sig, NULL);
	sigaction(SIGTERM, &sig, NULL);
	/* The server's threads leave the signals to this one. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | serve_web_daemon_flags(sv.web),
			     ntohs(a->addr.sin_port), NULL, NULL, answer, &sv, MHD_OPTION_SOCK_ADDR,
			     (struct sockaddr *)&a->addr, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
			     MHD_OPTION_ARRAY, serve_web_daemon_options(sv.web), MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	inet_ntop(AF_INET, &a->addr.sin_addr, addr, sizeof(addr));
	if (!d) {
		vms_sampler_free(sv.s);
		serve_web_close(sv.web);
		return cli_error(CMD, "cannot listen on %s:%u (in use, or no permission)", addr,
				 ntohs(a->addr.sin_port));
	}
	fprintf(stderr, "vmscope serve: listening on %s://%s:%u/metrics%s%s%s\n",
		serve_web_scheme(sv.web), addr, ntohs(a->addr.sin_port),
		*serve_web_summary(sv.web) ? " (" : "", serve_web_summary(sv.web),
		*serve_web_summary(sv.web) ? ")" : "");
	while (!stop)
		pause();
	MHD_stop_daemon(d);
	vms_sampler_free(sv.s);
	free(sv.logged);
	serve_web_close(sv.web);
	return 0;
}

#else

static int serve(struct serve_args *a)
{
	(void)a;
	return cli_error(CMD, "this vmscope was built without libmicrohttpd (Debian: "
			      "apt-get install libmicrohttpd-dev, then rebuild)");
}

#endif

static int cmd_serve_run(int argc, char **argv)
{
	struct serve_args a;
	int ret = parse_args(argc, argv, &a);

	if (ret)
		return ret;
	cli_setup_log(CMD, a.verbose);
	return serve(&a);
}

const struct vms_cmd cmd_serve = {
	.name = "serve",
	.summary = "a Prometheus exporter of the host's VMs",
	.usage = usage_text,
	.run = cmd_serve_run,
};
