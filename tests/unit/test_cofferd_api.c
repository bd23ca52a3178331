/*
 * cofferd's API in process, through cofferd_handle() as the HTTPS front
 * end calls it: logins, sessions and API tokens (hashed, expiring, rate
 * limited), what each role may and may not do (and that refusals are
 * audited), hostile requests, chunked dataset uploads with their order,
 * size and SHA-256 checks, tasks with checked approvals, and runs through
 * a stand-in launcher (a shell script): fixed arguments, parameters on
 * stdin, the run token's endpoints, outputs, finish, cancel, a crash.
 * Every test ends by verifying the audit log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "coffer/age.h"
#include "coffer/audit.h"
#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "cofferd.h"
#include "internal.h"

#define ADMIN_PW "correct horse battery"

static time_t fake_now = 1800000000;
static time_t clock_fn(void)
{
	return fake_now;
}

typedef struct fx {
	char dir[64], state[96], launch[128], enclave[128], pwfile[128];
	cofferd *d;
	char admin[64];
} fx;

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void open_d(fx *f)
{
	cofferd_config cfg = {
		.state_dir = f->state,
		.admin_password_file = f->pwfile,
		.launch_path = f->launch,
		.enclave_path = f->enclave,
		.max_dataset = 1u << 20,
		.argon2_t = 1,
		.argon2_m_kib = 64,
	};
	assert_int_equal(cofferd_open(&cfg, &f->d), CF_OK);
	cofferd_set_clock(f->d, clock_fn);
	cofferd_set_url(f->d, "https://127.0.0.1:9");
}

/* One request. Returns the JSON answer, or NULL for a stream whose bytes go to *stream. */
static json_t *call_raw(fx *f, cofferd_method m, const char *path, const char *token,
			const void *body, size_t len, int want, cf_buf *stream)
{
	char auth[128], p[2048];
	const char *q = strchr(path, '?');
	snprintf(p, sizeof(p), "%.*s", q ? (int)(q - path) : (int)strlen(path), path);
	snprintf(auth, sizeof(auth), "Bearer %s", token ? token : "");
	cofferd_request req = { .method = m, .path = p, .query = q ? q + 1 : NULL,
				.authorization = token ? auth : NULL, .body = body, .body_len = len };
	cofferd_response resp;
	cofferd_handle(f->d, &req, &resp);
	if (resp.status != want) {
		char *s = resp.json ? json_dumps(resp.json, 0) : NULL;
		print_error("%s: status %d, want %d: %s\n", path, resp.status, want, s ? s : "(stream)");
		free(s);
		fail();
	}
	json_t *out = resp.json;
	resp.json = NULL;
	if (resp.fd >= 0) {
		assert_non_null(stream);
		uint8_t buf[65536];
		uint64_t left = resp.length;
		while (left > 0) {
			ssize_t n = pread(resp.fd, buf, left < sizeof(buf) ? left : sizeof(buf),
					  (off_t)(resp.offset + resp.length - left));
			assert_true(n > 0);
			assert_int_equal(cf_buf_append(stream, buf, (size_t)n), CF_OK);
			left -= (uint64_t)n;
		}
	} else {
		assert_non_null(out);
		if (want >= 400)
			assert_non_null(json_object_get(json_object_get(out, "error"), "code"));
	}
	cofferd_response_clear(&resp);
	return out;
}

static json_t *call(fx *f, cofferd_method m, const char *path, const char *token, int want,
		    const char *fmt, ...) CF_PRINTF(6, 7);
static json_t *call(fx *f, cofferd_method m, const char *path, const char *token, int want,
		    const char *fmt, ...)
{
	char body[16384];
	size_t len = 0;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(body, sizeof(body), fmt, ap);
		va_end(ap);
		len = strlen(body);
	}
	return call_raw(f, m, path, token, fmt ? body : NULL, len, want, NULL);
}

/* The same, dropping the answer. */
#define CALL(...) json_decref(call(__VA_ARGS__))

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	assert_non_null(s);
	return s;
}

static void login(fx *f, const char *user, const char *pw, char out[64])
{
	json_t *r = call(f, COFFERD_POST, "/v1/login", NULL, 200,
			 "{\"username\":\"%s\",\"password\":\"%s\"}", user, pw);
	snprintf(out, 64, "%s", str(r, "token"));
	json_decref(r);
}

static void add_user(fx *f, const char *admin_token, const char *name, const char *org,
		     const char *kind, char token[64])
{
	char pw[64];
	snprintf(pw, sizeof(pw), "password-of-%s", name);
	if (org)
		CALL(f, COFFERD_POST, "/v1/users", admin_token, 200,
		     "{\"username\":\"%s\",\"password\":\"%s\",\"org\":\"%s\",\"role\":\"%s\"}", name, pw,
		     org, kind);
	else
		CALL(f, COFFERD_POST, "/v1/users", admin_token, 200,
		     "{\"username\":\"%s\",\"password\":\"%s\",\"role\":\"%s\"}", name, pw, kind);
	if (token)
		login(f, name, pw, token);
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/coffer-test-cofferd-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	snprintf(f->pwfile, sizeof(f->pwfile), "%s/admin.pw", f->dir);
	snprintf(f->launch, sizeof(f->launch), "%s/launch.sh", f->dir);
	snprintf(f->enclave, sizeof(f->enclave), "%s/coffer-enclave", f->dir);
	write_file(f->pwfile, ADMIN_PW "\n", 0600);
	/* The stand-in launcher: records its arguments and parameters, then waits. */
	char script[1024];
	snprintf(script, sizeof(script),
		 "#!/bin/sh\n"
		 "d=%s\n"
		 "cat > \"$d/params.json\"\n"
		 "printf '%%s\\n' \"$@\" > \"$d/args.tmp\"\n"
		 "mv \"$d/args.tmp\" \"$d/args\"\n"
		 "echo \"enclave says hi\"\n"
		 "if [ -e \"$d/exit-now\" ]; then exit 3; fi\n"
		 "exec sleep 30\n",
		 f->dir);
	write_file(f->launch, script, 0700);
	open_d(f);
	login(f, "admin", ADMIN_PW, f->admin);
	*state = f;
	return 0;
}

static void verify_audit(fx *f)
{
	char path[160];
	cf_audit_report rep;
	snprintf(path, sizeof(path), "%s/audit.log", f->state);
	assert_int_equal(cf_audit_verify_file(path, f->d->audit_pub, &rep), CF_OK);
	assert_true(rep.entries > 0);
}

