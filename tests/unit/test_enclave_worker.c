/*
 * enclave/worker, job and params: the library part of coffer-enclave end
 * to end. CSV text is age-encrypted to a dataset key (as an owner does),
 * its file key unwrapped from the header (as the KMS does), then the
 * worker decrypts with the file key into the loader, runs each output's
 * query under the fence and the policy, encrypts to the recipients of a
 * KMS-like statement, and the recipients' identities open the expected
 * CSV. Then every way it must fail: a swapped or truncated file, bad
 * CSV, bad SQL, the fence, the policy (and that a refused output releases
 * no other), missing recipients, the row cap, the time budget, an upload
 * failure; no failure message carries a value from the data. Also the
 * task parser's strictness and the run parameters.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "coffer/age.h"
#include "coffer/buf.h"
#include "coffer/crypto.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "job.h"
#include "params.h"
#include "worker.h"

static const char people_csv[] =
	"name,dept,salary,note\r\n"
	"a1,A,10,SECRET-a1\r\na2,A,20,SECRET-a2\r\na3,A,30,SECRET-a3\r\na4,A,40,SECRET-a4\r\n"
	"a5,A,50,SECRET-a5\r\nb1,B,100,\"SECRET, b1\"\r\nb2,B,200,SECRET-b2\r\n"
	"b3,B,300,SECRET-b3\r\nc1,C,1000,SECRET-c1\r\n";
static const char visits_csv[] =
	"name,amount\n"
	"a1,1\na1,1\na1,1\na1,1\na1,1\na1,1\na1,1\na1,1\na1,1\na1,1\n"
	"b1,5\nb2,5\nb3,5\nc1,7\nc1,7\nc1,7\nc1,7\nc1,7\n";

/* The dataset key (held by the KMS) and the recipients' identities (orgs a and b). */
static cf_age_identity kms_id, org_a, org_b;
static char rcpt_a[CF_AGE_RECIPIENT_STRLEN + 1], rcpt_b[CF_AGE_RECIPIENT_STRLEN + 1];

static void new_identity(cf_age_identity *id, char *rcpt)
{
	memset(id, 0, sizeof(*id));
	id->kind = CF_AGE_X25519;
	assert_int_equal(cf_age_keygen(&id->key), CF_OK);
	if (rcpt)
		assert_int_equal(cf_age_recipient_format(id->key.pub, rcpt), CF_OK);
}

static int group_setup(void **state)
{
	(void)state;
	new_identity(&kms_id, NULL);
	new_identity(&org_a, rcpt_a);
	new_identity(&org_b, rcpt_b);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cf_age_key_wipe(&kms_id.key);
	cf_age_key_wipe(&org_a.key);
	cf_age_key_wipe(&org_b.key);
	return 0;
}

/* An owner's encrypted dataset and what the KMS knows of it. */
typedef struct dataset {
	cf_buf ct;
	uint8_t file_key[CF_AGE_FILE_KEY_LEN];
	uint8_t header_sha256[CF_SHA256_LEN];
} dataset;

static void make_dataset(const char *csv, dataset *d)
{
	cf_age_recipient r = { .kind = CF_AGE_X25519 };
	cf_age_encrypt_opts opts = { .armor = false };
	cf_age_header h;
	size_t consumed = 0;
	memcpy(r.pub, kms_id.key.pub, 32);
	cf_buf_init(&d->ct, 1u << 24, false);
	cf_mem_reader m = { .data = (const uint8_t *)csv, .len = strlen(csv) };
	assert_int_equal(cf_age_encrypt(&r, 1, &opts, cf_mem_reader_of(&m), cf_buf_writer(&d->ct)),
			 CF_OK);
	assert_int_equal(cf_age_header_parse(d->ct.data, d->ct.len, &h, &consumed), CF_OK);
	cf_age_header_free(&h);
	assert_int_equal(cf_hash(CF_SHA256, d->ct.data, consumed, d->header_sha256), CF_OK);
	assert_int_equal(cf_age_unwrap_header(&kms_id, 1, d->ct.data, consumed, d->file_key), CF_OK);
}

static void dataset_free(dataset *d)
{
	cf_buf_free(&d->ct);
	cf_wipe(d->file_key, sizeof(d->file_key));
}

static json_t *parse(const char *text)
{
	json_t *v = NULL;
	if (cf_json_parse(text, strlen(text), NULL, &v) != CF_OK)
		fail_msg("not JSON: %s", text);
	return v;
}

