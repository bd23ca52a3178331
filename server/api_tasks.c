/*
 * Tasks, approvals and runs (docs/api.md, "Tasks and runs"), and the
 * endpoints a run's enclave uses with its run token. cofferd keeps the
 * task and the approvals only to hand them on: the KMS checks them again
 * before it releases a key, so nothing here is a security decision about
 * data, only about who may ask cofferd to do what.
 */
#define CF_LOG_MODULE "api"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coffer/enc.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "coffer/log.h"
#include "internal.h"

#define MAX_INPUTS 64
#define MAX_OUTPUTS 64
#define MAX_OUTPUT_NAME 128
#define LOG_TAIL (16u * 1024u)
#define DEFAULT_CORES 1
#define DEFAULT_MEMORY (1ull << 30)
#define DEFAULT_ENCLAVE_SIZE (512ull << 20)

static bool analyst_up(const ctx *c)
{
	return c->who.kind == CALLER_USER && (ANALYST_UP & R(c->who.role));
}

/* The organisation of "ORG/NAME" into org (STORE_NAME_LEN). */
static void owner_of(const char *kms_dataset, char org[static STORE_NAME_LEN])
{
	const char *slash = strchr(kms_dataset, '/');
	size_t n = slash ? (size_t)(slash - kms_dataset) : 0;
	if (n >= STORE_NAME_LEN)
		n = 0;
	memcpy(org, kms_dataset, n);
	org[n] = 0;
}

/* A name that fits in a path segment: 1 to 128 bytes, no control character, no '/'. */
static bool valid_output_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > MAX_OUTPUT_NAME || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f || ch == '/')
			return false;
	}
	return true;
}

/* The index of output name in the task, or -1. */
static int output_index(const json_t *task, const char *name)
{
	const json_t *outputs = json_object_get(task, "outputs");
	size_t i;
	const json_t *o;
	json_array_foreach(outputs, i, o) {
		const char *n = json_string_value(json_object_get(o, "name"));
		if (n && strcmp(n, name) == 0)
			return (int)i;
	}
	return -1;
}

/* Loads the task of c->param[0]; answers 404 (or 500) itself. */
static bool path_task(ctx *c, store_task *t, json_t **task)
{
	const char *id = c->param[0];
	cf_err rc = valid_id(id, "task") ? store_task_get(c->d->db, id, t) : CF_ERR_NOT_FOUND;
	if (valid_id(id, "task"))
		api_object(c, "task/%s", id);
	if (rc != CF_OK) {
		api_store_fail(c, rc, "task", "");
		return false;
	}
	if (task && cf_json_parse(t->json, strlen(t->json), NULL, task) != CF_OK) {
		store_task_clear(t);
		api_fail(c, 500, "the stored task does not parse");
		return false;
	}
	return true;
}

/* --- creating and reading tasks --- */

/* Checks what cofferd itself needs of a task on top of cf_task_check. */
static bool task_shape(ctx *c, const json_t *task, const char *owners[MAX_INPUTS], size_t *nowners,
		       char owner_buf[MAX_INPUTS][STORE_NAME_LEN])
{
	const json_t *inputs = json_object_get(task, "inputs");
	const json_t *outputs = json_object_get(task, "outputs");
	const char *table;
	const json_t *in;
	size_t n = 0;
	if (json_object_size(inputs) > MAX_INPUTS || json_array_size(outputs) > MAX_OUTPUTS) {
		api_fail(c, 400, "a task has at most %d inputs and %d outputs", MAX_INPUTS, MAX_OUTPUTS);
		return false;
	}
	json_object_foreach((json_t *)inputs, table, in) {
		char org[STORE_NAME_LEN];
		store_org o;
		if (strlen(table) >= STORE_TABLE_LEN) {
			api_fail(c, 400, "input table names are at most %d bytes", STORE_TABLE_LEN - 1);
			return false;
		}
		owner_of(json_string_value(json_object_get(in, "dataset")), org);
		bool seen = false;
		for (size_t i = 0; i < n; i++)
			seen |= strcmp(owners[i], org) == 0;
		if (seen)
			continue;
		cf_err rc = store_org_get(c->d->db, org, &o);
		if (rc == CF_ERR_NOT_FOUND) {
			api_fail(c, 400, "input %.64s: no organisation %s here", table, org);
			return false;
		}
		if (rc != CF_OK) {
			api_store_fail(c, rc, "organisation", "");
			return false;
		}
		snprintf(owner_buf[n], STORE_NAME_LEN, "%s", org);
		owners[n] = owner_buf[n];
		n++;
	}
	size_t i;
	const json_t *o;
	json_array_foreach(outputs, i, o) {
		const char *name = json_string_value(json_object_get(o, "name"));
		if (!valid_output_name(name)) {
			api_fail(c, 400, "output %zu: names are 1 to %d bytes without '/' or control "
					 "characters", i, MAX_OUTPUT_NAME);
			return false;
		}
		if (output_index(task, name) != (int)i) {
			api_fail(c, 400, "two outputs are named %.64s", name);
			return false;
		}
	}
	*nowners = n;
	return true;
}

