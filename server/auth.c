/*
 * Who is calling: passwords (argon2id), tokens (32 random bytes, only
 * their SHA-256 stored), roles, and the first admin. No password or token
 * is ever logged, audited or kept longer than the call that uses it.
 */
#define CF_LOG_MODULE "auth"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <argon2.h>

#include "coffer/buf.h"
#include "coffer/enc.h"
#include "coffer/log.h"
#include "internal.h"

#define PASSWORD_MIN 12
#define PASSWORD_MAX 1024
#define SALT_LEN 16
#define HASH_LEN 32

static const char *const role_names[] = {
	[ROLE_ADMIN] = "admin",
	[ROLE_OPERATOR] = "operator",
	[ROLE_ORG_ADMIN] = "org-admin",
	[ROLE_ANALYST] = "analyst",
	[ROLE_AUDITOR] = "auditor",
};

role role_parse(const char *s)
{
	for (size_t i = ROLE_ADMIN; s && i <= ROLE_AUDITOR; i++) {
		if (strcmp(s, role_names[i]) == 0)
			return (role)i;
	}
	return ROLE_NONE;
}

const char *role_name(role r)
{
	return r >= ROLE_ADMIN && r <= ROLE_AUDITOR ? role_names[r] : "none";
}

bool password_acceptable(size_t len)
{
	return len >= PASSWORD_MIN && len <= PASSWORD_MAX;
}

cf_err password_hash(cofferd *d, const char *password, size_t len, char out[static STORE_PWHASH_LEN])
{
	uint8_t salt[SALT_LEN];
	if (!password_acceptable(len))
		return CF_ERR_ARG;
	cf_err rc = cf_random(salt, sizeof(salt));
	if (rc != CF_OK)
		return rc;
	int a = argon2id_hash_encoded(d->argon2_t, d->argon2_m_kib, 1, password, len, salt,
				      sizeof(salt), HASH_LEN, out, STORE_PWHASH_LEN);
	if (a != ARGON2_OK) {
		log_error("argon2id: %s", argon2_error_message(a));
		return a == ARGON2_MEMORY_ALLOCATION_ERROR ? CF_ERR_NOMEM : CF_ERR_CRYPTO;
	}
	return CF_OK;
}

cf_err password_verify(const char *hash, const char *password, size_t len)
{
	if (len > PASSWORD_MAX)
		return CF_ERR_AUTH;
	int a = argon2id_verify(hash, password, len);
	if (a == ARGON2_OK)
		return CF_OK;
	if (a == ARGON2_VERIFY_MISMATCH)
		return CF_ERR_AUTH;
	log_error("argon2id: %s", argon2_error_message(a));
	return a == ARGON2_MEMORY_ALLOCATION_ERROR ? CF_ERR_NOMEM : CF_ERR_AUTH;
}

/* --- tokens --- */

