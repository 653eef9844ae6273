// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * HTTP basic auth against the bcrypt hashes of a web configuration's basic_auth_users
 * (vmscope/webconfig.h). The Authorization header is decoded here rather than by the HTTP
 * server, so that a NUL byte inside a name or password is refused instead of cutting it
 * short. bcrypt is slow on purpose (cost 10: some 50 ms, each step doubles it), so a
 * successful (user, password) pair is remembered for a minute, as exporter-toolkit does;
 * failures are not remembered, each one costs a bcrypt. Every comparison runs in constant
 * time and an unknown user costs a bcrypt too (against another user's hash), so the time
 * of an answer does not tell whether a user exists or how much of a password was right.
 */
#include <crypt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmscope-local.h"
#include "webconfig-local.h"

#define AUTH_CACHE_SLOTS 16
#define BCRYPT_MAX_PASSWORD 72 /* bcrypt reads no further: longer ones are refused */

struct auth_slot {
	char *user, *pass;
	uint64_t expires_ns;
};

struct vms_webconfig_cache {
	pthread_mutex_t lock;
	struct crypt_data crypt; /* big (32 KiB): one, used under the lock */
	struct auth_slot slots[AUTH_CACHE_SLOTS];
	size_t next; /* the slot to reuse when none is free or expired */
};

int vms_webconfig_cache_new(struct vms_webconfig *c)
{
	c->cache = calloc(1, sizeof(*c->cache));
	if (!c->cache)
		return -ENOMEM;
	pthread_mutex_init(&c->cache->lock, NULL);
	return 0;
}

static void slot_clear(struct auth_slot *s)
{
	if (s->pass) {
		explicit_bzero(s->pass, strlen(s->pass));
		free(s->pass);
	}
	free(s->user);
	memset(s, 0, sizeof(*s));
}

void vms_webconfig_cache_free(struct vms_webconfig *c)
{
	if (!c->cache)
		return;
	for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++)
		slot_clear(&c->cache->slots[i]);
	explicit_bzero(&c->cache->crypt, sizeof(c->cache->crypt));
	pthread_mutex_destroy(&c->cache->lock);
	free(c->cache);
	c->cache = NULL;
}

/* 1 when @a (@alen bytes) equals @b (@blen), in a time that depends on the lengths only. */
static int ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen > blen ? alen : blen;
	unsigned char d = alen != blen;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)((i < alen ? a[i] : 0) ^ (i < blen ? b[i] : 0));
	return d == 0;
}

static int b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Standard base64 (padding optional) into @out (NUL-terminated); the length or -1. */
static ssize_t b64_decode(const char *s, char *out, size_t size)
{
	size_t n = 0, len = strlen(s);
	unsigned int acc = 0, bits = 0;

	while (len && s[len - 1] == '=')
		len--;
	if (len % 4 == 1 || strlen(s) - len > 2)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)s[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n + 1 >= size)
				return -1;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	return (ssize_t)n;
}

/* Split "Basic base64(user:pass)" into @buf; false when it is not that. */
static bool parse_basic(const char *h, char *buf, size_t size, const char **user, const char **pass)
{
	ssize_t n;
	char *colon;

	if (!h || strncasecmp(h, "Basic", 5) || (h[5] != ' ' && h[5] != '\t'))
		return false;
	for (h += 5; *h == ' ' || *h == '\t'; h++)
		;
	n = b64_decode(h, buf, size);
	if (n < 0 || strlen(buf) != (size_t)n) /* a NUL inside */
		return false;
	colon = strchr(buf, ':');
	if (!colon)
		return false;
	*colon = '\0';
	*user = buf;
	*pass = colon + 1;
	return true;
}

/* Whether a fresh cache slot holds (@user, @pass); looks at every slot, in constant time. */
static bool cache_hit(struct vms_webconfig_cache *k, const char *user, const char *pass,
		      uint64_t now)
{
	size_t ul = strlen(user), pl = strlen(pass);
	int hit = 0;

	for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++) {
		struct auth_slot *s = &k->slots[i];

		if (!s->user)
			continue;
		if (s->expires_ns <= now) {
			slot_clear(s);
			continue;
		}
		hit |= ct_equal(s->user, strlen(s->user), user, ul) &
		       ct_equal(s->pass, strlen(s->pass), pass, pl);
	}
	return hit;
}

static void cache_add(struct vms_webconfig_cache *k, const char *user, const char *pass,
		      uint64_t now)
{
	struct auth_slot *s = NULL;

	for (size_t i = 0; i < AUTH_CACHE_SLOTS && !s; i++)
		if (!k->slots[i].user)
			s = &k->slots[i];
	if (!s) {
		s = &k->slots[k->next];
		k->next = (k->next + 1) % AUTH_CACHE_SLOTS;
		slot_clear(s);
	}
	s->user = strdup(user);
	s->pass = strdup(pass);
	if (!s->user || !s->pass) {
		slot_clear(s);
		return;
	}
	s->expires_ns = now + (uint64_t)VMS_WEBCONFIG_AUTH_CACHE_S * 1000000000ull;
}

int vms_webconfig_authorize(struct vms_webconfig *c, const char *authorization)
{
	struct vms_webconfig_cache *k = c->cache;
	const char *user, *pass, *hash, *got;
	size_t found = 0, ul;
	char buf[1024];
	uint64_t now;
	int known = 0, ok;

	if (!c->nusers)
		return 0;
	if (!k)
		return -EACCES;
	if (!authorization || strlen(authorization) > 1300 ||
	    !parse_basic(authorization, buf, sizeof(buf), &user, &pass)) {
		explicit_bzero(buf, sizeof(buf));
		return -EACCES;
	}
	if (strlen(pass) > BCRYPT_MAX_PASSWORD) {
		explicit_bzero(buf, sizeof(buf));
		return -EACCES;
	}
	/* The user: every name is compared, the first match kept without a branch on it. */
	ul = strlen(user);
	for (size_t i = 0; i < c->nusers; i++) {
		int eq = ct_equal(c->users[i].name, strlen(c->users[i].name), user, ul);
		size_t mask = (size_t)0 - (size_t)(eq & !known);

		found = (found & ~mask) | (i & mask);
		known |= eq;
	}
	pthread_mutex_lock(&k->lock);
	now = vms_mono_ns();
	if (known && cache_hit(k, user, pass, now)) {
		pthread_mutex_unlock(&k->lock);
		explicit_bzero(buf, sizeof(buf));
		return 0;
	}
	/* An unknown user costs a bcrypt too: the first user's hash, then a failure. */
	hash = c->users[known ? found : 0].hash;
	/* crypt_rn, not crypt_r: the sanitizers intercept crypt_r, and with --as-needed the
	 * program then links no libcrypt for their interceptor to call. */
	got = crypt_rn(pass, hash, &k->crypt, (int)sizeof(k->crypt));
	/* Compare the hash part only: crypt writes the salt back in its canonical form. */
	ok = got && strlen(got) == 60 && ct_equal(got + 29, 31, hash + 29, 31) && known;
	if (ok)
		cache_add(k, user, pass, now);
	explicit_bzero(&k->crypt, sizeof(k->crypt)); /* the password's copy too */
	pthread_mutex_unlock(&k->lock);
	explicit_bzero(buf, sizeof(buf));
	return ok ? 0 : -EACCES;
}