void h_task_create(ctx *c)
{
	json_t *task = json_object_get(c->body, "task");
	const char *owners[MAX_INPUTS];
	char owner_buf[MAX_INPUTS][STORE_NAME_LEN];
	size_t nowners = 0;
	char why[256];
	uint8_t digest[CF_SHA256_LEN];
	store_task t = { .created = c->now };
	size_t len = 0;
	if (!analyst_up(c)) {
		api_fail(c, 403, "analysts, org-admins and admins create tasks");
		return;
	}
	if (cf_task_check(task, why, sizeof(why)) != CF_OK) {
		api_fail(c, 400, "task: %s", why);
		return;
	}
	if (!task_shape(c, task, owners, &nowners, owner_buf))
		return;
	cf_err rc = cf_task_digest(task, digest);
	/* Stored in its canonical form: exactly the bytes whose hash the owners sign. */
	if (rc == CF_OK)
		rc = cf_json_canonical(task, &t.json, &len);
	if (rc == CF_OK)
		rc = make_id("task", t.id);
	if (rc != CF_OK) {
		api_fail(c, 500, "cannot store the task (%s)", cf_strerror(rc));
		goto out;
	}
	cf_hex_encode(digest, sizeof(digest), t.digest);
	const char *name = json_string_value(json_object_get(task, "name"));
	clean_utf8(name ? name : "", t.name, 128);
	snprintf(t.creator, sizeof(t.creator), "%s", c->who.user.name);
	if ((rc = store_task_create(c->d->db, &t, owners, nowners)) != CF_OK) {
		api_store_fail(c, rc, "task", "the task exists");
		goto out;
	}
	api_object(c, "task/%s", t.id);
	api_ok(c, json_pack("{s:s,s:s,s:s}", "id", t.id, "digest", t.digest, "state", "pending"));
out:
	free(t.json);
}

static void name_item(void *arg, const char *name)
{
	json_array_append_new(arg, json_string(name));
}

static void approval_item(void *arg, const char *org, const char *sig)
{
	json_array_append_new(arg, json_pack("{s:s,s:s}", "org", org, "sig", sig));
}

static void approval_org(void *arg, const char *org, const char *sig)
{
	json_array_append_new(arg, json_string(org));
}

static void task_item(void *arg, const store_task *t)
{
	json_array_append_new(arg, json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "id", t->id, "name",
					     t->name, "digest", t->digest, "state", t->state,
					     "created", (json_int_t)t->created, "creator", t->creator));
}

void h_task_list(ctx *c)
{
	json_t *items = json_array();
	cf_err rc = items ? store_task_list(c->d->db, task_item, items) : CF_ERR_NOMEM;
	/* The approving organisations, once the list is read (the store is not reentrant). */
	size_t i;
	json_t *item;
	json_array_foreach(items, i, item) {
		json_t *orgs = json_array();
		if (rc == CF_OK)
			rc = orgs ? store_task_approvals(c->d->db, json_string_value(json_object_get(item, "id")),
							 approval_org, orgs)
				  : CF_ERR_NOMEM;
		if (json_object_set_new(item, "approvals", orgs ? orgs : json_null()) != 0 && rc == CF_OK)
			rc = CF_ERR_NOMEM;
	}
	if (rc != CF_OK) {
		json_decref(items);
		api_store_fail(c, rc, "task", "");
		return;
	}
	api_ok(c, json_pack("{s:o}", "items", items));
}

static json_t *run_summary(const store_run *r)
{
	return json_pack("{s:s,s:s,s:o,s:I,s:o,s:s}", "id", r->id, "state", r->state, "exit_status",
			 r->exit_status >= 0 ? json_integer(r->exit_status) : json_null(), "started",
			 (json_int_t)r->started, "ended",
			 r->ended ? json_integer((json_int_t)r->ended) : json_null(), "message", r->message);
}

