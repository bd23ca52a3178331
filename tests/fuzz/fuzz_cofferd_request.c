/*
 * Fuzzes cofferd's request handling as the HTTPS front end calls it:
 * routing, path decoding, authentication, body limits, JSON parsing and
 * every handler. An input is
 *
 *   byte 0: method (bits 0-2: GET, POST, PUT, DELETE, other) and caller
 *           (bits 3-5: none, admin, analyst, org-admin, auditor, operator,
 *           a logged-out token, a malformed one)
 *   then:   the path with its query, up to a newline; the words DS, TASK
 *           and INST in it become the ids of a dataset, a task and an
 *           instance made at start-up
 *   then:   the body
 *
 * One cofferd per process in a scratch directory under /dev/shm (audit
 * entries are fsynced), with two organisations, a user of each role, a
 * ready dataset, an approved task and an instance. Runs cannot start (no
 * launcher), and calls that would log the fixed callers out are skipped.
 * Every answer must be a status in 200..599 and a JSON object or a
 * stream; every refusal an {"error": {"code"}}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer/json.h"
#include "cofferd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cofferd *the_d;
static char dir[64];
static char tokens[8][64];
static char ds_id[32], task_id[32], inst_id[32];

static void cleanup(void)
{
	cofferd_close(the_d);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_cofferd_request: could not remove %s\n", dir);
}

/* A setup request that must succeed; returns member key of the answer (static). */
static const char *must(cofferd_method m, const char *path, const char *token, const char *body,
			const char *key)
{
	static char out[128];
	char auth[96];
	snprintf(auth, sizeof(auth), "Bearer %s", token ? token : "");
	const char *q = strchr(path, '?');
	char p[256];
	snprintf(p, sizeof(p), "%.*s", q ? (int)(q - path) : (int)strlen(path), path);
	cofferd_request req = { .method = m, .path = p, .query = q ? q + 1 : NULL,
				.authorization = token ? auth : NULL, .body = (const uint8_t *)body,
				.body_len = body ? strlen(body) : 0 };
	cofferd_response resp;
	cofferd_handle(the_d, &req, &resp);
	if (resp.status != 200) {
		fprintf(stderr, "setup %s: %d\n", path, resp.status);
		abort();
	}
	out[0] = 0;
	if (key)
		snprintf(out, sizeof(out), "%s", json_string_value(json_object_get(resp.json, key)));
	cofferd_response_clear(&resp);
	return out;
}

static void user(const char *name, const char *org, const char *role, int slot)
{
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"username\":\"%s\",\"password\":\"password of %s\",\"role\":\"%s\"%s%s%s}", name, name,
		 role, org ? ",\"org\":\"" : "", org ? org : "", org ? "\"" : "");
	must(COFFERD_POST, "/v1/users", tokens[1], body, NULL);
	snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"password of %s\"}", name, name);
	snprintf(tokens[slot], sizeof(tokens[slot]), "%s",
		 must(COFFERD_POST, "/v1/login", NULL, body, "token"));
}

