/*
 * The KMS core in process: enrollment, keys, datasets and release with
 * real soft TEE reports signed by a test platform key (the launcher's
 * format and signature, made here as the launcher makes them). Every
 * attack of docs/kms.md must be refused with its own check; restart keeps
 * state; the sealed state holds no key bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "coffer/age.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "coffer/soft.h"
#include "kms.h"

typedef struct org {
	const char *name;
	uint8_t seed[32], pub[32];
	cf_age_x25519_key age;
	char recipient[CF_AGE_RECIPIENT_STRLEN + 1];
	char key_id[32];
	char key_recipient[CF_AGE_RECIPIENT_STRLEN + 1];
	char dataset[80];
	uint8_t *file;
	size_t file_len;
} org;

typedef struct fixture {
	char dir[64], state[96];
	cf_soft_platform platform;
	cf_buf cert;
	uint8_t admin_seed[32], admin_pub[32], seal_key[32];
	uint8_t kms_meas[48], enclave_meas[48];
	kms *k;
	org a, b, c;
} fixture;

/* Fake time for the KMS; tests move it. */
static time_t fake_now = 1800000000;
static time_t clock_fn(void)
{
	return fake_now;
}

/* A soft report as coffer-launch signs it. */
static cf_err sign_report(fixture *f, const uint8_t meas[48], const uint8_t rd[64], bool debug,
			  cf_buf *out)
{
	cf_soft_report r = { .version = CF_SOFT_REPORT_VERSION, .launch_time = (uint64_t)fake_now };
	r.flags = debug ? CF_SOFT_FLAG_DEBUG : 0;
	memcpy(r.measurement, meas, 48);
	memcpy(r.report_data, rd, 64);
	memcpy(r.platform_id, f->platform.platform_id, 32);
	snprintf(r.launcher_version, sizeof(r.launcher_version), "test");
	uint8_t bytes[CF_SOFT_REPORT_LEN];
	cf_err rc = cf_soft_report_sign(f->platform.key, &r, bytes);
	if (rc == CF_OK)
		rc = cf_buf_append(out, bytes, sizeof(bytes));
	return rc;
}

static cf_err kms_evidence(void *arg, const uint8_t rd[CF_REPORT_DATA_LEN], cf_buf *out)
{
	fixture *f = arg;
	return sign_report(f, f->kms_meas, rd, false, out);
}

static const json_t *certify_policy;

static void open_kms(fixture *f)
{
	kms_config cfg = { .state_dir = f->state, .admin_pub = f->admin_pub,
			   .certify_policy = certify_policy };
	cfg.collateral.platform_cert = (cf_blob){ f->cert.data, f->cert.len };
	assert_int_equal(kms_open(&cfg, f->seal_key, CF_TEE_SOFT, f->kms_meas, kms_evidence, f, &f->k),
			 CF_OK);
	kms_set_clock(f->k, clock_fn);
}

/* Checks an entry point's status and, for refusals, the check. Takes the
 * address of the answer: the call must run before the answer is read (argument
 * evaluation order is unspecified). */
static json_t *expect(int status, json_t **outp, int want, const char *check)
{
	json_t *out = *outp;
	if (status != want || (check && strcmp(json_string_value(json_object_get(
							 json_object_get(out, "error"), "check")),
						  check) != 0)) {
		char *s = json_dumps(out, 0);
		print_error("status %d (want %d, check %s): %s\n", status, want, check ? check : "-", s);
		free(s);
		fail();
	}
	return out;
}

static json_t *signed_request(fixture *f, org *o, const char *op, json_t *fields)
{
	json_t *r = NULL, *out = NULL;
	char sig[CF_KMS_SIG_B64_LEN + 1];
	assert_int_equal(cf_kms_request_make(o->name, op, fields, fake_now, &r), CF_OK);
	assert_int_equal(cf_kms_sign(o->seed, CF_KMS_CTX_REQUEST, r, sig), CF_OK);
	json_t *req = json_pack("{s:o,s:s}", "request", r, "sig", sig);
	int status = kms_request(f->k, req, &out);
	json_decref(req);
	json_decref(fields);
	json_object_set_new(out, "_status", json_integer(status));
	return out;
}

static int status_of(json_t *o)
{
	return (int)json_integer_value(json_object_get(o, "_status"));
}

static const char *check_of(json_t *o)
{
	const char *c = json_string_value(json_object_get(json_object_get(o, "error"), "check"));
	return c ? c : "";
}

static void enroll(fixture *f, org *o, const char *name)
{
	char pub64[64], sig[CF_KMS_SIG_B64_LEN + 1];
	json_t *token = NULL, *out = NULL;
	o->name = name;
	assert_int_equal(cf_ed25519_keygen(o->seed, o->pub), CF_OK);
	assert_int_equal(cf_age_keygen(&o->age), CF_OK);
	assert_int_equal(cf_age_recipient_format(o->age.pub, o->recipient), CF_OK);
	cf_b64_encode(o->pub, 32, true, pub64);
	assert_int_equal(cf_enroll_token_make(name, pub64, o->recipient, fake_now + 3600, &token), CF_OK);
	assert_int_equal(cf_enroll_token_sign(f->admin_seed, token, sig), CF_OK);
	json_t *req = json_pack("{s:o,s:s}", "token", token, "token_sig", sig);
	expect(kms_enroll(f->k, req, &out), &out, 200, NULL);
	json_decref(req);
	json_decref(out);
}