static int teardown(void **state)
{
	fx *f = *state;
	char cmd[128];
	verify_audit(f);
	cofferd_close(f->d);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Whether the file holds needle anywhere. */
static bool file_has(const char *path, const char *needle)
{
	cf_buf b;
	cf_buf_init(&b, 64u << 20, false);
	FILE *fp = fopen(path, "rb");
	bool found = false;
	if (fp) {
		uint8_t chunk[65536];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			assert_int_equal(cf_buf_append(&b, chunk, n), CF_OK);
		fclose(fp);
		found = b.len && memmem(b.data, b.len, needle, strlen(needle)) != NULL;
	}
	cf_buf_free(&b);
	return found;
}

static bool audit_has(fx *f, const char *a, const char *b)
{
	char path[160], line[CF_AUDIT_MAX_LINE + 2];
	snprintf(path, sizeof(path), "%s/audit.log", f->state);
	FILE *fp = fopen(path, "r");
	bool found = false;
	while (fp && !found && fgets(line, sizeof(line), fp))
		found = strstr(line, a) && (!b || strstr(line, b));
	if (fp)
		fclose(fp);
	return found;
}

static size_t audit_lines(fx *f)
{
	char path[160], line[CF_AUDIT_MAX_LINE + 2];
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/audit.log", f->state);
	FILE *fp = fopen(path, "r");
	while (fp && fgets(line, sizeof(line), fp))
		n++;
	if (fp)
		fclose(fp);
	return n;
}

/* --- sessions and tokens --- */

static void test_sessions(void **state)
{
	fx *f = *state;
	char tok[64], api[64], path[160];
	json_t *r = call(f, COFFERD_GET, "/v1/me", f->admin, 200, NULL);
	assert_string_equal(str(r, "user"), "admin");
	assert_string_equal(str(r, "role"), "admin");
	json_decref(r);
	assert_int_equal(strlen(f->admin), 47);
	assert_memory_equal(f->admin, "cft_", 4);

	/* Refusals: wrong password, unknown user, wrong types, missing token, garbage token. */
	CALL(f, COFFERD_POST, "/v1/login", NULL, 401, "{\"username\":\"admin\",\"password\":\"nope nope nope\"}");
	CALL(f, COFFERD_POST, "/v1/login", NULL, 401, "{\"username\":\"ghost\",\"password\":\"nope nope nope\"}");
	CALL(f, COFFERD_POST, "/v1/login", NULL, 400, "{\"username\":\"admin\",\"password\":12}");
	CALL(f, COFFERD_POST, "/v1/login", NULL, 400, "{\"username\":[\"admin\"],\"password\":\"x\"}");
	CALL(f, COFFERD_GET, "/v1/me", NULL, 401, NULL);
	CALL(f, COFFERD_GET, "/v1/me", "cft_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 401, NULL);
	CALL(f, COFFERD_GET, "/v1/me", "not a token", 401, NULL);
	/* An unknown user's failed login is not audited; a known one's is. */
	assert_false(audit_has(f, "user:ghost", NULL));
	assert_true(audit_has(f, "\"actor\":\"user:admin\"", "denied: wrong password"));

	/* Five failures in a minute: the sixth attempt is refused unchecked, even with the password. */
	add_user(f, f->admin, "carol", NULL, "auditor", NULL);
	for (int i = 0; i < 5; i++)
		CALL(f, COFFERD_POST, "/v1/login", NULL, 401,
		     "{\"username\":\"carol\",\"password\":\"wrong password %d\"}", i);
	r = call(f, COFFERD_POST, "/v1/login", NULL, 401,
		 "{\"username\":\"carol\",\"password\":\"password-of-carol\"}");
	assert_non_null(strstr(str(json_object_get(r, "error"), "message"), "too many"));
	json_decref(r);
	fake_now += 61;
	login(f, "carol", "password-of-carol", tok);

	/* Tokens are stored as hashes only. */
	snprintf(path, sizeof(path), "%s/cofferd.db", f->state);
	assert_false(file_has(path, tok));
	assert_false(file_has(path, f->admin));
	snprintf(path, sizeof(path), "%s/cofferd.db-wal", f->state);
	assert_false(file_has(path, tok));
	snprintf(path, sizeof(path), "%s/audit.log", f->state);
	assert_false(file_has(path, tok));
	assert_false(file_has(path, "password-of-carol"));

	/* API tokens: bounds, use, list, delete. */
	CALL(f, COFFERD_POST, "/v1/tokens", tok, 400, "{\"name\":\"ci\",\"expires_in\":0}");
	CALL(f, COFFERD_POST, "/v1/tokens", tok, 400, "{\"name\":\"ci\",\"expires_in\":31622401}");
	CALL(f, COFFERD_POST, "/v1/tokens", tok, 400, "{\"name\":\"CI!\",\"expires_in\":60}");
	r = call(f, COFFERD_POST, "/v1/tokens", tok, 200, "{\"name\":\"ci\",\"expires_in\":3600}");
	snprintf(api, sizeof(api), "%s", str(r, "token"));
	char api_id[32], del[64];
	snprintf(api_id, sizeof(api_id), "%s", str(r, "id"));
	json_decref(r);
	r = call(f, COFFERD_GET, "/v1/me", api, 200, NULL);
	assert_string_equal(str(r, "user"), "carol");
	json_decref(r);
	r = call(f, COFFERD_GET, "/v1/tokens", tok, 200, NULL);
	assert_int_equal(json_array_size(json_object_get(r, "items")), 2);
	char *listed = json_dumps(r, 0);
	assert_null(strstr(listed, "cft_"));
	free(listed);
	json_decref(r);
	/* The token's own actor in the audit log. */
	CALL(f, COFFERD_POST, "/v1/logout", NULL, 401, NULL);
	snprintf(del, sizeof(del), "/v1/tokens/%s", api_id);
	CALL(f, COFFERD_DELETE, del, f->admin, 404, NULL); /* someone else's */
	CALL(f, COFFERD_DELETE, del, api, 200, NULL);
	assert_true(audit_has(f, "\"actor\":\"token:", "token.delete"));
	CALL(f, COFFERD_GET, "/v1/me", api, 401, NULL);

	/* An API token expires when its creator said. */
	r = call(f, COFFERD_POST, "/v1/tokens", tok, 200, "{\"name\":\"short\",\"expires_in\":10}");
	snprintf(api, sizeof(api), "%s", str(r, "token"));
	json_decref(r);
	fake_now += 10;
	CALL(f, COFFERD_GET, "/v1/me", api, 401, NULL);

	/* Sessions expire after 12 h; logout deletes one at once. */
	CALL(f, COFFERD_GET, "/v1/me", tok, 200, NULL);
	fake_now += 12 * 3600;
	CALL(f, COFFERD_GET, "/v1/me", tok, 401, NULL);
	login(f, "carol", "password-of-carol", tok);
	CALL(f, COFFERD_POST, "/v1/logout", tok, 200, NULL);
	CALL(f, COFFERD_GET, "/v1/me", tok, 401, NULL);
	login(f, "admin", ADMIN_PW, f->admin);
}

static void test_passwords(void **state)
{
	fx *f = *state;
	char hash[STORE_PWHASH_LEN];
	cofferd real;
	memset(&real, 0, sizeof(real));
	real.argon2_t = 3;
	real.argon2_m_kib = 64 * 1024;
	/* docs/api.md's parameters, in the encoded string. */
	assert_int_equal(password_hash(&real, "twelve bytes", 12, hash), CF_OK);
	assert_memory_equal(hash, "$argon2id$v=19$m=65536,t=3,p=1$", 31);
	assert_int_equal(password_verify(hash, "twelve bytes", 12), CF_OK);
	assert_int_equal(password_verify(hash, "twelve bytez", 12), CF_ERR_AUTH);
	assert_int_equal(password_hash(&real, "eleven byte", 11, hash), CF_ERR_ARG);
	/* Through the API: 12 to 1024 bytes. */
	char big[1100];
	memset(big, 'x', 1025);
	big[1025] = 0;
	CALL(f, COFFERD_POST, "/v1/users", f->admin, 400,
	     "{\"username\":\"dave\",\"password\":\"eleven byte\",\"role\":\"auditor\"}");
	CALL(f, COFFERD_POST, "/v1/users", f->admin, 400,
	     "{\"username\":\"dave\",\"password\":\"%s\",\"role\":\"auditor\"}", big);
	big[1024] = 0;
	CALL(f, COFFERD_POST, "/v1/users", f->admin, 200,
	     "{\"username\":\"dave\",\"password\":\"%s\",\"role\":\"auditor\"}", big);
	char tok[64];
	login(f, "dave", big, tok);
	CALL(f, COFFERD_POST, "/v1/users", f->admin, 409,
	     "{\"username\":\"dave\",\"password\":\"another password\",\"role\":\"auditor\"}");
}

/* --- roles --- */

typedef struct people {
	char oa[64], an[64], bn[64], op[64], au[64];
} people;

static void make_people(fx *f, people *p)
{
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 200, "{\"name\":\"org-a\"}");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 200, "{\"name\":\"org-b\"}");
	add_user(f, f->admin, "oa", "org-a", "org-admin", p->oa);
	add_user(f, p->oa, "an", "org-a", "analyst", p->an);
	add_user(f, f->admin, "bn", "org-b", "analyst", p->bn);
	add_user(f, f->admin, "op", NULL, "operator", p->op);
	add_user(f, f->admin, "au", NULL, "auditor", p->au);
}