/* A task with the people and visits inputs; outputs and policy given as JSON text. */
static json_t *make_task(const char *query, const char *outputs, const char *policy)
{
	char text[8192];
	snprintf(text, sizeof(text),
		 "{\"version\": 1, \"name\": \"test\","
		 " \"inputs\": {\"people\": {\"dataset\": \"a/people\"},"
		 "              \"visits\": {\"dataset\": \"b/visits\"}},"
		 " \"function\": {\"kind\": \"sql\", \"query\": \"%s\"},"
		 " \"outputs\": %s%s%s,"
		 " \"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		 query, outputs, policy ? ", \"policy\": " : "", policy ? policy : "");
	return parse(text);
}

static char *outputs_ab(void)
{
	static char text[1024];
	snprintf(text, sizeof(text),
		 "[{\"name\": \"result\", \"recipients\": [{\"org\": \"a\", \"recipient\": \"%s\"},"
		 " {\"org\": \"b\", \"recipient\": \"%s\"}]},"
		 " {\"name\": \"visits\", \"query\": \"SELECT p.dept, sum(v.amount) AS total FROM "
		 "people p JOIN visits v ON v.name = p.name GROUP BY p.dept ORDER BY p.dept\","
		 " \"recipients\": [{\"org\": \"b\", \"recipient\": \"%s\"}]}]",
		 rcpt_a, rcpt_b, rcpt_b);
	return text;
}

/* What cf_kms_release would give for task: the keys of people and visits, the statement. */
static void make_release(const json_t *task, const dataset *people, const dataset *visits,
			 cf_kms_release_result *rel)
{
	const dataset *ds[2] = { people, visits };
	static const char *const tables[2] = { "people", "visits" };
	static const char *const names[2] = { "a/people", "b/visits" };
	memset(rel, 0, sizeof(*rel));
	rel->inputs = calloc(2, sizeof(*rel->inputs));
	assert_non_null(rel->inputs);
	for (size_t i = 0; i < 2; i++) {
		rel->inputs[i].table = strdup(tables[i]);
		rel->inputs[i].dataset = strdup(names[i]);
		memcpy(rel->inputs[i].file_key, ds[i]->file_key, CF_AGE_FILE_KEY_LEN);
		memcpy(rel->inputs[i].header_sha256, ds[i]->header_sha256, CF_SHA256_LEN);
		rel->ninputs++;
	}
	assert_int_equal(cf_task_digest(task, rel->task_digest), CF_OK);
	rel->recipients = json_pack("{s:s, s:O, s:i}", "task_digest", "00", "outputs",
				    json_object_get(task, "outputs"), "issued", 1);
	assert_non_null(rel->recipients);
}

/* The transport in memory. */
typedef struct mem_io {
	const cf_buf *people;
	const cf_buf *visits;
	size_t truncate;           /* serve the inputs short by this many bytes */
	cf_mem_reader reader;
	size_t inputs_opened;
	size_t inputs_closed;
	char names[4][64];
	cf_buf outs[4];
	bool committed[4];
	size_t nouts;
	size_t aborted;
	bool fail_commit;
} mem_io;

static cf_err io_input_open(void *arg, const cf_job_input *in, cf_reader *out)
{
	mem_io *m = arg;
	const cf_buf *b = strcmp(in->table, "people") == 0 ? m->people : m->visits;
	m->inputs_opened++;
	m->reader = (cf_mem_reader){ .data = b->data, .len = b->len - m->truncate, .max_read = 1000 };
	*out = cf_mem_reader_of(&m->reader);
	return CF_OK;
}

static void io_input_close(void *arg, const cf_job_input *in)
{
	mem_io *m = arg;
	(void)in;
	m->inputs_closed++;
}

static cf_err io_output_open(void *arg, const char *name, cf_writer *out)
{
	mem_io *m = arg;
	assert_true(m->nouts < 4);
	snprintf(m->names[m->nouts], sizeof(m->names[0]), "%s", name);
	cf_buf_init(&m->outs[m->nouts], 1u << 24, false);
	*out = cf_buf_writer(&m->outs[m->nouts]);
	m->nouts++;
	return CF_OK;
}

static cf_err io_output_commit(void *arg, const char *name)
{
	mem_io *m = arg;
	assert_string_equal(m->names[m->nouts - 1], name);
	if (m->fail_commit)
		return CF_ERR_IO;
	m->committed[m->nouts - 1] = true;
	return CF_OK;
}