/* Creates a key and a dataset encrypted to it (as `age -r` would). */
static void make_dataset(fixture *f, org *o, const char *name, const char *plaintext)
{
	json_t *out = signed_request(f, o, "key.create", NULL);
	assert_int_equal(status_of(out), 200);
	snprintf(o->key_id, sizeof(o->key_id), "%s", json_string_value(json_object_get(out, "key")));
	snprintf(o->key_recipient, sizeof(o->key_recipient), "%s",
		 json_string_value(json_object_get(out, "recipient")));
	json_decref(out);

	cf_age_recipient r = { .kind = CF_AGE_X25519 };
	assert_int_equal(cf_age_recipient_parse(o->key_recipient, r.pub), CF_OK);
	cf_buf file;
	cf_buf_init(&file, 1 << 20, false);
	cf_mem_reader m = { .data = (const uint8_t *)plaintext, .len = strlen(plaintext) };
	assert_int_equal(cf_age_encrypt(&r, 1, NULL, cf_mem_reader_of(&m), cf_buf_writer(&file)), CF_OK);
	o->file = file.data;
	o->file_len = file.len;

	cf_age_header h = { 0 };
	size_t hlen = 0;
	assert_int_equal(cf_age_header_parse(o->file, o->file_len, &h, &hlen), CF_OK);
	cf_age_header_free(&h);
	char *b64 = malloc(cf_b64_encoded_len(hlen, true) + 1);
	cf_b64_encode(o->file, hlen, true, b64);
	out = signed_request(f, o, "dataset.register",
			     json_pack("{s:s,s:s,s:s}", "name", name, "key", o->key_id, "header", b64));
	free(b64);
	assert_int_equal(status_of(out), 200);
	snprintf(o->dataset, sizeof(o->dataset), "%s", json_string_value(json_object_get(out, "dataset")));
	json_decref(out);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/coffer-kms-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char pdir[128];
	snprintf(pdir, sizeof(pdir), "%s/platform", f->dir);
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	assert_int_equal(cf_soft_platform_init(pdir, "test-host", false), CF_OK);
	assert_int_equal(cf_soft_platform_load(pdir, &f->platform), CF_OK);
	cf_buf_init(&f->cert, 1 << 16, false);
	assert_int_equal(cf_soft_platform_cert(pdir, &f->cert), CF_OK);
	assert_int_equal(cf_ed25519_keygen(f->admin_seed, f->admin_pub), CF_OK);
	assert_int_equal(cf_random(f->seal_key, 32), CF_OK);
	memset(f->kms_meas, 0x4b, 48);
	memset(f->enclave_meas, 0xe1, 48);
	open_kms(f);
	enroll(f, &f->a, "org-a");
	enroll(f, &f->b, "org-b");
	enroll(f, &f->c, "org-c");
	make_dataset(f, &f->a, "sales", "id,amount\n1,100\n2,250\nSECRET-ROW-OF-A\n");
	make_dataset(f, &f->b, "visits", "id,visits\n1,3\n2,7\nSECRET-ROW-OF-B\n");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	kms_close(f->k);
	cf_soft_platform_free(&f->platform);
	cf_buf_free(&f->cert);
	free(f->a.file);
	free(f->b.file);
	free(f->c.file);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static json_t *make_task(fixture *f)
{
	char meas[97];
	cf_hex_encode(f->enclave_meas, 48, meas);
	return json_pack("{s:{s:{s:s},s:{s:s}},s:{s:s,s:s},s:[{s:s,s:[{s:s,s:s},{s:s,s:s}]}],"
			 "s:{s:[s],s:[s]}}",
			 "inputs", "sales", "dataset", f->a.dataset, "visits", "dataset", f->b.dataset,
			 "function", "kind", "sql", "query", "SELECT count(*) FROM sales",
			 "outputs", "name", "result", "recipients", "org", "org-a", "recipient",
			 f->a.recipient, "org", "org-b", "recipient", f->b.recipient,
			 "tee", "kinds", "soft", "measurements", meas);
}

static json_t *approve(org *o, const json_t *task)
{
	uint8_t d[32];
	json_t *a = NULL;
	assert_int_equal(cf_task_digest(task, d), CF_OK);
	assert_int_equal(cf_task_approve(o->seed, d, o->name, &a), CF_OK);
	return a;
}

typedef struct release_opts {
	const uint8_t *meas;   /* default: the enclave's */
	bool debug;
	bool other_nonce;      /* evidence over a different nonce */
	const json_t *evidence_task; /* the task the evidence is bound to (default: the one sent) */
	json_t *save_request;  /* if set, the request is copied here (replay) */
} release_opts;

/* One release as an enclave does it; returns the reply with "_status". */
static json_t *release(fixture *f, const json_t *task, json_t *approvals, const release_opts *o,
		       cf_age_identity *wrap)
{
	json_t *out = NULL;
	expect(kms_nonce(f->k, &out), &out, 200, NULL);
	uint8_t nonce[32], digest[32], rd[64];
	size_t got;
	const char *nh = json_string_value(json_object_get(out, "nonce"));
	assert_int_equal(cf_hex_decode(nh, 64, nonce, 32, &got), CF_OK);
	char nonce_hex[65];
	snprintf(nonce_hex, sizeof(nonce_hex), "%s", nh);
	json_decref(out);

	wrap->kind = CF_AGE_X25519;
	assert_int_equal(cf_age_keygen(&wrap->key), CF_OK);
	char wrap_rcpt[CF_AGE_RECIPIENT_STRLEN + 1];
	assert_int_equal(cf_age_recipient_format(wrap->key.pub, wrap_rcpt), CF_OK);
	assert_int_equal(cf_task_digest(o && o->evidence_task ? o->evidence_task : task, digest), CF_OK);
	if (o && o->other_nonce)
		nonce[0] ^= 1;
	assert_int_equal(cf_release_report_data(nonce, digest, wrap->key.pub, rd), CF_OK);
	cf_buf ev;
	cf_buf_init(&ev, 4096, false);
	assert_int_equal(sign_report(f, o && o->meas ? o->meas : f->enclave_meas, rd, o && o->debug, &ev),
			 CF_OK);
	char *ev64 = malloc(cf_b64_encoded_len(ev.len, true) + 1);
	cf_b64_encode(ev.data, ev.len, true, ev64);
	json_t *req = json_pack("{s:s,s:s,s:s,s:O,s:o,s:s}", "nonce", nonce_hex, "tee", "soft",
				"evidence", ev64, "task", task, "approvals", approvals,
				"wrap_recipient", wrap_rcpt);
	free(ev64);
	cf_buf_free(&ev);
	if (o && o->save_request)
		json_object_update(o->save_request, req);
	int status = kms_release(f->k, req, &out);
	json_decref(req);
	json_object_set_new(out, "_status", json_integer(status));
	return out;
}

static json_t *both(const json_t *task, fixture *f)
{
	return json_pack("[o,o]", approve(&f->a, task), approve(&f->b, task));
}

/* Decrypts a dataset with the released key and checks it. */
static void check_released(fixture *f, json_t *out, cf_age_identity *wrap)
{
	assert_int_equal(status_of(out), 200);
	const char *keys64 = json_string_value(json_object_get(out, "keys"));
	assert_non_null(keys64);
	size_t n = 0;
	uint8_t *sealed = malloc(cf_b64_decoded_max(strlen(keys64)));
	assert_int_equal(cf_b64_decode(keys64, strlen(keys64), true, sealed, cf_b64_decoded_max(strlen(keys64)), &n), CF_OK);
	cf_buf plain;
	cf_buf_init(&plain, 1 << 16, true);
	cf_mem_reader m = { .data = sealed, .len = n };
	assert_int_equal(cf_age_decrypt(wrap, 1, cf_mem_reader_of(&m), cf_buf_writer(&plain)), CF_OK);
	free(sealed);
	json_t *keys = NULL;
	assert_int_equal(cf_json_parse((const char *)plain.data, plain.len, NULL, &keys), CF_OK);
	cf_buf_free(&plain);
	/* The output key's seed is in the sealed part, 32 bytes. */
	const char *seed_member = json_string_value(json_object_get(keys, "output_seed"));
	assert_non_null(seed_member);
	char seed64[64];
	snprintf(seed64, sizeof(seed64), "%s", seed_member);
	uint8_t oseed[32], opub[32];
	size_t olen = 0;
	assert_int_equal(strlen(seed64), 44);
	assert_int_equal(cf_b64_decode(seed64, 44, true, oseed, 32, &olen), CF_OK);
	assert_int_equal(olen, 32);
	assert_int_equal(cf_ed25519_public(oseed, opub), CF_OK);
	json_t *inputs = json_object_get(keys, "inputs");
	assert_int_equal(json_array_size(inputs), 2);
	size_t i;
	json_t *in;
	json_array_foreach(inputs, i, in) {
		const char *ds = json_string_value(json_object_get(in, "dataset"));
		org *o = strcmp(ds, f->a.dataset) == 0 ? &f->a : &f->b;
		uint8_t fk[16], hh[32];
		size_t got;
		const char *fk64 = json_string_value(json_object_get(in, "file_key"));
		assert_int_equal(cf_b64_decode(fk64, strlen(fk64), true, fk, 16, &got), CF_OK);
		/* The header hash comes from the plain part of the answer. */
		json_t *meta = json_array_get(json_object_get(out, "inputs"), i);
		const char *hh64 = json_string_value(json_object_get(meta, "header_sha256"));
		assert_int_equal(cf_hex_decode(hh64, 64, hh, 32, &got), CF_OK);
		cf_buf pt;
		cf_buf_init(&pt, 1 << 16, true);
		cf_mem_reader fm = { .data = o->file, .len = o->file_len };
		assert_int_equal(cf_age_decrypt_with_file_key(fk, hh, cf_mem_reader_of(&fm), cf_buf_writer(&pt)),
				 CF_OK);
		assert_non_null(memmem(pt.data, pt.len, o == &f->a ? "SECRET-ROW-OF-A" : "SECRET-ROW-OF-B", 15));
		cf_buf_free(&pt);
		/* The other org's header hash must not open this file. */
		hh[0] ^= 1;
		cf_buf_init(&pt, 1 << 16, true);
		cf_mem_reader fm2 = { .data = o->file, .len = o->file_len };
		assert_int_equal(cf_age_decrypt_with_file_key(fk, hh, cf_mem_reader_of(&fm2), cf_buf_writer(&pt)),
				 CF_ERR_AUTH);
		cf_buf_free(&pt);
	}
	json_decref(keys);
	/* The recipients statement is signed by the KMS. */
	json_t *info = NULL;
	expect(kms_info(f->k, &info), &info, 200, NULL);
	uint8_t kms_pub[32];
	size_t got;
	const char *p64 = json_string_value(json_object_get(info, "kms_pub"));
	assert_int_equal(cf_b64_decode(p64, strlen(p64), true, kms_pub, 32, &got), CF_OK);
	json_t *rs = json_object_get(out, "recipients");
	assert_int_equal(cf_kms_verify_sig(kms_pub, CF_KMS_CTX_RECIPIENTS, json_object_get(rs, "statement"),
					   json_string_value(json_object_get(rs, "sig"))),
			 CF_OK);

	/* The output key statement: signed by the KMS, this task, this enclave, the seed's key. */
	json_t *ok = json_object_get(out, "output_key");
	json_t *st = json_object_get(ok, "statement");
	const char *osig = json_string_value(json_object_get(ok, "sig"));
	assert_int_equal(cf_kms_verify_sig(kms_pub, CF_KMS_CTX_OUTPUT_KEY, st, osig), CF_OK);
	/* ...and under that context only. */
	assert_int_equal(cf_kms_verify_sig(kms_pub, CF_KMS_CTX_RECIPIENTS, st, osig), CF_ERR_AUTH);
	assert_string_equal(json_string_value(json_object_get(st, "task_digest")),
			    json_string_value(json_object_get(out, "task_digest")));
	assert_string_equal(json_string_value(json_object_get(st, "tee")), "soft");
	char meas[97], pub64[45];
	cf_hex_encode(f->enclave_meas, 48, meas);
	assert_string_equal(json_string_value(json_object_get(st, "measurement")), meas);
	cf_b64_encode(opub, 32, true, pub64);
	assert_string_equal(json_string_value(json_object_get(st, "output_key")), pub64);
	assert_int_equal(json_integer_value(json_object_get(st, "issued")), fake_now);
	/* The seed appears nowhere in the plain answer, in any spelling. */
	char *plain_answer = json_dumps(out, JSON_COMPACT);
	char seed_hex[65];
	cf_hex_encode(oseed, 32, seed_hex);
	assert_null(strstr(plain_answer, seed64));
	assert_null(strstr(plain_answer, seed_hex));
	assert_null(memmem(plain_answer, strlen(plain_answer), oseed, 32));
	free(plain_answer);
	/* What the enclave signs with the seed verifies for a recipient. */
	uint8_t digest[32], ct[32];
	size_t dl = 0;
	assert_int_equal(cf_hex_decode(json_string_value(json_object_get(out, "task_digest")), 64,
				       digest, 32, &dl), CF_OK);
	memset(ct, 7, sizeof(ct));
	char esig[CF_KMS_SIG_B64_LEN + 1];
	assert_int_equal(cf_kms_output_sign(oseed, digest, "result", ct, esig), CF_OK);
	json_t *att = json_pack("{s:O,s:s}", "output_key", ok, "sig", esig);
	cf_kms_output_origin origin;
	assert_int_equal(cf_kms_output_verify(kms_pub, att, digest, "result", ct, &origin, NULL, 0),
			 CF_OK);
	assert_string_equal(origin.measurement, meas);
	json_decref(att);
	/* The release's audit entry names the output key (and not its seed). */
	char path[160];
	snprintf(path, sizeof(path), "%s/audit.log", f->state);
	FILE *fa = fopen(path, "r");
	assert_non_null(fa);
	char line[2048], last[2048] = "";
	while (fgets(line, sizeof(line), fa))
		snprintf(last, sizeof(last), "%s", line);
	fclose(fa);
	assert_non_null(strstr(last, "\"operation\":\"release\""));
	char want_obj[80];
	snprintf(want_obj, sizeof(want_obj), "output_key:%s", pub64);
	assert_non_null(strstr(last, want_obj));
	assert_null(strstr(last, seed64));
	cf_wipe(oseed, sizeof(oseed));
	cf_wipe(seed64, sizeof(seed64));
	json_decref(info);
}

static void refused(fixture *f, const json_t *task, json_t *approvals, const release_opts *o,
		    const char *check)
{
	cf_age_identity wrap;
	json_t *out = release(f, task, approvals, o, &wrap);
	if (status_of(out) != 403 || strcmp(check_of(out), check) != 0) {
		char *s = json_dumps(out, 0);
		print_error("want refusal %s, got %s\n", check, s);
		free(s);
		fail();
	}
	cf_age_key_wipe(&wrap.key);
	json_decref(out);
}

static void test_release_two_orgs(void **state)
{
	fixture *f = *state;
	json_t *task = make_task(f);
	cf_age_identity wrap;
	json_t *out = release(f, task, both(task, f), NULL, &wrap);
	check_released(f, out, &wrap);
	cf_age_key_wipe(&wrap.key);
	/* Every release has its own output key. */
	json_t *again = release(f, task, both(task, f), NULL, &wrap);
	check_released(f, again, &wrap);
	cf_age_key_wipe(&wrap.key);
	const char *k1 = json_string_value(json_object_get(
		json_object_get(json_object_get(out, "output_key"), "statement"), "output_key"));
	const char *k2 = json_string_value(json_object_get(
		json_object_get(json_object_get(again, "output_key"), "statement"), "output_key"));
	assert_non_null(k1);
	assert_non_null(k2);
	assert_string_not_equal(k1, k2);
	json_decref(again);
	json_decref(out);
	json_decref(task);
}

static void test_attacks(void **state)
{
	fixture *f = *state;
	json_t *task = make_task(f);
	uint8_t other[48];
	memset(other, 0x99, 48);

	release_opts wrong_meas = { .meas = other };
	refused(f, task, both(task, f), &wrong_meas, "measurement");
	release_opts debug = { .debug = true };
	refused(f, task, both(task, f), &debug, "debug");
	release_opts stale = { .other_nonce = true };
	refused(f, task, both(task, f), &stale, "report_data");

	/* Task changed after approval: the enclave runs the new task. */
	json_t *changed = json_deep_copy(task);
	json_object_set_new(json_object_get(changed, "function"), "query",
			    json_string("SELECT * FROM sales"));
	refused(f, changed, both(task, f), NULL, "approval_signature");
	json_decref(changed);

	refused(f, task, json_pack("[o]", approve(&f->a, task)), NULL, "approval_missing");
	refused(f, task, json_pack("[o,o,o]", approve(&f->a, task), approve(&f->b, task),
				   approve(&f->c, task)),
		NULL, "approval_owner");

	/* Forged: org-b's approval signed with org-c's key. */
	json_t *forged = approve(&f->c, task);
	json_object_set_new(forged, "org", json_string("org-b"));
	refused(f, task, json_pack("[o,o]", approve(&f->a, task), forged), NULL, "approval_signature");

	/* Substituted recipient: org-b's output goes to a key the attacker holds. */
	json_t *subst = json_deep_copy(task);
	json_t *r = json_array_get(json_object_get(json_array_get(json_object_get(subst, "outputs"), 0),
						   "recipients"), 1);
	json_object_set_new(r, "recipient", json_string(f->c.recipient));
	refused(f, subst, both(subst, f), NULL, "recipient_key");
	json_decref(subst);

	/* Replay: the same request again. */
	json_t *saved = json_object();
	release_opts save = { .save_request = saved };
	cf_age_identity wrap;
	json_t *out = release(f, task, both(task, f), &save, &wrap);
	assert_int_equal(status_of(out), 200);
	json_decref(out);
	cf_age_key_wipe(&wrap.key);
	expect(kms_release(f->k, saved, &out), &out, 403, "nonce");
	json_decref(out);
	json_decref(saved);

	/* Evidence signed by another platform. */
	cf_soft_platform real = f->platform;
	char pdir[128];
	snprintf(pdir, sizeof(pdir), "%s/other-platform", f->dir);
	assert_int_equal(cf_soft_platform_init(pdir, "evil", false), CF_OK);
	assert_int_equal(cf_soft_platform_load(pdir, &f->platform), CF_OK);
	refused(f, task, both(task, f), NULL, "evidence");
	cf_soft_platform_free(&f->platform);
	f->platform = real;

	/* An expired nonce. */
	json_t *n = NULL;
	expect(kms_nonce(f->k, &n), &n, 200, NULL);
	json_decref(n);

	/* Disabled, then destroyed key. */
	out = signed_request(f, &f->b, "key.disable", json_pack("{s:s}", "key", f->b.key_id));
	assert_int_equal(status_of(out), 200);
	json_decref(out);
	refused(f, task, both(task, f), NULL, "key_disabled");
	out = signed_request(f, &f->b, "key.enable", json_pack("{s:s}", "key", f->b.key_id));
	assert_int_equal(status_of(out), 200);
	json_decref(out);
	out = release(f, task, both(task, f), NULL, &wrap);
	check_released(f, out, &wrap);
	cf_age_key_wipe(&wrap.key);
	json_decref(out);

	/* Key policy of org-a: only another measurement. */
	char hex[97];
	cf_hex_encode(other, 48, hex);
	out = signed_request(f, &f->a, "key.policy",
			     json_pack("{s:s,s:{s:{s:[s]}}}", "key", f->a.key_id, "policy", "measurements",
				       "measurement", hex));
	assert_int_equal(status_of(out), 200);
	json_decref(out);
	refused(f, task, both(task, f), NULL, "key_policy");
	out = signed_request(f, &f->a, "key.policy",
			     json_pack("{s:s,s:{}}", "key", f->a.key_id, "policy"));
	assert_int_equal(status_of(out), 200);
	json_decref(out);

	out = signed_request(f, &f->b, "key.destroy", json_pack("{s:s}", "key", f->b.key_id));
	assert_int_equal(status_of(out), 200);
	json_decref(out);
	refused(f, task, both(task, f), NULL, "key_destroyed");
	out = signed_request(f, &f->b, "key.enable", json_pack("{s:s}", "key", f->b.key_id));
	assert_int_equal(status_of(out), 409);
	assert_string_equal(check_of(out), "key_destroyed");
	json_decref(out);
	json_decref(task);
}

static void test_nonce_expiry(void **state)
{
	fixture *f = *state;
	json_t *task = make_task(f);
	json_t *out = NULL;
	expect(kms_nonce(f->k, &out), &out, 200, NULL);
	json_decref(out);
	/* release() takes a fresh nonce, so expire by moving the clock between. */
	cf_age_identity wrap;
	time_t saved = fake_now;
	json_t *req = json_object();
	release_opts save = { .save_request = req };
	out = release(f, task, both(task, f), &save, &wrap);
	json_decref(out);
	cf_age_key_wipe(&wrap.key);
	/* A second nonce, used only after it expired. */
	expect(kms_nonce(f->k, &out), &out, 200, NULL);
	json_object_set(req, "nonce", json_object_get(out, "nonce"));
	json_decref(out);
	fake_now += KMS_NONCE_TTL + 1;
	expect(kms_release(f->k, req, &out), &out, 403, "nonce");
	json_decref(out);
	fake_now = saved;
	json_decref(req);
	json_decref(task);
}

static void test_requests(void **state)
{
	fixture *f = *state;
	/* Signed by the wrong key. */
	json_t *r = NULL, *out = NULL;
	char sig[CF_KMS_SIG_B64_LEN + 1];
	assert_int_equal(cf_kms_request_make("org-a", "key.list", NULL, fake_now, &r), CF_OK);
	assert_int_equal(cf_kms_sign(f->b.seed, CF_KMS_CTX_REQUEST, r, sig), CF_OK);
	json_t *req = json_pack("{s:O,s:s}", "request", r, "sig", sig);
	expect(kms_request(f->k, req, &out), &out, 403, "signature");
	json_decref(out);
	json_decref(req);
	/* Replayed request id. */
	assert_int_equal(cf_kms_sign(f->a.seed, CF_KMS_CTX_REQUEST, r, sig), CF_OK);
	req = json_pack("{s:O,s:s}", "request", r, "sig", sig);
	expect(kms_request(f->k, req, &out), &out, 200, NULL);
	json_decref(out);
	expect(kms_request(f->k, req, &out), &out, 403, "replay");
	json_decref(out);
	json_decref(req);
	json_decref(r);
	/* Stale time. */
	assert_int_equal(cf_kms_request_make("org-a", "key.list", NULL, fake_now - 3600, &r), CF_OK);
	assert_int_equal(cf_kms_sign(f->a.seed, CF_KMS_CTX_REQUEST, r, sig), CF_OK);
	req = json_pack("{s:o,s:s}", "request", r, "sig", sig);
	expect(kms_request(f->k, req, &out), &out, 403, "time");
	json_decref(out);
	json_decref(req);
	/* Another org's key is "not found", not "forbidden". */
	out = signed_request(f, &f->c, "key.disable", json_pack("{s:s}", "key", f->a.key_id));
	assert_int_equal(status_of(out), 404);
	json_decref(out);
	/* Re-enrollment is refused; a token signed by someone else too. */
	char pub64[64];
	json_t *token = NULL;
	cf_b64_encode(f->c.pub, 32, true, pub64);
	assert_int_equal(cf_enroll_token_make("org-a", pub64, f->c.recipient, fake_now + 60, &token), CF_OK);
	assert_int_equal(cf_enroll_token_sign(f->admin_seed, token, sig), CF_OK);
	req = json_pack("{s:O,s:s}", "token", token, "token_sig", sig);
	expect(kms_enroll(f->k, req, &out), &out, 409, "org_exists");
	json_decref(out);
	json_decref(req);
	json_object_set_new(token, "org", json_string("org-z"));
	assert_int_equal(cf_enroll_token_sign(f->c.seed, token, sig), CF_OK);
	req = json_pack("{s:O,s:s}", "token", token, "token_sig", sig);
	expect(kms_enroll(f->k, req, &out), &out, 403, "token_signature");
	json_decref(out);
	json_decref(req);
	json_decref(token);
	/* Hostile shapes. */
	const char *bad[] = { "{}", "{\"request\":1,\"sig\":\"x\"}",
			      "{\"request\":{\"op\":\"key.list\"},\"sig\":\"\"}",
			      "{\"request\":{\"op\":\"key.list\",\"org\":\"org-a\",\"time\":1,\"id\":\"zz\"},\"sig\":\"AA==\"}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = NULL;
		assert_int_equal(cf_json_parse(bad[i], strlen(bad[i]), NULL, &j), CF_OK);
		int st = kms_request(f->k, j, &out);
		assert_true(st == 400 || st == 403);
		json_decref(out);
		st = kms_release(f->k, j, &out);
		json_decref(out);
		json_decref(j);
		assert_int_equal(st, 400);
	}
}

static void test_import_rotate_restart_and_scan(void **state)
{
	fixture *f = *state;
	/* Import a key the test knows, wrapped to the KMS's transport recipient. */
	json_t *info = NULL;
	expect(kms_info(f->k, &info), &info, 200, NULL);
	cf_age_recipient tr = { .kind = CF_AGE_X25519 };
	assert_int_equal(cf_age_recipient_parse(json_string_value(json_object_get(info, "transport_recipient")),
						tr.pub),
			 CF_OK);
	json_decref(info);
	cf_age_x25519_key known;
	char ident[CF_AGE_IDENTITY_STRLEN + 1];
	assert_int_equal(cf_age_keygen(&known), CF_OK);
	assert_int_equal(cf_age_identity_format(&known, ident), CF_OK);
	cf_buf wrapped;
	cf_buf_init(&wrapped, 1 << 16, false);
	cf_mem_reader m = { .data = (const uint8_t *)ident, .len = strlen(ident) };
	assert_int_equal(cf_age_encrypt(&tr, 1, NULL, cf_mem_reader_of(&m), cf_buf_writer(&wrapped)), CF_OK);
	char *w64 = malloc(cf_b64_encoded_len(wrapped.len, true) + 1);
	cf_b64_encode(wrapped.data, wrapped.len, true, w64);
	json_t *out = signed_request(f, &f->c, "key.import", json_pack("{s:s}", "wrapped", w64));
	free(w64);
	cf_buf_free(&wrapped);
	assert_int_equal(status_of(out), 200);
	char imported[32];
	snprintf(imported, sizeof(imported), "%s", json_string_value(json_object_get(out, "key")));
	json_decref(out);

	/* Rotate: version 2; a header to version 1 can no longer be registered. */
	out = signed_request(f, &f->a, "key.rotate", json_pack("{s:s}", "key", f->a.key_id));
	assert_int_equal(status_of(out), 200);
	assert_int_equal(json_integer_value(json_object_get(out, "version")), 2);
	json_decref(out);
	cf_age_header h = { 0 };
	size_t hlen = 0;
	assert_int_equal(cf_age_header_parse(f->a.file, f->a.file_len, &h, &hlen), CF_OK);
	cf_age_header_free(&h);
	char *b64 = malloc(cf_b64_encoded_len(hlen, true) + 1);
	cf_b64_encode(f->a.file, hlen, true, b64);
	out = signed_request(f, &f->a, "dataset.register",
			     json_pack("{s:s,s:s,s:s}", "name", "old", "key", f->a.key_id, "header", b64));
	free(b64);
	assert_int_equal(status_of(out), 400);
	assert_string_equal(check_of(out), "header");
	json_decref(out);

	/* Restart: the state survives; old-version datasets still release. */
	kms_close(f->k);
	f->k = NULL;
	open_kms(f);
	json_t *task = make_task(f);
	cf_age_identity wrap;
	out = release(f, task, both(task, f), NULL, &wrap);
	check_released(f, out, &wrap);
	cf_age_key_wipe(&wrap.key);
	json_decref(out);
	json_decref(task);

	/* A wrong sealing key cannot open it. */
	kms *other = NULL;
	kms_config cfg = { .state_dir = f->state };
	cfg.collateral.platform_cert = (cf_blob){ f->cert.data, f->cert.len };
	uint8_t wrong[32];
	memcpy(wrong, f->seal_key, 32);
	wrong[0] ^= 1;
	kms_close(f->k);
	f->k = NULL;
	assert_int_not_equal(kms_open(&cfg, wrong, CF_TEE_SOFT, f->kms_meas, kms_evidence, f, &other), CF_OK);
	open_kms(f);

	/* The sealed file holds neither the imported key nor any plaintext. */
	char path[160];
	snprintf(path, sizeof(path), "%s/kms.db.sealed", f->state);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	static uint8_t disk[4 << 20];
	size_t n = fread(disk, 1, sizeof(disk), fp);
	fclose(fp);
	assert_true(n > 0);
	assert_null(memmem(disk, n, known.secret, 32));
	assert_null(memmem(disk, n, ident, strlen(ident)));
	assert_null(memmem(disk, n, "org-a", 5)); /* not even metadata in the clear */
	assert_null(memmem(disk, n, "SQLite format", 13));
	cf_age_key_wipe(&known);
	cf_wipe(ident, sizeof(ident));
	(void)imported;
}

/* A P-256 CSR in PEM; *spki gets SHA-256 of its public key. */
static char *make_csr(uint8_t spki[32])
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	assert_non_null(key);
	assert_non_null(req);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(key, &der);
	assert_true(n > 0);
	assert_int_equal(cf_hash(CF_SHA256, der, (size_t)n, spki), CF_OK);
	OPENSSL_free(der);
	BIO *b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_X509_REQ(b, req), 1);
	char *p;
	long len = BIO_get_mem_data(b, &p);
	/* The BIO's bytes are not NUL-terminated: copy, do not strndup. */
	char *pem = malloc((size_t)len + 1);
	assert_non_null(pem);
	memcpy(pem, p, (size_t)len);
	pem[len] = 0;
	BIO_free(b);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return pem;
}