static void run_item(void *arg, const store_run *r)
{
	json_array_append_new(arg, run_summary(r));
}

void h_task_get(ctx *c)
{
	store_task t;
	json_t *task = NULL, *approvals = json_array(), *owners = json_array(), *runs = json_array();
	if (!approvals || !owners || !runs || !path_task(c, &t, &task)) {
		if (!approvals || !owners || !runs)
			api_fail(c, 500, "out of memory");
		json_decref(approvals);
		json_decref(owners);
		json_decref(runs);
		return;
	}
	cf_err rc = store_task_approvals(c->d->db, t.id, approval_item, approvals);
	if (rc == CF_OK)
		rc = store_task_owners(c->d->db, t.id, name_item, owners);
	if (rc == CF_OK)
		rc = store_run_list(c->d->db, t.id, run_item, runs);
	if (rc != CF_OK) {
		json_decref(approvals);
		json_decref(owners);
		json_decref(runs);
		json_decref(task);
		api_store_fail(c, rc, "task", "");
	} else {
		api_ok(c, json_pack("{s:s,s:s,s:o,s:s,s:s,s:I,s:s,s:o,s:o,s:o}", "id", t.id, "name",
				    t.name, "task", task, "digest", t.digest, "state", t.state, "created",
				    (json_int_t)t.created, "creator", t.creator, "approvals", approvals,
				    "owners", owners, "runs", runs));
	}
	store_task_clear(&t);
}

/* --- approvals --- */

typedef struct owner_find {
	const char *org;
	bool found;
} owner_find;

static void owner_match(void *arg, const char *name)
{
	owner_find *f = arg;
	f->found |= strcmp(f->org, name) == 0;
}

void h_task_approve(ctx *c)
{
	const char *org = body_string(c, "org");
	const char *sig = body_string(c, "sig");
	store_task t;
	store_org o;
	uint8_t digest[CF_SHA256_LEN], pub[CF_ED25519_PUB_LEN + 2], raw[CF_ED25519_SIG_LEN + 2];
	size_t got = 0;
	char state[STORE_STATE_LEN];
	json_t *approvals = NULL;
	if (!path_task(c, &t, NULL))
		return;
	if (!valid_name(org) || !member_of(c, org, ANALYST_UP)) {
		api_fail(c, 403, "analysts and org-admins of an organisation store its approvals");
		goto out;
	}
	owner_find f = { org, false };
	cf_err rc = store_task_owners(c->d->db, t.id, owner_match, &f);
	if (rc != CF_OK) {
		api_store_fail(c, rc, "task", "");
		goto out;
	}
	if (!f.found) {
		api_fail(c, 400, "%s owns no input of this task", org);
		goto out;
	}
	if (!sig || strlen(sig) != CF_KMS_SIG_B64_LEN ||
	    cf_b64_decode(sig, CF_KMS_SIG_B64_LEN, true, raw, sizeof(raw), &got) != CF_OK ||
	    got != CF_ED25519_SIG_LEN) {
		api_fail(c, 400, "sig: the padded base64 of an Ed25519 signature");
		goto out;
	}
	/* Only to catch mistakes early: the KMS checks again, cofferd is not trusted to. */
	if ((rc = store_org_get(c->d->db, org, &o)) != CF_OK) {
		api_store_fail(c, rc, "organisation", "");
		goto out;
	}
	if (o.sign_pub[0]) {
		json_t *a = json_pack("{s:s,s:s}", "org", org, "sig", sig);
		size_t hexlen = 0;
		rc = a ? CF_OK : CF_ERR_NOMEM;
		if (rc == CF_OK)
			rc = cf_b64_decode(o.sign_pub, strlen(o.sign_pub), true, pub, sizeof(pub), &got);
		if (rc == CF_OK)
			rc = cf_hex_decode(t.digest, 64, digest, sizeof(digest), &hexlen);
		if (rc == CF_OK)
			rc = cf_task_approval_verify(pub, digest, a);
		json_decref(a);
		if (rc != CF_OK) {
			snprintf(c->reason, sizeof(c->reason), "approval signature");
			api_fail(c, 400, "the signature is not %s's over this task's digest", org);
			goto out;
		}
	}
	if ((rc = store_task_approve(c->d->db, t.id, org, sig, c->now, state)) != CF_OK) {
		api_store_fail(c, rc, "task", "the task is running or cancelled");
		goto out;
	}
	if (!(approvals = json_array()) ||
	    (rc = store_task_approvals(c->d->db, t.id, approval_item, approvals)) != CF_OK) {
		json_decref(approvals);
		api_fail(c, 500, "cannot list the approvals");
		goto out;
	}
	api_ok(c, json_pack("{s:o,s:s}", "approvals", approvals, "state", state));
out:
	store_task_clear(&t);
}