static void test_roles(void **state)
{
	fx *f = *state;
	people p;
	make_people(f, &p);
	json_t *r;
	/* Organisations: admin creates; anyone reads; the org's admin sets its keys. */
	CALL(f, COFFERD_POST, "/v1/orgs", p.oa, 403, "{\"name\":\"org-c\"}");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 409, "{\"name\":\"org-a\"}");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":\"Org_C\"}");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":\"org-c\",\"sign_pub\":\"AAAA\"}");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":\"org-c\",\"age_recipient\":\"age1nope\"}");
	r = call(f, COFFERD_GET, "/v1/orgs", p.au, 200, NULL);
	assert_int_equal(json_array_size(json_object_get(r, "items")), 2);
	json_decref(r);
	CALL(f, COFFERD_GET, "/v1/orgs/org-b", p.an, 200, NULL);
	CALL(f, COFFERD_GET, "/v1/orgs/org-z", p.an, 404, NULL);
	uint8_t seed[32], pub[32];
	char pub64[64], rcpt[CF_AGE_RECIPIENT_STRLEN + 1];
	cf_age_x25519_key age;
	assert_int_equal(cf_ed25519_keygen(seed, pub), CF_OK);
	assert_int_equal(cf_age_keygen(&age), CF_OK);
	assert_int_equal(cf_age_recipient_format(age.pub, rcpt), CF_OK);
	cf_b64_encode(pub, 32, true, pub64);
	CALL(f, COFFERD_PUT, "/v1/orgs/org-a/keys", p.an, 403,
	     "{\"sign_pub\":\"%s\",\"age_recipient\":\"%s\"}", pub64, rcpt);
	CALL(f, COFFERD_PUT, "/v1/orgs/org-a/keys", p.bn, 403,
	     "{\"sign_pub\":\"%s\",\"age_recipient\":\"%s\"}", pub64, rcpt);
	r = call(f, COFFERD_PUT, "/v1/orgs/org-a/keys", p.oa, 200,
		 "{\"sign_pub\":\"%s\",\"age_recipient\":\"%s\"}", pub64, rcpt);
	assert_string_equal(str(r, "sign_pub"), pub64);
	json_decref(r);

	/* Users: org-admins for their own organisation, analysts and org-admins only. */
	CALL(f, COFFERD_POST, "/v1/users", p.an, 403,
	     "{\"username\":\"x1\",\"password\":\"long enough pw\",\"org\":\"org-a\",\"role\":\"analyst\"}");
	CALL(f, COFFERD_POST, "/v1/users", p.oa, 403,
	     "{\"username\":\"x1\",\"password\":\"long enough pw\",\"org\":\"org-b\",\"role\":\"analyst\"}");
	CALL(f, COFFERD_POST, "/v1/users", p.oa, 403,
	     "{\"username\":\"x1\",\"password\":\"long enough pw\",\"role\":\"auditor\"}");
	CALL(f, COFFERD_POST, "/v1/users", p.oa, 403,
	     "{\"username\":\"x1\",\"password\":\"long enough pw\",\"org\":\"org-a\",\"role\":\"admin\"}");
	CALL(f, COFFERD_POST, "/v1/users", p.op, 403,
	     "{\"username\":\"x1\",\"password\":\"long enough pw\",\"role\":\"operator\"}");
	CALL(f, COFFERD_POST, "/v1/users", f->admin, 400,
	     "{\"username\":\"x1\",\"password\":\"long enough pw\",\"role\":\"analyst\"}");
	CALL(f, COFFERD_POST, "/v1/users", f->admin, 400,
	     "{\"username\":\"x1\",\"password\":\"long enough pw\",\"role\":\"root\"}");
	CALL(f, COFFERD_POST, "/v1/users", f->admin, 404,
	     "{\"username\":\"x1\",\"password\":\"long enough pw\",\"org\":\"org-q\",\"role\":\"analyst\"}");
	r = call(f, COFFERD_GET, "/v1/users", p.oa, 200, NULL);
	assert_int_equal(json_array_size(json_object_get(r, "items")), 2); /* oa, an */
	json_decref(r);
	r = call(f, COFFERD_GET, "/v1/users", p.au, 200, NULL);
	assert_int_equal(json_array_size(json_object_get(r, "items")), 6);
	assert_null(json_object_get(json_array_get(json_object_get(r, "items"), 0), "pwhash"));
	json_decref(r);
	CALL(f, COFFERD_GET, "/v1/users", p.an, 403, NULL);
	CALL(f, COFFERD_GET, "/v1/users", p.op, 403, NULL);
	CALL(f, COFFERD_DELETE, "/v1/users/bn", p.oa, 403, NULL);
	CALL(f, COFFERD_DELETE, "/v1/users/op", p.oa, 403, NULL);
	CALL(f, COFFERD_DELETE, "/v1/users/an", p.an, 403, NULL);
	CALL(f, COFFERD_DELETE, "/v1/users/admin", f->admin, 409, NULL);
	CALL(f, COFFERD_DELETE, "/v1/users/nobody", f->admin, 404, NULL);

	/* Instances: operators and admins. */
	CALL(f, COFFERD_POST, "/v1/instances", p.an, 403,
	     "{\"name\":\"i1\",\"tee\":\"soft\",\"cores\":1,\"memory\":1073741824,\"enclave_size\":536870912}");
	CALL(f, COFFERD_POST, "/v1/instances", p.au, 403,
	     "{\"name\":\"i1\",\"tee\":\"soft\",\"cores\":1,\"memory\":1073741824,\"enclave_size\":536870912}");
	CALL(f, COFFERD_POST, "/v1/instances", p.op, 400,
	     "{\"name\":\"i1\",\"tee\":\"sgx\",\"cores\":1,\"memory\":1073741824,\"enclave_size\":536870912}");
	CALL(f, COFFERD_POST, "/v1/instances", p.op, 400,
	     "{\"name\":\"i1\",\"tee\":\"soft\",\"cores\":1,\"memory\":1000,\"enclave_size\":536870912}");
	CALL(f, COFFERD_POST, "/v1/instances", p.op, 409,
	     "{\"name\":\"i1\",\"tee\":\"soft\",\"cores\":100000,\"memory\":1073741824,\"enclave_size\":536870912}");
	r = call(f, COFFERD_POST, "/v1/instances", p.op, 200,
		 "{\"name\":\"i1\",\"tee\":\"soft\",\"cores\":1,\"memory\":1073741824,\"enclave_size\":536870912}");
	char path[96];
	snprintf(path, sizeof(path), "/v1/instances/%s/start", str(r, "id"));
	json_decref(r);
	CALL(f, COFFERD_POST, path, p.an, 403, NULL);
	CALL(f, COFFERD_POST, path, p.op, 200, NULL);
	CALL(f, COFFERD_POST, path, p.op, 409, NULL);
	r = call(f, COFFERD_GET, "/v1/instances", p.an, 200, NULL);
	assert_string_equal(str(json_array_get(json_object_get(r, "items"), 0), "state"), "running");
	json_decref(r);
	r = call(f, COFFERD_GET, "/v1/hosts", p.an, 200, NULL);
	json_t *host = json_array_get(json_object_get(r, "items"), 0);
	assert_true(json_integer_value(json_object_get(host, "cores")) >= 1);
	assert_true(json_is_array(json_object_get(host, "tee_kinds")));
	json_decref(r);

	/* The audit log: admins and auditors; its key: anyone. */
	cf_buf log;
	cf_buf_init(&log, 1u << 24, false);
	CALL(f, COFFERD_GET, "/v1/audit", p.an, 403, NULL);
	CALL(f, COFFERD_GET, "/v1/audit", p.op, 403, NULL);
	assert_null(call_raw(f, COFFERD_GET, "/v1/audit", p.au, NULL, 0, 200, &log));
	cf_audit_report rep;
	assert_int_equal(cf_audit_verify(log.data, log.len, f->d->audit_pub, &rep), CF_OK);
	cf_buf_free(&log);
	r = call(f, COFFERD_GET, "/v1/audit/key", p.an, 200, NULL);
	cf_b64_encode(f->d->audit_pub, 32, true, pub64);
	assert_string_equal(str(r, "pub"), pub64);
	json_decref(r);

	/* Refusals of known callers are audited, with the reason. */
	assert_true(audit_has(f, "\"actor\":\"user:oa\"", "\"operation\":\"org.create\""));
	assert_true(audit_has(f, "\"actor\":\"user:an\"", "denied: forbidden"));
	assert_true(audit_has(f, "\"actor\":\"user:op\"", "\"operation\":\"instance.start\""));
}