static json_t *certify(fixture *f, const uint8_t meas[48])
{
	json_t *out = NULL;
	uint8_t nonce[32], spki[32], rd[64];
	size_t got;
	expect(kms_nonce(f->k, &out), &out, 200, NULL);
	char nh[65];
	snprintf(nh, sizeof(nh), "%s", json_string_value(json_object_get(out, "nonce")));
	json_decref(out);
	assert_int_equal(cf_hex_decode(nh, 64, nonce, 32, &got), CF_OK);
	char *csr = make_csr(spki);
	assert_int_equal(cf_certify_report_data(nonce, spki, rd), CF_OK);
	cf_buf ev;
	cf_buf_init(&ev, 4096, false);
	assert_int_equal(sign_report(f, meas, rd, false, &ev), CF_OK);
	char *ev64 = malloc(cf_b64_encoded_len(ev.len, true) + 1);
	cf_b64_encode(ev.data, ev.len, true, ev64);
	json_t *req = json_pack("{s:s,s:s,s:s,s:s,s:[s,s]}", "nonce", nh, "tee", "soft", "evidence",
				ev64, "csr", csr, "names", "localhost", "127.0.0.1");
	int status = kms_certify(f->k, req, &out);
	json_object_set_new(out, "_status", json_integer(status));
	json_decref(req);
	free(ev64);
	free(csr);
	cf_buf_free(&ev);
	return out;
}