/* --- runs --- */

void h_task_run(ctx *c)
{
	store_task t;
	json_t *task = NULL;
	store_run_input inputs[MAX_INPUTS];
	size_t ninputs = 0;
	char token[COFFERD_TOKEN_LEN + 1] = "";
	uint8_t hash[CF_SHA256_LEN];
	store_run r = { .started = c->now, .exit_status = -1 };
	run_launch l = { .cores = DEFAULT_CORES, .memory = DEFAULT_MEMORY,
			 .enclave_size = DEFAULT_ENCLAVE_SIZE };
	json_t *inst = json_object_get(c->body, "instance");
	if (!path_task(c, &t, &task))
		return;
	if (!analyst_up(c)) {
		api_fail(c, 403, "analysts, org-admins and admins run tasks");
		goto out;
	}
	if (strcmp(t.state, "pending") == 0 || strcmp(t.state, "running") == 0 ||
	    strcmp(t.state, "cancelled") == 0) {
		api_fail(c, 409, "the task is %s%s", t.state,
			 strcmp(t.state, "pending") == 0 ? ": approvals are missing" : "");
		goto out;
	}
	if (inst && !json_is_null(inst)) {
		store_instance in;
		const char *id = json_string_value(inst);
		cf_err rc = valid_id(id, "inst") ? store_instance_get(c->d->db, id, &in) : CF_ERR_NOT_FOUND;
		if (rc != CF_OK) {
			api_store_fail(c, rc, "instance", "");
			goto out;
		}
		if (strcmp(in.state, "running") != 0 || in.run_id[0]) {
			api_fail(c, 409, "the instance is %s", in.run_id[0] ? "busy" : in.state);
			goto out;
		}
		snprintf(r.instance_id, sizeof(r.instance_id), "%s", in.id);
		l.cores = in.cores;
		l.memory = in.memory;
		l.enclave_size = in.enclave_size;
	}
	if (!runner_soft_available(c->d)) {
		api_fail(c, 409, "this host has no soft TEE (memfd_secret and coffer-launch)");
		goto out;
	}
	/* Each input's ciphertext: the newest ready dataset registered as its KMS dataset. */
	const char *table;
	json_t *in;
	json_object_foreach(json_object_get(task, "inputs"), table, in) {
		const char *kms = json_string_value(json_object_get(in, "dataset"));
		store_dataset ds;
		cf_err rc = store_dataset_for_kms(c->d->db, kms, &ds);
		if (rc == CF_ERR_NOT_FOUND) {
			api_fail(c, 409, "input %.64s: no ready dataset is %.136s", table, kms);
			goto out;
		}
		if (rc != CF_OK) {
			api_store_fail(c, rc, "dataset", "");
			goto out;
		}
		snprintf(inputs[ninputs].table, sizeof(inputs[0].table), "%s", table);
		snprintf(inputs[ninputs].dataset_id, sizeof(inputs[0].dataset_id), "%s", ds.id);
		ninputs++;
	}
	store_token tok = { .created = c->now, .expires = c->now + COFFERD_RUN_TOKEN_TTL };
	cf_err rc = make_id("run", r.id);
	if (rc == CF_OK)
		rc = make_id("tok", tok.id);
	if (rc == CF_OK)
		rc = token_make(token, hash);
	if (rc != CF_OK) {
		api_fail(c, 500, "cannot make the run (%s)", cf_strerror(rc));
		goto out;
	}
	snprintf(tok.kind, sizeof(tok.kind), "run");
	snprintf(tok.run_id, sizeof(tok.run_id), "%s", r.id);
	snprintf(r.task_id, sizeof(r.task_id), "%s", t.id);
	api_object(c, "task/%s run/%s", t.id, r.id);
	if ((rc = store_run_start(c->d->db, &r, inputs, ninputs, hash, &tok)) != CF_OK) {
		api_store_fail(c, rc, "task", "the task or its instance changed meanwhile");
		goto out;
	}
	l.run_id = r.id;
	l.token = token;
	if ((rc = runner_start(c->d->runs, &l)) != CF_OK) {
		if (store_run_end(c->d->db, r.id, "failed", "the enclave could not be started",
				  c->now) != CF_OK)
			log_warn("cannot mark %s failed", r.id);
		api_fail(c, 500, "the enclave could not be started (%s)", cf_strerror(rc));
		goto out;
	}
	api_ok(c, json_pack("{s:s,s:s}", "run", r.id, "state", "running"));
out:
	cf_wipe(token, sizeof(token));
	json_decref(task);
	store_task_clear(&t);
}