static void io_output_abort(void *arg, const char *name)
{
	mem_io *m = arg;
	(void)name;
	m->aborted++;
}

static cf_worker_io worker_io(mem_io *m)
{
	return (cf_worker_io){ .arg = m, .input_open = io_input_open, .input_close = io_input_close,
			       .output_open = io_output_open, .output_commit = io_output_commit,
			       .output_abort = io_output_abort };
}

static void mem_io_free(mem_io *m)
{
	for (size_t i = 0; i < m->nouts; i++)
		cf_buf_free(&m->outs[i]);
}

/* Decrypts output i of m with id; returns the plaintext (NUL-terminated). */
static char *open_output(const mem_io *m, size_t i, const cf_age_identity *id, cf_err *rc)
{
	cf_buf pt;
	cf_buf_init(&pt, 1u << 24, true);
	cf_mem_reader r = { .data = m->outs[i].data, .len = m->outs[i].len };
	*rc = cf_age_decrypt(id, 1, cf_mem_reader_of(&r), cf_buf_writer(&pt));
	if (*rc != CF_OK) {
		cf_buf_free(&pt);
		return NULL;
	}
	assert_int_equal(cf_buf_terminate(&pt), CF_OK);
	size_t len;
	return (char *)cf_buf_steal(&pt, &len);
}

/* Runs the task against the datasets; why gets the worker's message. */
static cf_err run_task(json_t *task, const dataset *people, const dataset *visits,
		       const dataset *key_people, mem_io *m, cf_worker_stats *stats, char *why,
		       size_t whylen)
{
	cf_job job;
	cf_kms_release_result rel;
	char jwhy[256];
	assert_int_equal(cf_job_parse(task, &job, jwhy, sizeof(jwhy)), CF_OK);
	make_release(task, key_people ? key_people : people, visits, &rel);
	m->people = &people->ct;
	m->visits = &visits->ct;
	cf_worker_io io = worker_io(m);
	cf_err rc = cf_worker_run(&job, &rel, &io, NULL, stats, why, whylen);
	cf_kms_release_result_free(&rel);
	cf_job_free(&job);
	json_decref(task);
	return rc;
}