cf_err token_make(char text[static COFFERD_TOKEN_LEN + 1], uint8_t hash[static CF_SHA256_LEN])
{
	uint8_t raw[COFFERD_TOKEN_BYTES];
	char b64[64];
	cf_err rc = cf_random(raw, sizeof(raw));
	if (rc != CF_OK)
		goto out;
	cf_b64_encode(raw, sizeof(raw), false, b64);
	/* base64url: the token travels in headers and shell variables unquoted. */
	for (char *p = b64; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	if (strlen(b64) != COFFERD_TOKEN_LEN - 4) {
		rc = CF_ERR_ARG;
		goto out;
	}
	memcpy(text, COFFERD_TOKEN_PREFIX, 4);
	memcpy(text + 4, b64, COFFERD_TOKEN_LEN - 4);
	text[COFFERD_TOKEN_LEN] = 0;
	rc = cf_hash(CF_SHA256, text, COFFERD_TOKEN_LEN, hash);
out:
	cf_wipe(raw, sizeof(raw));
	cf_wipe(b64, sizeof(b64));
	return rc;
}

static bool token_well_formed(const char *t, size_t len)
{
	if (len != COFFERD_TOKEN_LEN || strncmp(t, COFFERD_TOKEN_PREFIX, 4) != 0)
		return false;
	for (size_t i = 4; i < len; i++) {
		char c = t[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

cf_err authenticate(ctx *c)
{
	const char *h = c->req->authorization;
	uint8_t hash[CF_SHA256_LEN];
	memset(&c->who, 0, sizeof(c->who));
	if (!h || !*h)
		return CF_ERR_NOT_FOUND;
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return CF_ERR_AUTH;
	const char *t = h + 7;
	size_t len = strlen(t);
	if (!token_well_formed(t, len) || cf_hash(CF_SHA256, t, len, hash) != CF_OK)
		return CF_ERR_AUTH;
	store_token tok;
	cf_err rc = store_token_lookup(c->d->db, hash, c->now, &tok);
	if (rc != CF_OK)
		return rc == CF_ERR_NOT_FOUND ? CF_ERR_AUTH : rc;
	if (strcmp(tok.kind, "run") == 0) {
		c->who.kind = CALLER_RUN;
		c->who.token = tok;
		snprintf(c->who.actor, sizeof(c->who.actor), "run:%s", tok.run_id);
		return CF_OK;
	}
	if ((rc = store_user_get_id(c->d->db, tok.user_id, &c->who.user)) != CF_OK)
		return rc == CF_ERR_NOT_FOUND ? CF_ERR_AUTH : rc;
	cf_wipe(c->who.user.pwhash, sizeof(c->who.user.pwhash));
	c->who.kind = CALLER_USER;
	c->who.role = role_parse(c->who.user.role);
	c->who.token = tok;
	if (strcmp(tok.kind, "api") == 0)
		snprintf(c->who.actor, sizeof(c->who.actor), "token:%s", tok.id);
	else
		snprintf(c->who.actor, sizeof(c->who.actor), "user:%s", c->who.user.name);
	return c->who.role == ROLE_NONE ? CF_ERR_AUTH : CF_OK;
}

bool is_admin(const ctx *c)
{
	return c->who.kind == CALLER_USER && c->who.role == ROLE_ADMIN;
}

bool member_of(const ctx *c, const char *org, unsigned roles)
{
	if (is_admin(c))
		return true;
	return c->who.kind == CALLER_USER && (roles & R(c->who.role)) && org && *org &&
	       strcmp(c->who.user.org, org) == 0;
}

/* --- the first admin --- */

/* Reads the first line of a password file (refusing one others can read). */
static cf_err read_password(const char *path, cf_buf *pw)
{
	struct stat st;
	cf_err rc = CF_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("cannot read %s: %s", path, strerror(errno));
		return CF_ERR_IO;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077))
		log_warn("%s is readable by others", path);
	for (;;) {
		uint8_t chunk[512];
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? CF_ERR_IO : CF_OK;
			cf_wipe(chunk, sizeof(chunk));
			break;
		}
		rc = cf_buf_append(pw, chunk, (size_t)n);
		cf_wipe(chunk, sizeof(chunk));
		if (rc != CF_OK)
			break;
	}
	close(fd);
	if (rc == CF_OK) {
		size_t n = 0;
		while (n < pw->len && pw->data[n] != '\n' && pw->data[n] != '\r')
			n++;
		pw->len = n;
		rc = cf_buf_terminate(pw);
	}
	return rc;
}

/* 24 random characters of base64url, into STATE/admin.password (0600). */
static cf_err random_password(cofferd *d, cf_buf *pw)
{
	uint8_t raw[18];
	char text[32];
	char path[COFFERD_PATH_MAX + 32];
	cf_err rc = cf_random(raw, sizeof(raw));
	if (rc != CF_OK)
		return rc;
	cf_b64_encode(raw, sizeof(raw), false, text);
	cf_wipe(raw, sizeof(raw));
	for (char *p = text; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	rc = cf_buf_append_str(pw, text);
	if (rc == CF_OK)
		rc = cf_buf_terminate(pw);
	snprintf(path, sizeof(path), "%s/" COFFERD_ADMIN_PASSWORD_FILE, d->state_dir);
	int fd = rc == CF_OK ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)
			     : -1;
	if (rc == CF_OK && (fd < 0 || fchmod(fd, 0600) != 0 ||
			    write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
			    write(fd, "\n", 1) != 1 || fsync(fd) != 0)) {
		log_error("cannot write %s: %s", path, strerror(errno));
		rc = CF_ERR_IO;
	}
	if (fd >= 0)
		close(fd);
	cf_wipe(text, sizeof(text));
	if (rc == CF_OK)
		log_info("the admin's password is in %s", path);
	return rc;
}

cf_err ensure_admin(cofferd *d, const char *password_file)
{
	long long users = 0;
	cf_buf pw;
	cf_buf_init(&pw, PASSWORD_MAX + 2, true);
	store_user u;
	memset(&u, 0, sizeof(u));
	cf_err rc = store_user_count(d->db, &users);
	if (rc != CF_OK || users > 0)
		goto out;
	rc = password_file ? read_password(password_file, &pw) : random_password(d, &pw);
	if (rc != CF_OK)
		goto out;
	if (!password_acceptable(pw.len)) {
		log_error("%s: the admin's password must be 12 to 1024 bytes", password_file);
		rc = CF_ERR_ARG;
		goto out;
	}
	if ((rc = make_id("usr", u.id)) != CF_OK ||
	    (rc = password_hash(d, (const char *)pw.data, pw.len, u.pwhash)) != CF_OK)
		goto out;
	snprintf(u.name, sizeof(u.name), "admin");
	snprintf(u.role, sizeof(u.role), "admin");
	u.created = (int64_t)d->now();
	if ((rc = store_user_create(d->db, &u)) != CF_OK)
		goto out;
	rc = cofferd_audit(d, "cofferd", "user.create", "user/admin", "ok");
out:
	cf_wipe(&u, sizeof(u));
	cf_buf_free(&pw);
	return rc;
}