void h_task_cancel(ctx *c)
{
	store_task t;
	char run_id[STORE_ID_LEN];
	char msg[STORE_MESSAGE_LEN];
	if (!path_task(c, &t, NULL))
		return;
	store_task_clear(&t);
	if (!analyst_up(c)) {
		api_fail(c, 403, "analysts, org-admins and admins cancel tasks");
		return;
	}
	cf_err rc = store_task_running_run(c->d->db, t.id, run_id);
	if (rc == CF_OK && run_id[0]) {
		snprintf(msg, sizeof(msg), "cancelled by %s", c->who.actor);
		rc = store_run_end(c->d->db, run_id, "cancelled", msg, c->now);
		if (rc == CF_OK)
			runner_cancel(c->d->runs, run_id);
	} else if (rc == CF_OK) {
		rc = store_task_cancel(c->d->db, t.id);
	}
	if (rc != CF_OK) {
		api_store_fail(c, rc, "task", "the task has finished");
		return;
	}
	api_ok(c, json_pack("{s:s}", "state", "cancelled"));
}

static bool is_recipient(const ctx *c, const json_t *task, int index)
{
	if (is_admin(c))
		return true;
	if (c->who.kind != CALLER_USER || !(R(c->who.role) & (R(ROLE_ANALYST) | R(ROLE_ORG_ADMIN))))
		return false;
	const json_t *rcpts = json_object_get(json_array_get(json_object_get(task, "outputs"),
							     (size_t)index), "recipients");
	size_t i;
	const json_t *r;
	json_array_foreach(rcpts, i, r) {
		const char *org = json_string_value(json_object_get(r, "org"));
		if (org && strcmp(org, c->who.user.org) == 0)
			return true;
	}
	return false;
}

void h_task_output(ctx *c)
{
	store_task t;
	json_t *task = NULL;
	store_output o;
	char blob[STORE_ID_LEN + 32];
	int fd = -1;
	uint64_t size = 0;
	if (!path_task(c, &t, &task))
		return;
	int index = output_index(task, c->param[1]);
	if (index < 0) {
		api_fail(c, 404, "the task has no such output");
		goto out;
	}
	if (!is_recipient(c, task, index)) {
		api_fail(c, 403, "only the output's recipients read it");
		goto out;
	}
	cf_err rc = store_output_latest(c->d->db, t.id, c->param[1], &o);
	if (rc != CF_OK) {
		if (rc == CF_ERR_NOT_FOUND)
			api_fail(c, 404, "no run of this task has produced the output");
		else
			api_store_fail(c, rc, "output", "");
		goto out;
	}
	snprintf(blob, sizeof(blob), "%s.out.%u", o.run_id, o.index);
	if ((rc = blob_open(c->d, blob, &fd, &size)) != CF_OK) {
		api_fail(c, 500, "the output cannot be read (%s)", cf_strerror(rc));
		goto out;
	}
	api_stream(c, fd, size, "application/octet-stream");
out:
	json_decref(task);
	store_task_clear(&t);
}

/* The last LOG_TAIL bytes of the run's captured output, as valid UTF-8 text. */
static json_t *log_tail(cofferd *d, const char *run_id)
{
	char path[COFFERD_PATH_MAX + 64];
	char *buf = malloc(LOG_TAIL + 1), *text = malloc(LOG_TAIL + 1);
	json_t *out = NULL;
	snprintf(path, sizeof(path), "%s/%s.log", d->runs_dir, run_id);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 && buf && text) {
		off_t end = lseek(fd, 0, SEEK_END);
		off_t start = end > (off_t)LOG_TAIL ? end - (off_t)LOG_TAIL : 0;
		ssize_t n = end >= 0 ? pread(fd, buf, LOG_TAIL, start) : -1;
		if (n >= 0) {
			for (ssize_t i = 0; i < n; i++)
				buf[i] = buf[i] ? buf[i] : '?';
			buf[n] = 0;
			out = json_string(clean_utf8(buf, text, LOG_TAIL));
		}
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	free(text);
	return out ? out : json_string("");
}