/* --- hostile requests --- */

static void test_hostile(void **state)
{
	fx *f = *state;
	people p;
	make_people(f, &p);
	size_t before = audit_lines(f);
	/* Without a token nothing changes and nothing is written. */
	CALL(f, COFFERD_POST, "/v1/orgs", NULL, 401, "{\"name\":\"org-x\"}");
	CALL(f, COFFERD_DELETE, "/v1/users/an", NULL, 401, NULL);
	assert_int_equal(audit_lines(f), before);

	/* Bodies: not JSON, not an object, duplicate keys, too deep, too big, NUL, bad UTF-8. */
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "[\"org-x\"]");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "\"org-x\"");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":\"a\",\"name\":\"b\"}");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":\"org\\u0000x\"}");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":\"\xff\xfe\"}");
	char deep[200] = "";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":%s}", deep);
	size_t big = COFFERD_MAX_JSON + 10;
	char *huge = malloc(big);
	memset(huge, ' ', big);
	huge[0] = '{';
	huge[big - 1] = '}';
	json_decref(call_raw(f, COFFERD_POST, "/v1/orgs", f->admin, huge, big, 413, NULL));
	free(huge);
	/* Types and values. */
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":42}");
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":\"%0100d\"}", 1);
	CALL(f, COFFERD_POST, "/v1/orgs", f->admin, 400, "{\"name\":\"../../etc\"}");
	CALL(f, COFFERD_POST, "/v1/datasets", p.an, 400,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":\"10\",\"sha256\":\"%064d\"}", 0);
	CALL(f, COFFERD_POST, "/v1/datasets", p.an, 400,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":-1,\"sha256\":\"%064d\"}", 0);
	CALL(f, COFFERD_POST, "/v1/datasets", p.an, 413,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":9223372036854775807,\"sha256\":\"%064d\"}", 0);
	CALL(f, COFFERD_POST, "/v1/datasets", p.an, 400,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":1e300,\"sha256\":\"%064d\"}", 0);
	CALL(f, COFFERD_POST, "/v1/instances", p.op, 400,
	     "{\"name\":\"i\",\"tee\":\"soft\",\"cores\":1.5,\"memory\":1073741824,\"enclave_size\":536870912}");
	CALL(f, COFFERD_POST, "/v1/tokens", p.an, 400, "{\"name\":\"t\",\"expires_in\":99999999999999999999}");
	/* Paths: traversal, encoded slashes and NULs, odd ids, methods. */
	CALL(f, COFFERD_GET, "/v1/datasets/..%2F..%2Fetc%2Fpasswd", p.an, 404, NULL);
	CALL(f, COFFERD_GET, "/v1/datasets/../blob", p.an, 404, NULL);
	CALL(f, COFFERD_GET, "/v1/datasets/ds-0123456789ABCDEF", p.an, 404, NULL);
	CALL(f, COFFERD_GET, "/v1/datasets/ds-0123456789abcdef0", p.an, 404, NULL);
	CALL(f, COFFERD_GET, "/v1/orgs/org%00a", p.an, 404, NULL);
	CALL(f, COFFERD_GET, "/v1/orgs/%zz", p.an, 404, NULL);
	CALL(f, COFFERD_GET, "/v1/orgs/", p.an, 404, NULL);
	CALL(f, COFFERD_GET, "//v1/orgs", p.an, 404, NULL);
	CALL(f, COFFERD_GET, "v1/orgs", p.an, 404, NULL);
	CALL(f, COFFERD_GET, "/v1/a/b/c/d/e/f/g/h/i", p.an, 404, NULL);
	CALL(f, COFFERD_DELETE, "/v1/me", p.an, 405, NULL);
	CALL(f, COFFERD_OTHER, "/v1/me", p.an, 405, NULL);
	CALL(f, COFFERD_GET, "/v1/tasks/task-0000000000000000/outputs/..", p.an, 404, NULL);
	/* Query offsets. */
	json_t *r = call(f, COFFERD_POST, "/v1/datasets", p.an, 200,
			 "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":4,\"sha256\":\"%064d\"}", 0);
	char path[128];
	const char *bad[] = { "", "?offset=", "?offset=-1", "?offset=1e3", "?offset=+0", "?offset= 0",
			      "?offset=0&offset=0", "?offset=99999999999999999999", "?off=0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "/v1/datasets/%s/blob%s", str(r, "id"), bad[i]);
		json_decref(call_raw(f, COFFERD_PUT, path, p.an, "abcd", 4, 400, NULL));
	}
	snprintf(path, sizeof(path), "/v1/datasets/%s/blob?x=1&offset=0", str(r, "id"));
	json_decref(call_raw(f, COFFERD_PUT, path, p.an, "abcd", 4, 200, NULL));
	json_decref(r);
	/* A run's token is not a user's and the other way round. */
	CALL(f, COFFERD_GET, "/v1/runs/run-0000000000000000/spec", p.an, 403, NULL);
}

/* --- datasets --- */

static void sha_hex(const void *data, size_t len, char out[65])
{
	uint8_t h[32];
	assert_int_equal(cf_hash(CF_SHA256, data, len, h), CF_OK);
	cf_hex_encode(h, 32, out);
}