static void test_certify(void **state)
{
	fixture *f = *state;
	/* Started without a certify policy: no certificates at all. */
	json_t *out = certify(f, f->enclave_meas);
	assert_int_equal(status_of(out), 403);
	assert_string_equal(check_of(out), "certify_disabled");
	json_decref(out);

	char hex[97];
	cf_hex_encode(f->enclave_meas, 48, hex);
	json_t *policy = json_pack("{s:{s:[s]}}", "measurements", "measurement", hex);
	certify_policy = policy;
	kms_close(f->k);
	open_kms(f);
	out = certify(f, f->enclave_meas);
	assert_int_equal(status_of(out), 200);
	/* The certificate chains to the CA the KMS publishes. */
	const char *pem = json_string_value(json_object_get(out, "cert"));
	const char *ca_pem = json_string_value(json_object_get(out, "ca"));
	BIO *b1 = BIO_new_mem_buf(pem, -1), *b2 = BIO_new_mem_buf(ca_pem, -1);
	X509 *cert = PEM_read_bio_X509(b1, NULL, NULL, NULL), *ca = PEM_read_bio_X509(b2, NULL, NULL, NULL);
	assert_non_null(cert);
	assert_non_null(ca);
	EVP_PKEY *ca_key = X509_get0_pubkey(ca);
	assert_int_equal(X509_verify(cert, ca_key), 1);
	assert_int_equal(X509_check_host(cert, "localhost", 0, 0, NULL), 1);
	X509_free(cert);
	X509_free(ca);
	BIO_free(b1);
	BIO_free(b2);
	json_decref(out);

	uint8_t other[48];
	memset(other, 0x77, 48);
	out = certify(f, other);
	assert_int_equal(status_of(out), 403);
	assert_string_equal(check_of(out), "policy");
	json_decref(out);
	kms_close(f->k);
	certify_policy = NULL;
	open_kms(f);
	json_decref(policy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_release_two_orgs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_rotate_restart_and_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_certify, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