static void setup(void)
{
	char state[96], pw[96], body[1024], path[128];
	snprintf(dir, sizeof(dir), "/dev/shm/coffer-fuzz-cofferd-XXXXXX");
	if (!mkdtemp(dir)) {
		snprintf(dir, sizeof(dir), "/tmp/coffer-fuzz-cofferd-XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(pw, sizeof(pw), "%s/admin.pw", dir);
	FILE *f = fopen(pw, "w");
	if (!f || fchmod(fileno(f), 0600) != 0 || fputs("fuzzing admin password\n", f) < 0 ||
	    fclose(f) != 0)
		abort();
	cofferd_config cfg = { .state_dir = state, .admin_password_file = pw,
			       .launch_path = "/nonexistent/coffer-launch",
			       .enclave_path = "/nonexistent/coffer-enclave", .max_dataset = 1u << 20,
			       .argon2_t = 1, .argon2_m_kib = 8 };
	if (cofferd_open(&cfg, &the_d) != CF_OK)
		abort();
	atexit(cleanup);
	snprintf(tokens[1], sizeof(tokens[1]), "%s",
		 must(COFFERD_POST, "/v1/login", NULL,
		      "{\"username\":\"admin\",\"password\":\"fuzzing admin password\"}", "token"));
	must(COFFERD_POST, "/v1/orgs", tokens[1], "{\"name\":\"org-a\"}", NULL);
	must(COFFERD_POST, "/v1/orgs", tokens[1], "{\"name\":\"org-b\"}", NULL);
	user("an", "org-a", "analyst", 2);
	user("oa", "org-a", "org-admin", 3);
	user("au", NULL, "auditor", 4);
	user("op", NULL, "operator", 5);
	user("gone", NULL, "auditor", 6);
	must(COFFERD_POST, "/v1/logout", tokens[6], NULL, NULL);
	snprintf(tokens[7], sizeof(tokens[7]), "cft_not-a-real-token");

	/* sha256("abcd") */
	snprintf(ds_id, sizeof(ds_id), "%s",
		 must(COFFERD_POST, "/v1/datasets", tokens[2],
		      "{\"name\":\"data\",\"kms_dataset\":\"org-a/data\",\"size\":4,\"sha256\":"
		      "\"88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589\"}",
		      "id"));
	{
		char auth[96];
		char p[128];
		snprintf(auth, sizeof(auth), "Bearer %s", tokens[2]);
		snprintf(p, sizeof(p), "/v1/datasets/%s/blob", ds_id);
		cofferd_request put = { .method = COFFERD_PUT, .path = p, .query = "offset=0",
					.authorization = auth, .body = (const uint8_t *)"abcd",
					.body_len = 4 };
		cofferd_response resp;
		cofferd_handle(the_d, &put, &resp);
		if (resp.status != 200)
			abort();
		cofferd_response_clear(&resp);
	}
	snprintf(path, sizeof(path), "/v1/datasets/%s/commit", ds_id);
	must(COFFERD_POST, path, tokens[2], NULL, NULL);
	snprintf(body, sizeof(body),
		 "{\"task\":{\"inputs\":{\"a\":{\"dataset\":\"org-a/data\"}},\"outputs\":[{\"name\":"
		 "\"result\",\"recipients\":[{\"org\":\"org-a\",\"recipient\":"
		 "\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"}]}],"
		 "\"tee\":{\"kinds\":[\"soft\"],\"measurements\":[\"00\"]}}}");
	snprintf(task_id, sizeof(task_id), "%s", must(COFFERD_POST, "/v1/tasks", tokens[2], body, "id"));
	snprintf(path, sizeof(path), "/v1/tasks/%s/approvals", task_id);
	must(COFFERD_POST, path, tokens[2],
	     "{\"org\":\"org-a\",\"sig\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\"}",
	     NULL);
	snprintf(inst_id, sizeof(inst_id), "%s",
		 must(COFFERD_POST, "/v1/instances", tokens[5],
		      "{\"name\":\"i1\",\"tee\":\"soft\",\"cores\":1,\"memory\":1048576,\"enclave_size\":1048576}",
		      "id"));
}

/* Replaces each word by its id, in place within cap. */
static void substitute(char *s, size_t cap, const char *word, const char *id)
{
	char *p;
	size_t wl = strlen(word), il = strlen(id);
	while ((p = strstr(s, word)) != NULL) {
		size_t len = strlen(s);
		if (len - wl + il + 1 > cap)
			return;
		memmove(p + il, p + wl, len - (size_t)(p - s) - wl + 1);
		memcpy(p, id, il);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const cofferd_method methods[] = { COFFERD_GET, COFFERD_POST, COFFERD_PUT,
						  COFFERD_DELETE, COFFERD_OTHER };
	char path[2048], auth[96];
	if (!the_d)
		setup();
	if (size < 1)
		return 0;
	cofferd_method m = methods[(data[0] & 7) % 5];
	unsigned who = (data[0] >> 3) & 7;
	const uint8_t *nl = memchr(data + 1, '\n', size - 1);
	size_t plen = nl ? (size_t)(nl - data - 1) : size - 1;
	if (plen >= 1024 || memchr(data + 1, 0, plen))
		return 0;
	memcpy(path, data + 1, plen);
	path[plen] = 0;
	substitute(path, sizeof(path), "DS", ds_id);
	substitute(path, sizeof(path), "TASK", task_id);
	substitute(path, sizeof(path), "INST", inst_id);
	/* Keep the fixed callers logged in. */
	if (strstr(path, "logout") || (m == COFFERD_DELETE && strstr(path, "users")) ||
	    (m == COFFERD_DELETE && strstr(path, "tokens")))
		return 0;
	char *q = strchr(path, '?');
	if (q)
		*q++ = 0;
	snprintf(auth, sizeof(auth), "Bearer %s", tokens[who]);
	const uint8_t *body = nl ? nl + 1 : NULL;
	size_t blen = nl ? size - (size_t)(nl + 1 - data) : 0;
	cofferd_request req = { .method = m, .path = path, .query = q,
				.authorization = who ? auth : NULL, .body = body, .body_len = blen };
	cofferd_response resp;
	cofferd_handle(the_d, &req, &resp);
	if (resp.status < 200 || resp.status > 599)
		abort();
	if (resp.fd < 0 && !json_is_object(resp.json))
		abort();
	if (resp.status >= 400 &&
	    !json_is_string(json_object_get(json_object_get(resp.json, "error"), "code")))
		abort();
	cofferd_response_clear(&resp);
	return 0;
}