static void output_item(void *arg, const store_output *o)
{
	/* The enclave's attestation, as it came: cofferd carries it and checks nothing. */
	json_t *att = NULL;
	if (o->attestation[0] &&
	    cf_json_parse(o->attestation, strlen(o->attestation), NULL, &att) != CF_OK)
		att = NULL;
	json_array_append_new(arg, json_pack("{s:s,s:s,s:I,s:I,s:s?,s:o*}", "name", o->name,
					     "state", o->state, "received", (json_int_t)o->received,
					     "size", (json_int_t)o->size, "sha256",
					     o->sha256[0] ? o->sha256 : NULL, "attestation", att));
}

/* Looks up the run of c->param[0]; a run token only its own. Answers itself. */
static bool path_run(ctx *c, store_run *r)
{
	const char *id = c->param[0];
	if (!valid_id(id, "run")) {
		api_fail(c, 404, "no such run");
		return false;
	}
	api_object(c, "run/%s", id);
	if (c->who.kind == CALLER_RUN && strcmp(c->who.token.run_id, id) != 0) {
		api_fail(c, 403, "a run's token serves that run only");
		return false;
	}
	cf_err rc = store_run_get(c->d->db, id, r);
	if (rc != CF_OK) {
		api_store_fail(c, rc, "run", "");
		return false;
	}
	return true;
}

void h_run_get(ctx *c)
{
	store_run r;
	json_t *outputs = json_array();
	if (!outputs) {
		api_fail(c, 500, "out of memory");
		return;
	}
	if (!path_run(c, &r)) {
		json_decref(outputs);
		return;
	}
	cf_err rc = store_output_list(c->d->db, r.id, output_item, outputs);
	if (rc != CF_OK) {
		json_decref(outputs);
		api_store_fail(c, rc, "run", "");
		return;
	}
	json_t *body = run_summary(&r);
	if (body && (json_object_set_new(body, "task", json_string(r.task_id)) ||
		     json_object_set_new(body, "instance",
					 r.instance_id[0] ? json_string(r.instance_id) : json_null()) ||
		     json_object_set_new(body, "outputs", outputs) ||
		     json_object_set_new(body, "log", log_tail(c->d, r.id)))) {
		json_decref(body);
		body = NULL;
	} else if (!body) {
		json_decref(outputs);
	}
	api_ok(c, body);
}

/* --- the enclave's side, with the run token --- */

static void spec_input(void *arg, const store_run_input *in)
{
	json_array_append_new(arg, json_pack("{s:s,s:s}", "table", in->table, "dataset_id",
					     in->dataset_id));
}

/* Completes each input with its dataset's KMS name, URL, size and hash. */
static cf_err spec_datasets(cofferd *d, const char *url, json_t *inputs)
{
	size_t i;
	json_t *in;
	json_array_foreach(inputs, i, in) {
		store_dataset ds;
		char blob_url[700];
		cf_err rc = store_dataset_get(d->db, json_string_value(json_object_get(in, "dataset_id")),
					      &ds);
		if (rc != CF_OK)
			return rc;
		snprintf(blob_url, sizeof(blob_url), "%s/v1/datasets/%s/blob", url, ds.id);
		if (json_object_set_new(in, "dataset", json_string(ds.kms_dataset)) ||
		    json_object_set_new(in, "blob_url", json_string(blob_url)) ||
		    json_object_set_new(in, "sha256", json_string(ds.sha256)) ||
		    json_object_set_new(in, "size", json_integer((json_int_t)ds.size)))
			return CF_ERR_NOMEM;
	}
	return CF_OK;
}

void h_run_spec(ctx *c)
{
	store_run r;
	store_task t;
	json_t *task = NULL, *approvals = json_array(), *inputs = json_array();
	char url[512];
	memset(&t, 0, sizeof(t));
	if (!approvals || !inputs) {
		api_fail(c, 500, "out of memory");
		goto out;
	}
	if (!path_run(c, &r))
		goto out;
	cf_err rc = store_task_get(c->d->db, r.task_id, &t);
	if (rc == CF_OK && cf_json_parse(t.json, strlen(t.json), NULL, &task) != CF_OK)
		rc = CF_ERR_PARSE;
	if (rc == CF_OK)
		rc = store_task_approvals(c->d->db, t.id, approval_item, approvals);
	pthread_mutex_lock(&c->d->url_lock);
	snprintf(url, sizeof(url), "%s", c->d->url);
	pthread_mutex_unlock(&c->d->url_lock);
	if (rc == CF_OK)
		rc = store_run_inputs(c->d->db, r.id, spec_input, inputs);
	if (rc == CF_OK)
		rc = spec_datasets(c->d, url, inputs);
	if (rc != CF_OK) {
		api_fail(c, 500, "cannot assemble the run's spec (%s)", cf_strerror(rc));
		goto out;
	}
	api_ok(c, json_pack("{s:s,s:o,s:s,s:o,s:o}", "run", r.id, "task", task, "digest", t.digest,
			    "approvals", approvals, "inputs", inputs));
	task = approvals = inputs = NULL;
out:
	json_decref(task);
	json_decref(approvals);
	json_decref(inputs);
	store_task_clear(&t);
}

