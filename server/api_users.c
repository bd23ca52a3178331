/*
 * Sessions, API tokens, organisations and users (docs/api.md, "Sessions,
 * users, organisations"). Passwords are checked with argon2id outside
 * every lock; a user with five failed logins in a minute is answered 401
 * without a check until the minute is over.
 */
#define CF_LOG_MODULE "api"

#include <stdio.h>
#include <string.h>

#include "coffer/age.h"
#include "coffer/buf.h"
#include "coffer/enc.h"
#include "coffer/log.h"
#include "internal.h"

/* Overwrites a secret string inside the request body once it has been used. */
static void wipe_member(ctx *c, const char *key)
{
	json_t *v = json_object_get(c->body, key);
	if (json_is_string(v))
		cf_wipe((char *)json_string_value(v), json_string_length(v));
}

static json_t *user_json(const store_user *u)
{
	return json_pack("{s:s,s:s,s:s?,s:s,s:I}", "id", u->id, "name", u->name, "org",
			 u->org[0] ? u->org : NULL, "role", u->role, "created", (json_int_t)u->created);
}

/* --- sessions --- */

void h_login(ctx *c)
{
	const char *name = body_string(c, "username");
	json_t *pw = json_object_get(c->body, "password");
	store_user u;
	char token[COFFERD_TOKEN_LEN + 1];
	uint8_t hash[CF_SHA256_LEN];
	bool blocked = false;
	cf_err rc;
	memset(&u, 0, sizeof(u));
	if (!name || !json_is_string(pw)) {
		api_fail(c, 400, "username and password are strings");
		goto out;
	}
	if (!valid_name(name) || json_string_length(pw) > 1024) {
		api_fail(c, 401, "wrong username or password");
		goto out;
	}
	rc = store_user_get(c->d->db, name, &u);
	if (rc == CF_ERR_NOT_FOUND) {
		/* The same work as for a real user: no telling who exists by the time it takes. */
		cf_err same_work = password_verify(c->d->dummy_hash, json_string_value(pw),
						   json_string_length(pw));
		(void)same_work;
		api_fail(c, 401, "wrong username or password");
		goto out;
	}
	if (rc != CF_OK) {
		api_store_fail(c, rc, "user", "");
		goto out;
	}
	if ((rc = store_login_blocked(c->d->db, name, c->now, COFFERD_LOGIN_WINDOW,
				      COFFERD_LOGIN_MAX_FAILURES, &blocked)) != CF_OK) {
		api_store_fail(c, rc, "user", "");
		goto out;
	}
	if (blocked) {
		/* Not audited: anyone who knows a name could grow the log at will. */
		api_fail(c, 401, "too many failed logins: wait a minute");
		goto out;
	}
	snprintf(c->actor, sizeof(c->actor), "user:%s", u.name);
	api_object(c, "user/%s", u.name);
	rc = password_verify(u.pwhash, json_string_value(pw), json_string_length(pw));
	if (rc != CF_OK) {
		if (store_login_failed(c->d->db, name, c->now, COFFERD_LOGIN_WINDOW) != CF_OK)
			log_warn("cannot count a failed login");
		snprintf(c->reason, sizeof(c->reason), "wrong password");
		api_fail(c, 401, "wrong username or password");
		goto out;
	}
	store_token t = { .created = c->now, .expires = c->now + COFFERD_SESSION_TTL };
	snprintf(t.kind, sizeof(t.kind), "session");
	snprintf(t.user_id, sizeof(t.user_id), "%s", u.id);
	if ((rc = store_login_reset(c->d->db, name)) != CF_OK ||
	    (rc = store_token_purge(c->d->db, c->now)) != CF_OK || (rc = make_id("tok", t.id)) != CF_OK ||
	    (rc = token_make(token, hash)) != CF_OK || (rc = store_token_add(c->d->db, hash, &t)) != CF_OK) {
		api_fail(c, 500, "cannot make a session (%s)", cf_strerror(rc));
		goto out;
	}
	api_ok(c, json_pack("{s:s,s:I,s:s,s:s?,s:s}", "token", token, "expires", (json_int_t)t.expires,
			    "user", u.name, "org", u.org[0] ? u.org : NULL, "role", u.role));
out:
	wipe_member(c, "password");
	cf_wipe(token, sizeof(token));
	cf_wipe(&u, sizeof(u));
}