static void test_end_to_end(void **state)
{
	(void)state;
	dataset people, visits;
	mem_io m = { 0 };
	cf_worker_stats stats;
	char why[512];
	cf_err rc;
	make_dataset(people_csv, &people);
	make_dataset(visits_csv, &visits);
	json_t *task = make_task("SELECT dept, count(*) AS n, avg(salary) AS pay FROM people "
				 "GROUP BY dept ORDER BY dept", outputs_ab(),
				 "{\"min_group_size\": 3, \"allow_rows\": false}");
	rc = run_task(task, &people, &visits, NULL, &m, &stats, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("%s: %s", cf_errname(rc), why);
	assert_int_equal(stats.outputs, 2);
	assert_int_equal(stats.input_rows, 9 + 18);
	assert_int_equal(m.inputs_opened, 2);
	assert_int_equal(m.inputs_closed, 2);
	assert_int_equal(m.nouts, 2);
	assert_string_equal(m.names[0], "result");
	assert_string_equal(m.names[1], "visits");
	assert_true(m.committed[0] && m.committed[1]);

	/* result: C (one person) suppressed, B (exactly three) kept; a and b can read it. */
	char *a = open_output(&m, 0, &org_a, &rc);
	assert_int_equal(rc, CF_OK);
	assert_string_equal(a, "dept,n,pay\r\nA,5,30.0\r\nB,3,200.0\r\n");
	char *b = open_output(&m, 0, &org_b, &rc);
	assert_int_equal(rc, CF_OK);
	assert_string_equal(a, b);
	free(a);
	free(b);
	/* visits: only b. A's ten visits are one person's, C's five too. */
	assert_null(open_output(&m, 1, &org_a, &rc));
	assert_int_equal(rc, CF_ERR_AGE_NO_MATCH);
	b = open_output(&m, 1, &org_b, &rc);
	assert_int_equal(rc, CF_OK);
	assert_string_equal(b, "dept,total\r\nB,15\r\n");
	free(b);
	/* Nothing of the data in the clear on the way out. */
	for (size_t i = 0; i < m.nouts; i++)
		assert_null(memmem(m.outs[i].data, m.outs[i].len, "dept", 4));
	mem_io_free(&m);
	dataset_free(&people);
	dataset_free(&visits);
}

/* Runs a failing task; checks the code, the message, and that nothing left. */
static void expect_failure(json_t *task, const dataset *people, const dataset *visits,
			   const dataset *key_people, size_t truncate, cf_err want,
			   const char *msg_part, size_t want_opened)
{
	mem_io m = { .truncate = truncate };
	char why[512] = "";
	cf_err rc = run_task(task, people, visits, key_people, &m, NULL, why, sizeof(why));
	if (rc != want)
		fail_msg("%s (%s), wanted %s", cf_errname(rc), why, cf_errname(want));
	if (msg_part && !strstr(why, msg_part))
		fail_msg("\"%s\" does not say \"%s\"", why, msg_part);
	assert_null(strstr(why, "SECRET"));
	assert_int_equal(m.inputs_opened, want_opened);
	assert_int_equal(m.inputs_opened, m.inputs_closed);
	for (size_t i = 0; i < m.nouts; i++)
		assert_false(m.committed[i]);
	mem_io_free(&m);
}

static void test_bad_inputs(void **state)
{
	(void)state;
	dataset people, visits, ragged;
	make_dataset(people_csv, &people);
	make_dataset(visits_csv, &visits);
	make_dataset("name,dept,salary,note\na1,A,10,SECRET-a1\nSECRET-x,SECRET-y\n", &ragged);
	const char *q = "SELECT count(*) FROM people";
	/* cofferd swaps a file: the header is not the registered one. */
	expect_failure(make_task(q, outputs_ab(), NULL), &visits, &visits, &people, 0, CF_ERR_AUTH,
		       "input people: its header is not the one the KMS registered", 1);
	/* A truncated file: nothing is loaded from it. */
	expect_failure(make_task(q, outputs_ab(), NULL), &people, &visits, NULL, 20,
		       CF_ERR_AGE_PAYLOAD, "input people: the ciphertext does not decrypt", 1);
	/* A malformed file: where, never what. */
	expect_failure(make_task(q, outputs_ab(), NULL), &ragged, &visits, NULL, 0, CF_ERR_PARSE,
		       "input people: line 3 (record 3): 2 fields; the header has 4", 1);
	dataset_free(&ragged);
	dataset_free(&people);
	dataset_free(&visits);
}

static void test_refusals(void **state)
{
	(void)state;
	dataset people, visits;
	make_dataset(people_csv, &people);
	make_dataset(visits_csv, &visits);
	char outputs[1024];
	/* Bad SQL. */
	expect_failure(make_task("SELEKT 1", outputs_ab(), NULL), &people, &visits, NULL, 0,
		       CF_ERR_PARSE, "output result: the query does not compile", 2);
	/* The fence. */
	expect_failure(make_task("SELECT sql FROM sqlite_master", outputs_ab(), NULL), &people,
		       &visits, NULL, 0, CF_ERR_AUTH, "output result: the query may read only", 2);
	expect_failure(make_task("DELETE FROM people", outputs_ab(), NULL), &people, &visits, NULL,
		       0, CF_ERR_AUTH, "output result", 2);
	/* The policy refuses the second output: the first, fine, is not released either. */
	snprintf(outputs, sizeof(outputs),
		 "[{\"name\": \"result\", \"recipients\": [{\"org\": \"a\", \"recipient\": \"%s\"}]},"
		 " {\"name\": \"rows\", \"query\": \"SELECT name, note FROM people\","
		 "  \"recipients\": [{\"org\": \"a\", \"recipient\": \"%s\"}]}]", rcpt_a, rcpt_a);
	expect_failure(make_task("SELECT dept, count(*) FROM people GROUP BY dept", outputs,
				 "{\"min_group_size\": 2, \"allow_rows\": false}"),
		       &people, &visits, NULL, 0, CF_ERR_AUTH, "output rows: the query does not "
		       "aggregate", 2);
	expect_failure(make_task("SELECT name, max(note) FROM people GROUP BY name", outputs_ab(),
				 "{\"allow_rows\": false}"),
		       &people, &visits, NULL, 0, CF_ERR_AUTH, "comes from a single row", 2);
	/* Row cap. */
	expect_failure(make_task("SELECT name FROM people", outputs_ab(),
				 "{\"max_result_rows\": 8}"), &people, &visits, NULL, 0, CF_ERR_LIMIT,
		       "output result: the result has more than 8 rows", 2);
	/* Time budget. */
	expect_failure(make_task("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
				 "SELECT count(*) FROM c", outputs_ab(),
				 "{\"time_budget_seconds\": 1}"), &people, &visits, NULL, 0,
		       CF_ERR_LIMIT, "time budget (1 s)", 2);
	/* A runtime error would quote the row: not here. */
	expect_failure(make_task("SELECT json_extract('{}', note) FROM people", outputs_ab(),
				 NULL), &people, &visits, NULL, 0, CF_ERR_PARSE,
		       "failed while running", 2);
	dataset_free(&people);
	dataset_free(&visits);
}

static void test_recipients_and_uploads(void **state)
{
	(void)state;
	dataset people, visits;
	make_dataset(people_csv, &people);
	make_dataset(visits_csv, &visits);
	/* The statement has no output of that name: refused before any input is read. */
	json_t *task = make_task("SELECT count(*) FROM people", outputs_ab(), NULL);
	cf_job job;
	cf_kms_release_result rel;
	mem_io m = { .people = &people.ct, .visits = &visits.ct };
	char why[512];
	assert_int_equal(cf_job_parse(task, &job, why, sizeof(why)), CF_OK);
	make_release(task, &people, &visits, &rel);
	json_decref(rel.recipients);
	rel.recipients = parse("{\"task_digest\": \"00\", \"issued\": 1, \"outputs\": "
			       "[{\"name\": \"result\", \"recipients\": []}]}");
	cf_worker_io io = worker_io(&m);
	assert_int_equal(cf_worker_run(&job, &rel, &io, NULL, NULL, why, sizeof(why)), CF_ERR_AUTH);
	assert_non_null(strstr(why, "output result has no recipients"));
	assert_int_equal(m.inputs_opened, 0);
	/* The recipients are the statement's, whatever the task says. */
	json_decref(rel.recipients);
	char text[1024];
	snprintf(text, sizeof(text), "{\"task_digest\": \"00\", \"issued\": 1, \"outputs\": ["
		 "{\"name\": \"result\", \"recipients\": [{\"org\": \"b\", \"recipient\": \"%s\"}]},"
		 "{\"name\": \"visits\", \"recipients\": [{\"org\": \"b\", \"recipient\": \"%s\"}]}]}",
		 rcpt_b, rcpt_b);
	rel.recipients = parse(text);
	assert_int_equal(cf_worker_run(&job, &rel, &io, NULL, NULL, why, sizeof(why)), CF_OK);
	cf_err rc;
	assert_null(open_output(&m, 0, &org_a, &rc));
	char *b = open_output(&m, 0, &org_b, &rc);
	assert_non_null(b);
	assert_string_equal(b, "count(*)\r\n9\r\n");
	free(b);
	mem_io_free(&m);
	/* An upload that fails is aborted, and the run fails. */
	memset(&m, 0, sizeof(m));
	m.people = &people.ct;
	m.visits = &visits.ct;
	m.fail_commit = true;
	assert_int_equal(cf_worker_run(&job, &rel, &io, NULL, NULL, why, sizeof(why)), CF_ERR_IO);
	assert_int_equal(m.aborted, 1);
	assert_non_null(strstr(why, "output result: encrypting or uploading failed"));
	mem_io_free(&m);
	/* A release without the key of an input. */
	memset(&m, 0, sizeof(m));
	m.people = &people.ct;
	m.visits = &visits.ct;
	free(rel.inputs[1].dataset);
	rel.inputs[1].dataset = strdup("b/other");
	assert_int_equal(cf_worker_run(&job, &rel, &io, NULL, NULL, why, sizeof(why)), CF_ERR_AUTH);
	assert_string_equal(why, "the KMS released no key for input visits");
	mem_io_free(&m);
	assert_int_equal(cf_worker_run(&job, &rel, NULL, NULL, NULL, why, sizeof(why)), CF_ERR_ARG);
	cf_kms_release_result_free(&rel);
	cf_job_free(&job);
	json_decref(task);
	dataset_free(&people);
	dataset_free(&visits);
}

/* --- the task parser --- */

/* Parses text with every "recipient": "x" replaced by org a's real recipient. */
static json_t *with_recipient(const char *text)
{
	char out[4096];
	size_t o = 0;
	const char *needle = "\"recipient\": \"x\"";
	while (*text) {
		if (strncmp(text, needle, strlen(needle)) == 0) {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "\"recipient\": \"%s\"", rcpt_a);
			text += strlen(needle);
		} else if (o + 1 < sizeof(out)) {
			out[o++] = *text++;
		}
	}
	out[o] = '\0';
	return parse(out);
}