/* Creates a dataset of org and uploads data in parts of part bytes; returns its id. */
static void upload(fx *f, const char *token, const char *org, const char *name, const uint8_t *data,
		   size_t len, size_t part, char id[32])
{
	char sha[65], path[128];
	sha_hex(data, len, sha);
	json_t *r = call(f, COFFERD_POST, "/v1/datasets", token, 200,
			 "{\"name\":\"%s\",\"kms_dataset\":\"%s/%s\",\"size\":%zu,\"sha256\":\"%s\"}", name,
			 org, name, len, sha);
	snprintf(id, 32, "%s", str(r, "id"));
	json_decref(r);
	for (size_t off = 0; off < len; off += part) {
		size_t n = len - off < part ? len - off : part;
		snprintf(path, sizeof(path), "/v1/datasets/%s/blob?offset=%zu", id, off);
		r = call_raw(f, COFFERD_PUT, path, token, data + off, n, 200, NULL);
		assert_int_equal(json_integer_value(json_object_get(r, "received")), off + n);
		json_decref(r);
	}
	snprintf(path, sizeof(path), "/v1/datasets/%s/commit", id);
	r = call(f, COFFERD_POST, path, token, 200, NULL);
	assert_string_equal(str(r, "state"), "ready");
	json_decref(r);
}

static void test_datasets(void **state)
{
	fx *f = *state;
	people p;
	char sha[65], other[65], path[128], id[32];
	make_people(f, &p);
	size_t len = 300000;
	uint8_t *data = malloc(len);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 31 + 7);
	sha_hex(data, len, sha);
	sha_hex(data, len - 1, other);

	/* Who and what may be created. */
	CALL(f, COFFERD_POST, "/v1/datasets", p.op, 403,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":1,\"sha256\":\"%s\"}", sha);
	CALL(f, COFFERD_POST, "/v1/datasets", p.au, 403,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":1,\"sha256\":\"%s\"}", sha);
	CALL(f, COFFERD_POST, "/v1/datasets", p.an, 403,
	     "{\"name\":\"d\",\"org\":\"org-b\",\"kms_dataset\":\"org-b/d\",\"size\":1,\"sha256\":\"%s\"}", sha);
	CALL(f, COFFERD_POST, "/v1/datasets", p.an, 400,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-b/d\",\"size\":1,\"sha256\":\"%s\"}", sha);
	CALL(f, COFFERD_POST, "/v1/datasets", p.an, 400,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":0,\"sha256\":\"%s\"}", sha);
	CALL(f, COFFERD_POST, "/v1/datasets", p.an, 413,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":1048577,\"sha256\":\"%s\"}", sha);
	CALL(f, COFFERD_POST, "/v1/datasets", p.an, 400,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":1,\"sha256\":\"%.63s\"}", sha);
	CALL(f, COFFERD_POST, "/v1/datasets", p.an, 400,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":1,\"sha256\":\"%064X\"}", 255);
	CALL(f, COFFERD_POST, "/v1/datasets", f->admin, 403,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":1,\"sha256\":\"%s\"}", sha);

	json_t *r = call(f, COFFERD_POST, "/v1/datasets", p.an, 200,
			 "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":%zu,\"sha256\":\"%s\"}", len, sha);
	snprintf(id, sizeof(id), "%s", str(r, "id"));
	json_decref(r);
	CALL(f, COFFERD_POST, "/v1/datasets", p.oa, 409,
	     "{\"name\":\"d\",\"kms_dataset\":\"org-a/d\",\"size\":%zu,\"sha256\":\"%s\"}", len, sha);

	/* Parts: in order, within the declared size, by the owner organisation. */
	snprintf(path, sizeof(path), "/v1/datasets/%s/blob?offset=0", id);
	json_decref(call_raw(f, COFFERD_PUT, path, p.bn, data, 1000, 403, NULL));
	json_decref(call_raw(f, COFFERD_PUT, path, p.au, data, 1000, 403, NULL));
	json_decref(call_raw(f, COFFERD_PUT, path, p.an, data, 0, 400, NULL));
	json_decref(call_raw(f, COFFERD_PUT, path, p.an, data, 1000, 200, NULL));
	json_decref(call_raw(f, COFFERD_PUT, path, p.an, data, 1000, 409, NULL)); /* again at 0 */
	snprintf(path, sizeof(path), "/v1/datasets/%s/blob?offset=2000", id);
	json_decref(call_raw(f, COFFERD_PUT, path, p.an, data + 2000, 1000, 409, NULL)); /* a gap */
	snprintf(path, sizeof(path), "/v1/datasets/%s/blob?offset=1000", id);
	json_decref(call_raw(f, COFFERD_PUT, path, p.an, data + 1000, len, 413, NULL)); /* past the size */
	/* The wrong bytes: the commit refuses and drops the upload. */
	uint8_t *wrong = malloc(len);
	memcpy(wrong, data, len);
	wrong[len / 2] ^= 1;
	json_decref(call_raw(f, COFFERD_PUT, path, p.an, wrong + 1000, len - 1000, 200, NULL));
	free(wrong);
	snprintf(path, sizeof(path), "/v1/datasets/%s/commit", id);
	CALL(f, COFFERD_POST, path, p.bn, 403, NULL);
	CALL(f, COFFERD_POST, path, p.an, 409, NULL);
	assert_true(audit_has(f, "\"operation\":\"dataset.commit\"", "denied: size or sha256 mismatch"));
	snprintf(path, sizeof(path), "/v1/datasets/%s", id);
	r = call(f, COFFERD_GET, path, p.bn, 200, NULL);
	assert_int_equal(json_integer_value(json_object_get(r, "received")), 0);
	assert_string_equal(str(r, "state"), "uploading");
	json_decref(r);
	/* A commit of too few bytes is refused as well. */
	snprintf(path, sizeof(path), "/v1/datasets/%s/blob?offset=0", id);
	json_decref(call_raw(f, COFFERD_PUT, path, p.an, data, len - 1, 200, NULL));
	snprintf(path, sizeof(path), "/v1/datasets/%s/commit", id);
	CALL(f, COFFERD_POST, path, p.an, 409, NULL);
	/* Again, right. */
	for (size_t off = 0; off < len; off += 65536) {
		size_t n = len - off < 65536 ? len - off : 65536;
		snprintf(path, sizeof(path), "/v1/datasets/%s/blob?offset=%zu", id, off);
		json_decref(call_raw(f, COFFERD_PUT, path, p.oa, data + off, n, 200, NULL));
	}
	snprintf(path, sizeof(path), "/v1/datasets/%s/commit", id);
	r = call(f, COFFERD_POST, path, p.an, 200, NULL);
	assert_string_equal(str(r, "sha256"), sha);
	json_decref(r);
	CALL(f, COFFERD_POST, path, p.an, 409, NULL);
	snprintf(path, sizeof(path), "/v1/datasets/%s/blob?offset=%zu", id, len);
	json_decref(call_raw(f, COFFERD_PUT, path, p.an, data, 1, 409, NULL));

	/* Download: the owner organisation only. */
	cf_buf got;
	cf_buf_init(&got, 1u << 24, false);
	snprintf(path, sizeof(path), "/v1/datasets/%s/blob", id);
	assert_null(call_raw(f, COFFERD_GET, path, p.an, NULL, 0, 200, &got));
	assert_int_equal(got.len, len);
	assert_memory_equal(got.data, data, len);
	cf_buf_free(&got);
	CALL(f, COFFERD_GET, path, p.bn, 403, NULL);
	CALL(f, COFFERD_GET, path, p.au, 403, NULL);
	CALL(f, COFFERD_GET, path, p.op, 403, NULL);
	r = call(f, COFFERD_GET, "/v1/datasets", p.au, 200, NULL);
	json_t *item = json_array_get(json_object_get(r, "items"), 0);
	assert_string_equal(str(item, "kms_dataset"), "org-a/d");
	assert_string_equal(str(item, "state"), "ready");
	json_decref(r);

	/* Delete: the owner organisation; the blob goes too. */
	char blob[160];
	snprintf(blob, sizeof(blob), "%s/blobs/%s", f->state, id);
	assert_int_equal(access(blob, F_OK), 0);
	snprintf(path, sizeof(path), "/v1/datasets/%s", id);
	CALL(f, COFFERD_DELETE, path, p.bn, 403, NULL);
	CALL(f, COFFERD_DELETE, path, p.an, 200, NULL);
	CALL(f, COFFERD_GET, path, p.an, 404, NULL);
	assert_int_not_equal(access(blob, F_OK), 0);
	(void)other;
	free(data);
}