void h_logout(ctx *c)
{
	api_object(c, "token/%s", c->who.token.id);
	cf_err rc = store_token_delete(c->d->db, c->who.token.id, NULL);
	if (rc != CF_OK)
		api_store_fail(c, rc, "token", "");
	else
		api_ok(c, json_object());
}

void h_me(ctx *c)
{
	const store_user *u = &c->who.user;
	api_ok(c, json_pack("{s:s,s:s,s:s?,s:s,s:s}", "id", u->id, "user", u->name, "org",
			    u->org[0] ? u->org : NULL, "role", u->role, "token", c->who.token.kind));
}

/* --- API tokens --- */

void h_token_create(ctx *c)
{
	const char *name = body_string(c, "name");
	uint64_t ttl = 0;
	char token[COFFERD_TOKEN_LEN + 1] = "";
	uint8_t hash[CF_SHA256_LEN];
	cf_err rc;
	if (!valid_name(name)) {
		api_fail(c, 400, "name: 1 to 64 of [a-z0-9-]");
		goto out;
	}
	if (!body_uint(c, "expires_in", &ttl) || ttl < 1 || ttl > COFFERD_API_TOKEN_MAX_TTL) {
		api_fail(c, 400, "expires_in: seconds, 1 to %d (366 days)", COFFERD_API_TOKEN_MAX_TTL);
		goto out;
	}
	store_token t = { .created = c->now, .expires = c->now + (int64_t)ttl };
	snprintf(t.kind, sizeof(t.kind), "api");
	snprintf(t.name, sizeof(t.name), "%s", name);
	snprintf(t.user_id, sizeof(t.user_id), "%s", c->who.user.id);
	if ((rc = make_id("tok", t.id)) != CF_OK || (rc = token_make(token, hash)) != CF_OK ||
	    (rc = store_token_add(c->d->db, hash, &t)) != CF_OK) {
		api_fail(c, 500, "cannot make a token (%s)", cf_strerror(rc));
		goto out;
	}
	api_object(c, "token/%s", t.id);
	api_ok(c, json_pack("{s:s,s:s,s:s,s:I}", "id", t.id, "name", t.name, "token", token, "expires",
			    (json_int_t)t.expires));
out:
	cf_wipe(token, sizeof(token));
}

static void token_item(void *arg, const store_token *t)
{
	json_array_append_new(arg, json_pack("{s:s,s:s,s:s,s:I,s:I}", "id", t->id, "kind", t->kind,
					     "name", t->name, "created", (json_int_t)t->created,
					     "expires", (json_int_t)t->expires));
}

void h_token_list(ctx *c)
{
	json_t *items = json_array();
	cf_err rc = items ? store_token_list(c->d->db, c->who.user.id, c->now, token_item, items)
			  : CF_ERR_NOMEM;
	if (rc != CF_OK) {
		json_decref(items);
		api_store_fail(c, rc, "token", "");
		return;
	}
	api_ok(c, json_pack("{s:o}", "items", items));
}

void h_token_delete(ctx *c)
{
	const char *id = c->param[0];
	if (!valid_id(id, "tok")) {
		api_fail(c, 404, "no such token");
		return;
	}
	api_object(c, "token/%s", id);
	/* Only one's own: someone else's token is as good as unknown. */
	cf_err rc = store_token_delete(c->d->db, id, c->who.user.id);
	if (rc != CF_OK)
		api_store_fail(c, rc, "token", "");
	else
		api_ok(c, json_object());
}

/* --- organisations --- */

/* sign_pub: padded base64 of 32 bytes; age_recipient: an age1 recipient. NULL and "" pass. */
static bool org_keys_valid(ctx *c, const char *sign_pub, const char *age_recipient)
{
	uint8_t pub[32 + 3];
	size_t got = 0;
	if (sign_pub && *sign_pub &&
	    (strlen(sign_pub) != 44 || cf_b64_decode(sign_pub, 44, true, pub, sizeof(pub), &got) != CF_OK ||
	     got != 32)) {
		api_fail(c, 400, "sign_pub: the padded base64 of an Ed25519 public key");
		return false;
	}
	if (age_recipient && *age_recipient &&
	    (strlen(age_recipient) > CF_AGE_RECIPIENT_STRLEN ||
	     cf_age_recipient_parse(age_recipient, pub) != CF_OK)) {
		api_fail(c, 400, "age_recipient: an age1... X25519 recipient");
		return false;
	}
	return true;
}