/* The run of the path, running, and the index of output c->param[1] in its task. */
static bool path_output(ctx *c, store_run *r, int *index)
{
	store_task t;
	json_t *task = NULL;
	if (!path_run(c, r))
		return false;
	if (strcmp(r->state, "running") != 0) {
		api_fail(c, 409, "the run is %s", r->state);
		return false;
	}
	cf_err rc = store_task_get(c->d->db, r->task_id, &t);
	if (rc == CF_OK) {
		if (cf_json_parse(t.json, strlen(t.json), NULL, &task) != CF_OK)
			rc = CF_ERR_PARSE;
		store_task_clear(&t);
	}
	*index = rc == CF_OK ? output_index(task, c->param[1]) : -1;
	json_decref(task);
	if (rc != CF_OK) {
		api_fail(c, 500, "cannot read the run's task (%s)", cf_strerror(rc));
		return false;
	}
	if (*index < 0) {
		api_fail(c, 404, "the task has no such output");
		return false;
	}
	api_object(c, "run/%s output/%.128s", r->id, c->param[1]);
	return true;
}

void h_run_output_put(ctx *c)
{
	store_run r;
	store_output o;
	int index;
	uint64_t offset = 0, received = 0;
	char blob[STORE_ID_LEN + 32];
	if (!path_output(c, &r, &index))
		return;
	cf_err rc = store_output_get(c->d->db, r.id, c->param[1], &o);
	if (rc == CF_OK && strcmp(o.state, "ready") == 0) {
		api_fail(c, 409, "the output is committed");
		return;
	}
	if (!query_offset(c->req->query, &offset)) {
		api_fail(c, 400, "?offset=N: the bytes received so far");
		return;
	}
	if (c->req->body_len == 0) {
		api_fail(c, 400, "an empty part");
		return;
	}
	snprintf(blob, sizeof(blob), "%s.out.%d", r.id, index);
	rc = blob_append(c->d, blob, offset, c->req->body, c->req->body_len, c->d->max_dataset,
			 &received);
	if (rc == CF_ERR_ARG) {
		api_fail(c, 409, "parts arrive in order: this offset is not the bytes received so far");
		return;
	}
	if (rc == CF_ERR_TOO_BIG) {
		api_fail(c, 413, "outputs are at most %llu bytes", (unsigned long long)c->d->max_dataset);
		return;
	}
	if (rc == CF_ERR_LIMIT) {
		api_fail(c, 409, "another part of this output is being written");
		return;
	}
	if (rc != CF_OK) {
		api_fail(c, 500, "writing the part failed");
		return;
	}
	memset(&o, 0, sizeof(o));
	snprintf(o.run_id, sizeof(o.run_id), "%s", r.id);
	snprintf(o.name, sizeof(o.name), "%s", c->param[1]);
	snprintf(o.state, sizeof(o.state), "uploading");
	o.index = (unsigned)index;
	o.received = received;
	if ((rc = store_output_put(c->d->db, &o)) != CF_OK) {
		api_store_fail(c, rc, "output", "");
		return;
	}
	api_ok(c, json_pack("{s:I}", "received", (json_int_t)received));
}