/* --- tasks and runs --- */

static bool soft_here(void)
{
	long fd = syscall(447, 0);
	if (fd < 0)
		return false;
	close((int)fd);
	return true;
}

/* Waits up to 10 s for a file to exist. */
static void wait_file(const char *path)
{
	for (int i = 0; i < 1000 && access(path, F_OK) != 0; i++)
		usleep(10000);
	assert_int_equal(access(path, F_OK), 0);
}

static json_t *run_state(fx *f, const char *token, const char *run, const char *want_state,
			 bool want_exit)
{
	char path[96];
	snprintf(path, sizeof(path), "/v1/runs/%s", run);
	for (int i = 0; i < 1000; i++) {
		json_t *r = call(f, COFFERD_GET, path, token, 200, NULL);
		if (strcmp(str(r, "state"), want_state) == 0 &&
		    (!want_exit || json_is_integer(json_object_get(r, "exit_status"))))
			return r;
		json_decref(r);
		usleep(10000);
	}
	fail_msg("run %s never reached %s", run, want_state);
	return NULL;
}

/* The stand-in's parameters; its arguments must be exactly want_args. */
static json_t *read_params(fx *f, const char *want_args)
{
	char path[160], args[1024];
	json_t *params = NULL;
	snprintf(path, sizeof(path), "%s/args", f->dir);
	wait_file(path);
	FILE *af = fopen(path, "r");
	size_t alen = fread(args, 1, sizeof(args) - 1, af);
	fclose(af);
	args[alen] = 0;
	assert_string_equal(args, want_args);
	snprintf(path, sizeof(path), "%s/params.json", f->dir);
	FILE *fp = fopen(path, "r");
	char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_int_equal(cf_json_parse(buf, n, NULL, &params), CF_OK);
	snprintf(path, sizeof(path), "%s/args", f->dir);
	unlink(path);
	return params;
}