static json_t *org_json(const store_org *o)
{
	return json_pack("{s:s,s:s,s:s?,s:s?,s:I}", "id", o->id, "name", o->name, "sign_pub",
			 o->sign_pub[0] ? o->sign_pub : NULL, "age_recipient",
			 o->age_recipient[0] ? o->age_recipient : NULL, "created", (json_int_t)o->created);
}

void h_org_create(ctx *c)
{
	const char *name = body_string(c, "name");
	const char *sign_pub = body_string(c, "sign_pub");
	const char *rcpt = body_string(c, "age_recipient");
	store_org o = { .created = c->now };
	if (valid_name(name))
		api_object(c, "org/%s", name);
	if (!is_admin(c)) {
		api_fail(c, 403, "only an admin creates organisations");
		return;
	}
	if (!valid_name(name)) {
		api_fail(c, 400, "name: 1 to 64 of [a-z0-9-]");
		return;
	}
	json_t *sp = json_object_get(c->body, "sign_pub"), *ar = json_object_get(c->body, "age_recipient");
	if ((sp && !json_is_string(sp) && !json_is_null(sp)) ||
	    (ar && !json_is_string(ar) && !json_is_null(ar))) {
		api_fail(c, 400, "sign_pub and age_recipient are strings");
		return;
	}
	if (!org_keys_valid(c, sign_pub, rcpt))
		return;
	snprintf(o.name, sizeof(o.name), "%s", name);
	snprintf(o.sign_pub, sizeof(o.sign_pub), "%s", sign_pub ? sign_pub : "");
	snprintf(o.age_recipient, sizeof(o.age_recipient), "%s", rcpt ? rcpt : "");
	cf_err rc = make_id("org", o.id);
	if (rc == CF_OK)
		rc = store_org_create(c->d->db, &o);
	if (rc != CF_OK) {
		api_store_fail(c, rc, "organisation", "an organisation of that name exists");
		return;
	}
	api_ok(c, json_pack("{s:s,s:s}", "id", o.id, "name", o.name));
}

static void org_item(void *arg, const store_org *o)
{
	json_array_append_new(arg, org_json(o));
}

void h_org_list(ctx *c)
{
	json_t *items = json_array();
	cf_err rc = items ? store_org_list(c->d->db, org_item, items) : CF_ERR_NOMEM;
	if (rc != CF_OK) {
		json_decref(items);
		api_store_fail(c, rc, "organisation", "");
		return;
	}
	api_ok(c, json_pack("{s:o}", "items", items));
}

void h_org_get(ctx *c)
{
	store_org o;
	cf_err rc = valid_name(c->param[0]) ? store_org_get(c->d->db, c->param[0], &o) : CF_ERR_NOT_FOUND;
	if (rc != CF_OK)
		api_store_fail(c, rc, "organisation", "");
	else
		api_ok(c, org_json(&o));
}

void h_org_keys(ctx *c)
{
	const char *name = c->param[0];
	const char *sign_pub = body_string(c, "sign_pub");
	const char *rcpt = body_string(c, "age_recipient");
	store_org o;
	if (!valid_name(name)) {
		api_fail(c, 404, "no such organisation");
		return;
	}
	api_object(c, "org/%s", name);
	if (!member_of(c, name, R(ROLE_ORG_ADMIN))) {
		api_fail(c, 403, "only an org-admin of %s sets its keys", name);
		return;
	}
	if (!sign_pub || !rcpt || !*sign_pub || !*rcpt) {
		api_fail(c, 400, "sign_pub and age_recipient are needed");
		return;
	}
	if (!org_keys_valid(c, sign_pub, rcpt))
		return;
	cf_err rc = store_org_set_keys(c->d->db, name, sign_pub, rcpt);
	if (rc == CF_OK)
		rc = store_org_get(c->d->db, name, &o);
	if (rc != CF_OK)
		api_store_fail(c, rc, "organisation", "");
	else
		api_ok(c, org_json(&o));
}

/* --- users --- */