void h_run_output_commit(ctx *c)
{
	store_run r;
	store_output o;
	int index;
	uint64_t size = 0;
	const char *sha = body_string(c, "sha256");
	char blob[STORE_ID_LEN + 32];
	if (!path_output(c, &r, &index))
		return;
	if (!body_uint(c, "size", &size) || size == 0 || !valid_hex256(sha)) {
		api_fail(c, 400, "size (bytes, at least 1) and sha256 (64 lower-case hex digits)");
		return;
	}
	/* The enclave's attestation: any JSON object, kept as compact JSON, never checked here. */
	const json_t *att = json_object_get(c->body, "attestation");
	char att_text[STORE_ATTESTATION_LEN] = "";
	if (att && !json_is_null(att)) {
		char *t = json_is_object(att) ? json_dumps(att, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		size_t n = t ? strlen(t) : 0;
		if (t && n < sizeof(att_text))
			memcpy(att_text, t, n + 1);
		free(t);
		if (!json_is_object(att)) {
			api_fail(c, 400, "attestation: a JSON object");
			return;
		}
		if (!att_text[0]) {
			api_fail(c, 413, "the attestation is over %d bytes of JSON",
				 STORE_ATTESTATION_LEN - 1);
			return;
		}
	}
	cf_err rc = store_output_get(c->d->db, r.id, c->param[1], &o);
	if (rc == CF_OK && strcmp(o.state, "ready") == 0) {
		api_fail(c, 409, "the output is committed");
		return;
	}
	snprintf(blob, sizeof(blob), "%s.out.%d", r.id, index);
	rc = blob_commit(c->d, blob, size, sha);
	memset(&o, 0, sizeof(o));
	snprintf(o.run_id, sizeof(o.run_id), "%s", r.id);
	snprintf(o.name, sizeof(o.name), "%s", c->param[1]);
	o.index = (unsigned)index;
	if (rc == CF_ERR_AUTH) {
		snprintf(o.state, sizeof(o.state), "uploading");
		if (store_output_put(c->d->db, &o) != CF_OK)
			log_warn("cannot reset the output of %s", r.id);
		snprintf(c->reason, sizeof(c->reason), "size or sha256 mismatch");
		api_fail(c, 409, "the bytes received are not that size and SHA-256: the upload is "
				 "dropped, send it again from offset 0");
		return;
	}
	if (rc == CF_ERR_LIMIT) {
		api_fail(c, 409, "a part of this output is being written");
		return;
	}
	snprintf(o.state, sizeof(o.state), "ready");
	o.received = o.size = size;
	snprintf(o.sha256, sizeof(o.sha256), "%s", sha);
	memcpy(o.attestation, att_text, sizeof(o.attestation));
	if (rc != CF_OK || (rc = store_output_put(c->d->db, &o)) != CF_OK) {
		api_fail(c, 500, "committing the output failed (%s)", cf_strerror(rc));
		return;
	}
	api_ok(c, json_pack("{s:s,s:I,s:s}", "name", o.name, "size", (json_int_t)size, "sha256", sha));
}

typedef struct ready_count {
	size_t ready;
} ready_count;

static void count_ready(void *arg, const store_output *o)
{
	ready_count *n = arg;
	n->ready += strcmp(o->state, "ready") == 0;
}

void h_run_finish(ctx *c)
{
	store_run r;
	store_task t;
	json_t *task = NULL;
	const char *status = body_string(c, "status");
	const char *message = body_string(c, "message");
	char msg[STORE_MESSAGE_LEN];
	ready_count n = { 0 };
	memset(&t, 0, sizeof(t));
	if (!path_run(c, &r))
		return;
	if (!status || (strcmp(status, "succeeded") != 0 && strcmp(status, "failed") != 0)) {
		api_fail(c, 400, "status: \"succeeded\" or \"failed\"");
		return;
	}
	if (json_object_get(c->body, "message") && !message) {
		api_fail(c, 400, "message: a string");
		return;
	}
	cf_err rc = store_task_get(c->d->db, r.task_id, &t);
	if (rc == CF_OK && cf_json_parse(t.json, strlen(t.json), NULL, &task) != CF_OK)
		rc = CF_ERR_PARSE;
	if (rc == CF_OK)
		rc = store_output_list(c->d->db, r.id, count_ready, &n);
	if (rc != CF_OK) {
		api_fail(c, 500, "cannot read the run (%s)", cf_strerror(rc));
		goto out;
	}
	if (strcmp(status, "succeeded") == 0 &&
	    n.ready != json_array_size(json_object_get(task, "outputs"))) {
		api_fail(c, 409, "a run succeeds with every output committed (%zu of %zu)", n.ready,
			 json_array_size(json_object_get(task, "outputs")));
		goto out;
	}
	clean_utf8(message ? message : "", msg, 200);
	if ((rc = store_run_end(c->d->db, r.id, status, msg, c->now)) != CF_OK) {
		api_store_fail(c, rc, "run", "the run has ended");
		goto out;
	}
	api_ok(c, json_pack("{s:s,s:s}", "run", r.id, "state", status));
out:
	json_decref(task);
	store_task_clear(&t);
}