static cf_err job_of(const char *query, const char *outputs, const char *policy, char *why,
		     size_t whylen)
{
	cf_job job;
	json_t *task = make_task(query, outputs, policy);
	cf_err rc = cf_job_parse(task, &job, why, whylen);
	if (rc == CF_OK)
		cf_job_free(&job);
	json_decref(task);
	return rc;
}

static void test_job_parse(void **state)
{
	(void)state;
	cf_job job;
	char why[256];
	json_t *task = make_task("SELECT 1", outputs_ab(), NULL);
	assert_int_equal(cf_job_parse(task, &job, why, sizeof(why)), CF_OK);
	assert_int_equal(job.ninputs, 2);
	assert_int_equal(job.noutputs, 2);
	assert_string_equal(job.outputs[0].query, "SELECT 1");
	assert_non_null(strstr(job.outputs[1].query, "JOIN visits"));
	/* Defaults: no policy asks nothing. */
	assert_int_equal(job.policy.min_group_size, 1);
	assert_true(job.policy.allow_rows);
	assert_int_equal(job.time_budget_seconds, 60);
	assert_int_equal(job.max_result_rows, CF_JOB_DEFAULT_MAX_ROWS);
	cf_job_free(&job);
	json_decref(task);
	task = make_task("SELECT 1", outputs_ab(), "{\"min_group_size\": 5, \"allow_rows\": false, "
			 "\"time_budget_seconds\": 7, \"max_result_rows\": 9}");
	assert_int_equal(cf_job_parse(task, &job, why, sizeof(why)), CF_OK);
	assert_int_equal(job.policy.min_group_size, 5);
	assert_false(job.policy.allow_rows);
	assert_int_equal(job.time_budget_seconds, 7);
	assert_int_equal(job.max_result_rows, 9);
	cf_job_free(&job);
	json_decref(task);

	/* A misspelt member must not mean "no policy". */
	assert_int_equal(job_of("SELECT 1", outputs_ab(), "{\"min_group\": 5}", why, sizeof(why)),
			 CF_ERR_PARSE);
	assert_string_equal(why, "policy has an unknown member \"min_group\"");
	static const char *const bad_policies[] = {
		"{\"min_group_size\": 0}", "{\"min_group_size\": -3}", "{\"min_group_size\": \"5\"}",
		"{\"min_group_size\": 1.5}", "{\"allow_rows\": \"no\"}", "{\"allow_rows\": 0}",
		"{\"time_budget_seconds\": 0}", "{\"time_budget_seconds\": 100000}",
		"{\"max_result_rows\": 0}", "{\"max_result_rows\": 100000000}", "[]", "7",
	};
	for (size_t i = 0; i < sizeof(bad_policies) / sizeof(bad_policies[0]); i++)
		assert_int_equal(job_of("SELECT 1", outputs_ab(), bad_policies[i], why, sizeof(why)),
				 CF_ERR_PARSE);
	char outputs[1024];
	snprintf(outputs, sizeof(outputs), "[{\"name\": \"Result!\", \"recipients\": "
		 "[{\"org\": \"a\", \"recipient\": \"%s\"}]}]", rcpt_a);
	assert_int_equal(job_of("SELECT 1", outputs, NULL, why, sizeof(why)), CF_ERR_PARSE);
	snprintf(outputs, sizeof(outputs), "[{\"name\": \"r\", \"recipients\": [{\"org\": \"a\", "
		 "\"recipient\": \"%s\"}]}, {\"name\": \"r\", \"recipients\": [{\"org\": \"a\", "
		 "\"recipient\": \"%s\"}]}]", rcpt_a, rcpt_a);
	assert_int_equal(job_of("SELECT 1", outputs, NULL, why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "two outputs are named r");
	snprintf(outputs, sizeof(outputs), "[{\"name\": \"r\", \"query\": 3, \"recipients\": "
		 "[{\"org\": \"a\", \"recipient\": \"%s\"}]}]", rcpt_a);
	assert_int_equal(job_of("SELECT 1", outputs, NULL, why, sizeof(why)), CF_ERR_PARSE);
	snprintf(outputs, sizeof(outputs), "[{\"name\": \"r\", \"format\": \"csv\", \"recipients\": "
		 "[{\"org\": \"a\", \"recipient\": \"%s\"}]}]", rcpt_a);
	assert_int_equal(job_of("SELECT 1", outputs, NULL, why, sizeof(why)), CF_ERR_PARSE);
	assert_int_equal(job_of("", outputs_ab(), NULL, why, sizeof(why)), CF_ERR_PARSE);

	static const char *const bad_tasks[] = {
		/* version */
		"{\"inputs\": {\"t\": {\"dataset\": \"a/t\"}}, \"function\": {\"kind\": \"sql\", "
		"\"query\": \"SELECT 1\"}, \"outputs\": [], \"tee\": {\"kinds\": [\"soft\"], "
		"\"measurements\": [\"00\"]}}",
		/* a table name SQL would need to quote */
		"{\"version\": 1, \"inputs\": {\"1t\": {\"dataset\": \"a/t\"}}, \"function\": {\"kind\": "
		"\"sql\", \"query\": \"SELECT 1\"}, \"outputs\": [{\"name\": \"r\", \"recipients\": "
		"[{\"org\": \"a\", \"recipient\": \"x\"}]}], \"tee\": {\"kinds\": [\"soft\"], "
		"\"measurements\": [\"00\"]}}",
		/* two tables that are one to SQL */
		"{\"version\": 1, \"inputs\": {\"T\": {\"dataset\": \"a/t\"}, \"t\": {\"dataset\": "
		"\"a/u\"}}, \"function\": {\"kind\": \"sql\", \"query\": \"SELECT 1\"}, \"outputs\": "
		"[{\"name\": \"r\", \"recipients\": [{\"org\": \"a\", \"recipient\": \"x\"}]}], "
		"\"tee\": {\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}",
		/* an unknown member of function */
		"{\"version\": 1, \"inputs\": {\"t\": {\"dataset\": \"a/t\"}}, \"function\": {\"kind\": "
		"\"sql\", \"query\": \"SELECT 1\", \"params\": []}, \"outputs\": [{\"name\": \"r\", "
		"\"recipients\": [{\"org\": \"a\", \"recipient\": \"x\"}]}], \"tee\": {\"kinds\": "
		"[\"soft\"], \"measurements\": [\"00\"]}}",
		/* no tee: the KMS's members are checked too */
		"{\"version\": 1, \"inputs\": {\"t\": {\"dataset\": \"a/t\"}}, \"function\": {\"kind\": "
		"\"sql\", \"query\": \"SELECT 1\"}, \"outputs\": [{\"name\": \"r\", \"recipients\": "
		"[{\"org\": \"a\", \"recipient\": \"x\"}]}]}",
		"[]",
	};
	static const char *const reasons[] = { "version", "not a usable table name",
					       "the same table to SQL", "unknown member \"params\"",
					       "tee", "not a JSON object" };
	for (size_t i = 0; i < sizeof(bad_tasks) / sizeof(bad_tasks[0]); i++) {
		json_t *t = with_recipient(bad_tasks[i]);
		if (cf_job_parse(t, &job, why, sizeof(why)) != CF_ERR_PARSE)
			fail_msg("task %zu was accepted", i);
		if (!strstr(why, reasons[i]))
			fail_msg("task %zu: \"%s\" does not say \"%s\"", i, why, reasons[i]);
		json_decref(t);
	}
	json_t *t = with_recipient("{\"version\": 1, \"inputs\": {\"t\": {\"dataset\": \"a/t\"}}, "
			  "\"function\": {\"kind\": \"xgboost\"}, \"outputs\": [{\"name\": \"r\", "
			  "\"recipients\": [{\"org\": \"a\", \"recipient\": \"x\"}]}], \"tee\": "
			  "{\"kinds\": [\"soft\"], \"measurements\": [\"00\"]}}");
	cf_err rc = cf_job_parse(t, &job, why, sizeof(why));
	if (rc != CF_ERR_UNSUPPORTED)
		fail_msg("%s: %s", cf_errname(rc), why);
	json_decref(t);
	assert_true(cf_job_valid_output_name("result"));
	assert_true(cf_job_valid_output_name("by-region_2"));
	assert_false(cf_job_valid_output_name("-x"));
	assert_false(cf_job_valid_output_name("a/b"));
	assert_false(cf_job_valid_output_name("a?offset=0"));
	assert_false(cf_job_valid_output_name(""));
}

/* --- the run parameters --- */

static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

static void test_params(void **state)
{
	(void)state;
	cf_run_params p;
	char text[4096], why[256], path[64];
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "cofferd", "https://127.0.0.1:8080",
			      "cofferd_ca", pem, "kms", "https://127.0.0.1:8443", "kms_ca", pem,
			      "platform_cert", pem, "run", "run-0123456789abcdef", "token",
			      "cft_secret");
	char *s = json_dumps(j, 0);
	assert_int_equal(cf_run_params_parse(s, strlen(s), &p, why, sizeof(why)), CF_OK);
	assert_string_equal(p.cofferd, "https://127.0.0.1:8080");
	assert_string_equal(p.run, "run-0123456789abcdef");
	assert_string_equal(p.token, "cft_secret");
	assert_int_equal(p.kms_ca.len, strlen(pem));
	cf_run_params_free(&p);
	free(s);

	/* A PEM member may name a file. */
	snprintf(path, sizeof(path), "/tmp/coffer-test-params-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
	close(fd);
	json_object_set_new(j, "platform_cert", json_string(path));
	s = json_dumps(j, 0);
	assert_int_equal(cf_run_params_parse(s, strlen(s), &p, why, sizeof(why)), CF_OK);
	assert_int_equal(p.platform_cert.len, strlen(pem));
	cf_run_params_free(&p);
	free(s);
	json_object_set_new(j, "platform_cert", json_string("relative/cert.pem"));
	s = json_dumps(j, 0);
	assert_int_equal(cf_run_params_parse(s, strlen(s), &p, why, sizeof(why)), CF_ERR_PARSE);
	free(s);
	json_object_set_new(j, "platform_cert", json_string("/nonexistent/cert.pem"));
	s = json_dumps(j, 0);
	assert_int_equal(cf_run_params_parse(s, strlen(s), &p, why, sizeof(why)), CF_ERR_NOT_FOUND);
	assert_non_null(strstr(why, "platform_cert"));
	free(s);
	/* A file that is not PEM. */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "junk", 4), 4);
	close(fd);
	json_object_set_new(j, "platform_cert", json_string(path));
	s = json_dumps(j, 0);
	assert_int_equal(cf_run_params_parse(s, strlen(s), &p, why, sizeof(why)), CF_ERR_PARSE);
	free(s);
	unlink(path);
	json_object_set_new(j, "platform_cert", json_string(pem));

	json_object_set_new(j, "debug", json_true());
	s = json_dumps(j, 0);
	assert_int_equal(cf_run_params_parse(s, strlen(s), &p, why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "unknown run parameter \"debug\"");
	free(s);
	json_object_del(j, "debug");
	json_object_del(j, "token");
	s = json_dumps(j, 0);
	assert_int_equal(cf_run_params_parse(s, strlen(s), &p, why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "the run parameters need \"token\"");
	free(s);
	snprintf(text, sizeof(text), "not json");
	assert_int_equal(cf_run_params_parse(text, strlen(text), &p, why, sizeof(why)), CF_ERR_PARSE);
	assert_int_equal(cf_run_params_parse(text, CF_PARAMS_MAX + 1, &p, why, sizeof(why)),
			 CF_ERR_TOO_BIG);
	json_decref(j);

	/* cofferd without a KMS: the enclave can still tell cofferd so. */
	j = json_pack("{s:s, s:s, s:s, s:s, s:n}", "cofferd", "https://127.0.0.1:8080",
		      "cofferd_ca", pem, "run", "run-0123456789abcdef", "token", "cft_x", "kms_ca");
	s = json_dumps(j, 0);
	assert_int_equal(cf_run_params_parse(s, strlen(s), &p, why, sizeof(why)), CF_OK);
	assert_null(p.kms);
	assert_int_equal(p.kms_ca.len, 0);
	assert_int_equal(p.platform_cert.len, 0);
	cf_run_params_free(&p);
	free(s);
	/* The trailing line end cofferd writes is fine. */
	snprintf(text, sizeof(text), "{\"cofferd\": \"https://h\", \"cofferd_ca\": \"%s\", "
		 "\"run\": \"run-0123456789abcdef\", \"token\": \"cft_x\"}\n",
		 "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n");
	assert_int_equal(cf_run_params_parse(text, strlen(text), &p, why, sizeof(why)), CF_OK);
	cf_run_params_free(&p);
	json_object_del(j, "cofferd_ca");
	s = json_dumps(j, 0);
	assert_int_equal(cf_run_params_parse(s, strlen(s), &p, why, sizeof(why)), CF_ERR_PARSE);
	assert_string_equal(why, "the run parameters need \"cofferd_ca\"");
	free(s);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_end_to_end),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_recipients_and_uploads),
		cmocka_unit_test(test_job_parse),
		cmocka_unit_test(test_params),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