void h_user_create(ctx *c)
{
	const char *name = body_string(c, "username");
	const char *org = body_string(c, "org");
	const char *rname = body_string(c, "role");
	json_t *pw = json_object_get(c->body, "password");
	role r = role_parse(rname);
	store_user u = { .created = c->now };
	cf_err rc;
	if (valid_name(name))
		api_object(c, "user/%s", name);
	if (c->who.role == ROLE_ORG_ADMIN && !org)
		org = c->who.user.org;
	/* org-admins make analysts and org-admins of their own organisation only. */
	if (!is_admin(c) && !(c->who.role == ROLE_ORG_ADMIN && org && strcmp(org, c->who.user.org) == 0 &&
			      (r == ROLE_ANALYST || r == ROLE_ORG_ADMIN))) {
		api_fail(c, 403, "an admin, or an org-admin for analysts and org-admins of their own "
				 "organisation, creates users");
		goto out;
	}
	if (!valid_name(name)) {
		api_fail(c, 400, "username: 1 to 64 of [a-z0-9-]");
		goto out;
	}
	if (!json_is_string(pw) || !password_acceptable(json_string_length(pw))) {
		api_fail(c, 400, "password: 12 to 1024 bytes");
		goto out;
	}
	if (r == ROLE_NONE) {
		api_fail(c, 400, "role: admin, operator, org-admin, analyst or auditor");
		goto out;
	}
	if ((r == ROLE_ANALYST || r == ROLE_ORG_ADMIN) && !org) {
		api_fail(c, 400, "an %s belongs to an organisation (org)", role_name(r));
		goto out;
	}
	if (org && !valid_name(org)) {
		api_fail(c, 404, "no such organisation");
		goto out;
	}
	snprintf(u.name, sizeof(u.name), "%s", name);
	snprintf(u.org, sizeof(u.org), "%s", org ? org : "");
	snprintf(u.role, sizeof(u.role), "%s", role_name(r));
	if ((rc = make_id("usr", u.id)) != CF_OK ||
	    (rc = password_hash(c->d, json_string_value(pw), json_string_length(pw), u.pwhash)) != CF_OK) {
		api_fail(c, 500, "cannot hash the password (%s)", cf_strerror(rc));
		goto out;
	}
	if ((rc = store_user_create(c->d->db, &u)) != CF_OK) {
		api_store_fail(c, rc, "organisation", "a user of that name exists");
		goto out;
	}
	api_ok(c, json_pack("{s:s}", "id", u.id));
out:
	wipe_member(c, "password");
	cf_wipe(&u, sizeof(u));
}

static void user_item(void *arg, const store_user *u)
{
	json_array_append_new(arg, user_json(u));
}

void h_user_list(ctx *c)
{
	const char *org = NULL;
	if (c->who.role == ROLE_ORG_ADMIN) {
		org = c->who.user.org;
	} else if (c->who.role != ROLE_ADMIN && c->who.role != ROLE_AUDITOR) {
		api_fail(c, 403, "admins, auditors and org-admins list users");
		return;
	}
	json_t *items = json_array();
	cf_err rc = items ? store_user_list(c->d->db, org, user_item, items) : CF_ERR_NOMEM;
	if (rc != CF_OK) {
		json_decref(items);
		api_store_fail(c, rc, "user", "");
		return;
	}
	api_ok(c, json_pack("{s:o}", "items", items));
}

void h_user_delete(ctx *c)
{
	const char *name = c->param[0];
	store_user u;
	if (!valid_name(name)) {
		api_fail(c, 404, "no such user");
		return;
	}
	api_object(c, "user/%s", name);
	cf_err rc = store_user_get(c->d->db, name, &u);
	cf_wipe(u.pwhash, sizeof(u.pwhash));
	role target = rc == CF_OK ? role_parse(u.role) : ROLE_NONE;
	bool allowed = is_admin(c) || (c->who.role == ROLE_ORG_ADMIN && rc == CF_OK &&
				       strcmp(u.org, c->who.user.org) == 0 &&
				       (target == ROLE_ANALYST || target == ROLE_ORG_ADMIN));
	if (!allowed) {
		api_fail(c, 403, "an admin, or an org-admin for users of their own organisation, "
				 "deletes users");
		return;
	}
	if (rc != CF_OK) {
		api_store_fail(c, rc, "user", "");
		return;
	}
	if (strcmp(u.id, c->who.user.id) == 0) {
		api_fail(c, 409, "one does not delete oneself");
		return;
	}
	if ((rc = store_user_delete(c->d->db, name)) != CF_OK)
		api_store_fail(c, rc, "user", "");
	else
		api_ok(c, json_object());
}