static void test_tasks_runs(void **state)
{
	fx *f = *state;
	people p;
	char path[256], ida[32], idb[32], idc[32], task_id[32], digest[65], run[32], run_tok[64];
	char pub64[64], rcpt[CF_AGE_RECIPIENT_STRLEN + 1];
	uint8_t seed[32], pub[32], d[32];
	cf_age_x25519_key age;
	if (!soft_here())
		skip();
	make_people(f, &p);
	assert_int_equal(cf_ed25519_keygen(seed, pub), CF_OK);
	assert_int_equal(cf_age_keygen(&age), CF_OK);
	assert_int_equal(cf_age_recipient_format(age.pub, rcpt), CF_OK);
	cf_b64_encode(pub, 32, true, pub64);
	CALL(f, COFFERD_PUT, "/v1/orgs/org-a/keys", p.oa, 200,
	     "{\"sign_pub\":\"%s\",\"age_recipient\":\"%s\"}", pub64, rcpt);
	upload(f, p.an, "org-a", "data", (const uint8_t *)"ciphertext of a", 15, 4, ida);
	upload(f, p.bn, "org-b", "data", (const uint8_t *)"ciphertext of b", 15, 100, idb);
	upload(f, p.bn, "org-b", "other", (const uint8_t *)"not in the task", 15, 100, idc);

	char task[2048];
	snprintf(task, sizeof(task),
		 "{\"name\":\"join\",\"inputs\":{\"a\":{\"dataset\":\"org-a/data\"},\"b\":{\"dataset\":\"org-b/data\"}},"
		 "\"function\":{\"kind\":\"sql\",\"query\":\"SELECT 1\"},"
		 "\"outputs\":[{\"name\":\"result\",\"recipients\":[{\"org\":\"org-a\",\"recipient\":\"%s\"}]}],"
		 "\"tee\":{\"kinds\":[\"soft\"],\"measurements\":[\"00\"]}}",
		 rcpt);
	/* Malformed tasks and callers. */
	CALL(f, COFFERD_POST, "/v1/tasks", p.an, 400, "{\"task\":{\"inputs\":{}}}");
	CALL(f, COFFERD_POST, "/v1/tasks", p.an, 400, "{}");
	CALL(f, COFFERD_POST, "/v1/tasks", p.an, 400,
	     "{\"task\":{\"inputs\":{\"a\":{\"dataset\":\"org-z/data\"}},\"outputs\":[],"
	     "\"tee\":{\"kinds\":[\"soft\"],\"measurements\":[\"00\"]}}}");
	CALL(f, COFFERD_POST, "/v1/tasks", p.an, 400,
	     "{\"task\":{\"inputs\":{\"a\":{\"dataset\":\"org-a/data\"}},\"outputs\":["
	     "{\"name\":\"r\",\"recipients\":[{\"org\":\"org-a\",\"recipient\":\"%s\"}]},"
	     "{\"name\":\"r\",\"recipients\":[{\"org\":\"org-a\",\"recipient\":\"%s\"}]}],"
	     "\"tee\":{\"kinds\":[\"soft\"],\"measurements\":[\"00\"]}}}", rcpt, rcpt);
	CALL(f, COFFERD_POST, "/v1/tasks", p.an, 400,
	     "{\"task\":{\"inputs\":{\"a\":{\"dataset\":\"org-a/data\"}},\"outputs\":["
	     "{\"name\":\"../x\",\"recipients\":[{\"org\":\"org-a\",\"recipient\":\"%s\"}]}],"
	     "\"tee\":{\"kinds\":[\"soft\"],\"measurements\":[\"00\"]}}}", rcpt);
	CALL(f, COFFERD_POST, "/v1/tasks", p.au, 403, "{\"task\":%s}", task);
	CALL(f, COFFERD_POST, "/v1/tasks", p.op, 403, "{\"task\":%s}", task);
	json_t *r = call(f, COFFERD_POST, "/v1/tasks", p.an, 200, "{\"task\":%s}", task);
	snprintf(task_id, sizeof(task_id), "%s", str(r, "id"));
	snprintf(digest, sizeof(digest), "%s", str(r, "digest"));
	json_decref(r);
	json_t *tj = NULL;
	assert_int_equal(cf_json_parse(task, strlen(task), NULL, &tj), CF_OK);
	assert_int_equal(cf_task_digest(tj, d), CF_OK);
	char want[65];
	cf_hex_encode(d, 32, want);
	assert_string_equal(digest, want);

	/* Not approved: no run. */
	snprintf(path, sizeof(path), "/v1/tasks/%s/run", task_id);
	CALL(f, COFFERD_POST, path, p.an, 409, NULL);
	/* Approvals: the owner's members, a signature that verifies under a registered key. */
	json_t *appr = NULL;
	assert_int_equal(cf_task_approve(seed, d, "org-a", &appr), CF_OK);
	snprintf(path, sizeof(path), "/v1/tasks/%s/approvals", task_id);
	CALL(f, COFFERD_POST, path, p.bn, 403, "{\"org\":\"org-a\",\"sig\":\"%s\"}", str(appr, "sig"));
	CALL(f, COFFERD_POST, path, p.an, 400, "{\"org\":\"org-a\",\"sig\":\"%s\"}", "AAAA");
	uint8_t other_seed[32] = { 9 };
	json_t *forged = NULL;
	assert_int_equal(cf_task_approve(other_seed, d, "org-a", &forged), CF_OK);
	CALL(f, COFFERD_POST, path, p.an, 400, "{\"org\":\"org-a\",\"sig\":\"%s\"}", str(forged, "sig"));
	assert_true(audit_has(f, "\"operation\":\"task.approve\"", "denied: approval signature"));
	json_decref(forged);
	r = call(f, COFFERD_POST, path, p.an, 200, "{\"org\":\"org-a\",\"sig\":\"%s\"}", str(appr, "sig"));
	assert_string_equal(str(r, "state"), "pending");
	json_decref(r);
	/* org-b registered no key here: cofferd stores what it cannot check (the KMS will). */
	r = call(f, COFFERD_POST, path, p.bn, 200, "{\"org\":\"org-b\",\"sig\":\"%s\"}", str(appr, "sig"));
	assert_string_equal(str(r, "state"), "approved");
	assert_int_equal(json_array_size(json_object_get(r, "approvals")), 2);
	json_decref(r);
	r = call(f, COFFERD_GET, "/v1/tasks", p.au, 200, NULL);
	assert_int_equal(json_array_size(json_object_get(json_array_get(json_object_get(r, "items"), 0),
							 "approvals")), 2);
	json_decref(r);

	/* A run: the launcher's fixed arguments and the parameters on its stdin. */
	snprintf(path, sizeof(path), "/v1/tasks/%s/run", task_id);
	CALL(f, COFFERD_POST, path, p.au, 403, NULL);
	r = call(f, COFFERD_POST, path, p.an, 200, NULL);
	snprintf(run, sizeof(run), "%s", str(r, "run"));
	json_decref(r);
	CALL(f, COFFERD_POST, path, p.an, 409, NULL); /* already running */
	char args_want[512];
	snprintf(args_want, sizeof(args_want),
		 "run\n--cores\n1\n--memory\n1073741824\n--enclave-size\n536870912\n--\n%s\n", f->enclave);
	json_t *params = read_params(f, args_want);
	assert_string_equal(str(params, "run"), run);
	assert_string_equal(str(params, "cofferd"), "https://127.0.0.1:9");
	assert_non_null(strstr(str(params, "cofferd_ca"), "BEGIN CERTIFICATE"));
	snprintf(run_tok, sizeof(run_tok), "%s", str(params, "token"));
	json_decref(params);

	/* The run token: its run's endpoints, its inputs' blobs, nothing else. */
	CALL(f, COFFERD_GET, "/v1/me", run_tok, 403, NULL);
	CALL(f, COFFERD_GET, "/v1/tasks", run_tok, 403, NULL);
	CALL(f, COFFERD_POST, "/v1/orgs", run_tok, 403, "{\"name\":\"x\"}");
	CALL(f, COFFERD_GET, "/v1/runs/run-0000000000000000/spec", run_tok, 403, NULL);
	snprintf(path, sizeof(path), "/v1/runs/%s/spec", run);
	CALL(f, COFFERD_GET, path, p.an, 403, NULL);
	r = call(f, COFFERD_GET, path, run_tok, 200, NULL);
	assert_string_equal(str(r, "digest"), digest);
	json_t *inputs = json_object_get(r, "inputs");
	assert_int_equal(json_array_size(inputs), 2);
	char want_url[128];
	snprintf(want_url, sizeof(want_url), "https://127.0.0.1:9/v1/datasets/%s/blob", ida);
	assert_string_equal(str(json_array_get(inputs, 0), "blob_url"), want_url);
	assert_string_equal(str(json_array_get(inputs, 0), "dataset"), "org-a/data");
	assert_int_equal(json_array_size(json_object_get(r, "approvals")), 2);
	json_decref(r);
	cf_buf got;
	cf_buf_init(&got, 1u << 20, false);
	snprintf(path, sizeof(path), "/v1/datasets/%s/blob", idb);
	assert_null(call_raw(f, COFFERD_GET, path, run_tok, NULL, 0, 200, &got));
	assert_int_equal(got.len, 15);
	assert_memory_equal(got.data, "ciphertext of b", 15);
	cf_buf_reset(&got);
	snprintf(path, sizeof(path), "/v1/datasets/%s/blob", idc);
	CALL(f, COFFERD_GET, path, run_tok, 403, NULL);

	/* Outputs: declared names, in order, checked at commit. */
	const char *out = "age-encrypted result";
	char out_sha[65];
	sha_hex(out, strlen(out), out_sha);
	snprintf(path, sizeof(path), "/v1/runs/%s/outputs/nope?offset=0", run);
	json_decref(call_raw(f, COFFERD_PUT, path, run_tok, out, 5, 404, NULL));
	snprintf(path, sizeof(path), "/v1/runs/%s/outputs/result?offset=0", run);
	json_decref(call_raw(f, COFFERD_PUT, path, p.an, out, 5, 403, NULL));
	json_decref(call_raw(f, COFFERD_PUT, path, run_tok, out, 5, 200, NULL));
	json_decref(call_raw(f, COFFERD_PUT, path, run_tok, out, 5, 409, NULL));
	snprintf(path, sizeof(path), "/v1/runs/%s/finish", run);
	CALL(f, COFFERD_POST, path, run_tok, 409, "{\"status\":\"succeeded\"}"); /* output missing */
	CALL(f, COFFERD_POST, path, run_tok, 400, "{\"status\":\"done\"}");
	snprintf(path, sizeof(path), "/v1/runs/%s/outputs/result?offset=5", run);
	json_decref(call_raw(f, COFFERD_PUT, path, run_tok, out + 5, strlen(out) - 5, 200, NULL));
	snprintf(path, sizeof(path), "/v1/runs/%s/outputs/result/commit", run);
	CALL(f, COFFERD_POST, path, run_tok, 409, "{\"size\":%zu,\"sha256\":\"%064d\"}", strlen(out), 0);
	snprintf(path, sizeof(path), "/v1/runs/%s/outputs/result?offset=0", run);
	json_decref(call_raw(f, COFFERD_PUT, path, run_tok, out, strlen(out), 200, NULL));
	snprintf(path, sizeof(path), "/v1/runs/%s/outputs/result/commit", run);
	/* The attestation, if any, is a JSON object of at most 4 KiB; cofferd checks nothing else. */
	CALL(f, COFFERD_POST, path, run_tok, 400,
	     "{\"size\":%zu,\"sha256\":\"%s\",\"attestation\":\"sig\"}", strlen(out), out_sha);
	char *huge = malloc(5000);
	assert_non_null(huge);
	memset(huge, 'x', 4999);
	huge[4999] = '\0';
	CALL(f, COFFERD_POST, path, run_tok, 413,
	     "{\"size\":%zu,\"sha256\":\"%s\",\"attestation\":{\"sig\":\"%s\"}}", strlen(out), out_sha,
	     huge);
	free(huge);
	CALL(f, COFFERD_POST, path, run_tok, 200,
	     "{\"size\":%zu,\"sha256\":\"%s\",\"attestation\":{\"sig\":\"S\",\"output_key\":"
	     "{\"statement\":{\"task_digest\":\"%s\",\"issued\":7},\"sig\":\"K\"}}}",
	     strlen(out), out_sha, digest);
	snprintf(path, sizeof(path), "/v1/runs/%s/finish", run);
	r = call(f, COFFERD_POST, path, run_tok, 200, "{\"status\":\"succeeded\",\"message\":\"ok\"}");
	assert_string_equal(str(r, "state"), "succeeded");
	json_decref(r);
	/* The token ended with the run. */
	CALL(f, COFFERD_POST, path, run_tok, 401, "{\"status\":\"failed\"}");
	r = run_state(f, p.au, run, "succeeded", false);
	assert_int_equal(json_array_size(json_object_get(r, "outputs")), 1);
	/* The attestation comes back as it was sent. */
	json_t *att = json_object_get(json_array_get(json_object_get(r, "outputs"), 0), "attestation");
	json_t *want_att = json_pack("{s:s,s:{s:{s:s,s:i},s:s}}", "sig", "S", "output_key", "statement",
				     "task_digest", digest, "issued", 7, "sig", "K");
	assert_true(json_equal(att, want_att));
	json_decref(want_att);
	json_decref(r);

	/* The output: its recipients' organisations only. */
	snprintf(path, sizeof(path), "/v1/tasks/%s/outputs/result", task_id);
	assert_null(call_raw(f, COFFERD_GET, path, p.an, NULL, 0, 200, &got));
	assert_int_equal(got.len, strlen(out));
	assert_memory_equal(got.data, out, strlen(out));
	cf_buf_free(&got);
	CALL(f, COFFERD_GET, path, p.bn, 403, NULL);
	CALL(f, COFFERD_GET, path, p.au, 403, NULL);
	snprintf(path, sizeof(path), "/v1/tasks/%s/outputs/other", task_id);
	CALL(f, COFFERD_GET, path, p.an, 404, NULL);

	/* A second run, cancelled: the process group gets SIGTERM. */
	snprintf(path, sizeof(path), "/v1/tasks/%s/run", task_id);
	r = call(f, COFFERD_POST, path, p.bn, 200, NULL);
	snprintf(run, sizeof(run), "%s", str(r, "run"));
	json_decref(r);
	params = read_params(f, args_want);
	snprintf(run_tok, sizeof(run_tok), "%s", str(params, "token"));
	json_decref(params);
	snprintf(path, sizeof(path), "/v1/tasks/%s/cancel", task_id);
	CALL(f, COFFERD_POST, path, p.au, 403, NULL);
	r = call(f, COFFERD_POST, path, p.an, 200, NULL);
	assert_string_equal(str(r, "state"), "cancelled");
	json_decref(r);
	snprintf(path, sizeof(path), "/v1/runs/%s/spec", run);
	CALL(f, COFFERD_GET, path, run_tok, 401, NULL);
	r = run_state(f, p.an, run, "cancelled", true);
	assert_int_equal(json_integer_value(json_object_get(r, "exit_status")), 128 + 15);
	assert_non_null(strstr(str(r, "log"), "enclave says hi"));
	json_decref(r);
	snprintf(path, sizeof(path), "/v1/tasks/%s/run", task_id);
	CALL(f, COFFERD_POST, path, p.an, 409, NULL); /* cancelled is final */

	/* A third task on an instance, whose enclave dies without finishing. */
	char script_flag[160];
	snprintf(script_flag, sizeof(script_flag), "%s/exit-now", f->dir);
	write_file(script_flag, "", 0600);
	char task2[2100];
	snprintf(task2, sizeof(task2), "%.*s,\"name2\":1}", (int)strlen(task) - 1, task);
	r = call(f, COFFERD_POST, "/v1/tasks", p.an, 200, "{\"task\":%s}", task2);
	snprintf(task_id, sizeof(task_id), "%s", str(r, "id"));
	assert_string_not_equal(str(r, "digest"), digest);
	size_t dlen = 0;
	assert_int_equal(cf_hex_decode(str(r, "digest"), 64, d, 32, &dlen), CF_OK);
	json_decref(r);
	r = call(f, COFFERD_POST, "/v1/instances", p.op, 200,
		 "{\"name\":\"i2\",\"tee\":\"soft\",\"cores\":1,\"memory\":268435456,\"enclave_size\":134217728}");
	char inst[32];
	snprintf(inst, sizeof(inst), "%s", str(r, "id"));
	json_decref(r);
	json_decref(appr);
	assert_int_equal(cf_task_approve(seed, d, "org-a", &appr), CF_OK);
	snprintf(path, sizeof(path), "/v1/tasks/%s/approvals", task_id);
	CALL(f, COFFERD_POST, path, p.an, 200, "{\"org\":\"org-a\",\"sig\":\"%s\"}", str(appr, "sig"));
	CALL(f, COFFERD_POST, path, p.bn, 200, "{\"org\":\"org-b\",\"sig\":\"%s\"}", str(appr, "sig"));
	snprintf(path, sizeof(path), "/v1/tasks/%s/run", task_id);
	CALL(f, COFFERD_POST, path, p.an, 409, "{\"instance\":\"%s\"}", inst); /* stopped */
	CALL(f, COFFERD_POST, path, p.an, 404, "{\"instance\":\"inst-0000000000000000\"}");
	snprintf(path, sizeof(path), "/v1/instances/%s/start", inst);
	CALL(f, COFFERD_POST, path, p.op, 200, NULL);
	snprintf(path, sizeof(path), "/v1/tasks/%s/run", task_id);
	r = call(f, COFFERD_POST, path, p.an, 200, "{\"instance\":\"%s\"}", inst);
	snprintf(run, sizeof(run), "%s", str(r, "run"));
	json_decref(r);
	r = run_state(f, p.an, run, "failed", true);
	assert_int_equal(json_integer_value(json_object_get(r, "exit_status")), 3);
	assert_non_null(strstr(str(r, "message"), "without finishing"));
	assert_string_equal(str(r, "instance"), inst);
	json_decref(r);
	snprintf(path, sizeof(path), "%s/args", f->dir);
	wait_file(path);
	/* The instance's size, and nothing of the task, on the launcher's command line. */
	snprintf(args_want, sizeof(args_want),
		 "run\n--cores\n1\n--memory\n268435456\n--enclave-size\n134217728\n--\n%s\n", f->enclave);
	assert_true(file_has(path, args_want));
	r = call(f, COFFERD_GET, "/v1/instances", p.an, 200, NULL);
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(r, "items"), 0), "run")));
	json_decref(r);
	/* The watcher audits the exit just after recording it. */
	for (int i = 0; i < 500 && !audit_has(f, "\"operation\":\"run.exit\"", "(status 3)"); i++)
		usleep(10000);
	assert_true(audit_has(f, "\"operation\":\"run.exit\"", "exited without finishing (status 3)"));
	r = call(f, COFFERD_GET, "/v1/tasks", p.an, 200, NULL);
	json_decref(r);
	json_decref(appr);
	json_decref(tj);
	cf_age_key_wipe(&age);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passwords, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_datasets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tasks_runs, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
