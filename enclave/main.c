/*
 * coffer-enclave: the trusted worker that runs one SQL task (docs/tasks.md).
 *
 * cofferd starts it as `coffer-launch run ... -- coffer-enclave` with no
 * arguments of its own, so its measurement is the same for every run; the
 * run's parameters come on stdin (params.h). Then:
 *
 *   1. refuse to run outside a TEE (exit 3);
 *   2. GET the run's spec from cofferd: the task, the approvals, where the
 *      input blobs are;
 *   3. check the KMS's CA certificate carries valid evidence, and ask the
 *      KMS for the task's keys with this TEE's evidence (cf_kms_release):
 *      the KMS checks the measurement, every owner's signature over the
 *      task's digest and the recipients, and answers with the file keys,
 *      the header hashes and a signed statement of the outputs'
 *      recipients;
 *   4. decrypt, load, query, apply the output policy, encrypt to the
 *      statement's recipients and upload, each output signed with the
 *      release's output key (worker.h, run.h);
 *   5. POST finish with a message that names what failed, never data.
 *
 * Exit status: 0 done, 1 the task failed (refused by the KMS, the fence
 * or the policy, bad SQL or data, transport), 2 bad run parameters or
 * arguments, 3 not in a TEE. Progress goes to stderr, which cofferd keeps
 * as the run's log: table names, row counts, times and memory use only.
 */
#define CF_LOG_MODULE "main"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "coffer/buf.h"
#include "coffer/evidence.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "coffer/log.h"
#include "coffer/ratls.h"
#include "coffer/tee.h"
#include "job.h"
#include "params.h"
#include "run.h"
#include "sql.h"
#include "worker.h"

/* The transport of a run: cofferd's blobs in, cofferd's uploads out. */
typedef struct run_io {
	cf_run *run;
	const json_t *spec_inputs;
	cf_cofferd_stream *blob;
	cf_prefetch *ahead;    /* receives the blob on its own thread */
	cf_buf ct;             /* the current output's ciphertext (not secret) */
	const cf_kms_release_result *rel; /* its output key signs each output */
} run_io;

static cf_err io_input_open(void *arg, const cf_job_input *in, cf_reader *out)
{
	run_io *r = arg;
	const json_t *v, *found = NULL;
	const char *url;
	size_t i;
	json_array_foreach(r->spec_inputs, i, v) {
		const char *t, *d;
		if (cf_json_get_string(v, "table", &t) == CF_OK && strcmp(t, in->table) == 0 &&
		    cf_json_get_string(v, "dataset", &d) == CF_OK && strcmp(d, in->dataset) == 0) {
			if (found)
				return CF_ERR_PARSE;
			found = v;
		}
	}
	if (!found)
		return CF_ERR_NOT_FOUND;
	if (cf_json_get_string(found, "blob_url", &url) != CF_OK)
		return CF_ERR_PARSE;
	/* cofferd's size bounds the transfer; a wrong one only fails decryption. */
	json_int_t size = json_integer_value(json_object_get(found, "size"));
	uint64_t max = json_is_integer(json_object_get(found, "size")) && size >= 0
			       ? (uint64_t)size : UINT64_MAX;
	cf_err rc = cf_run_blob_open(r->run, url, max, &r->blob);
	if (rc != CF_OK) {
		log_error("input %s: %s", in->table, cf_run_error(r->run));
		return rc;
	}
	/*
	 * TLS and the transfer on a thread of their own, a few MiB ahead:
	 * decryption and parsing never wait on the socket while bytes are
	 * on their way.
	 */
	if ((rc = cf_prefetch_new(cf_cofferd_stream_reader(r->blob), 1u << 20, 4, &r->ahead)) !=
	    CF_OK) {
		cf_cofferd_stream_free(r->blob);
		r->blob = NULL;
		return rc;
	}
	*out = cf_prefetch_reader(r->ahead);
	return CF_OK;
}

static void io_input_close(void *arg, const cf_job_input *in)
{
	run_io *r = arg;
	(void)in;
	/* The thread first: it may still be reading the stream. */
	cf_prefetch_free(r->ahead);
	r->ahead = NULL;
	cf_cofferd_stream_free(r->blob);
	r->blob = NULL;
}

static cf_err io_output_open(void *arg, const char *name, cf_writer *out)
{
	run_io *r = arg;
	(void)name;
	cf_buf_free(&r->ct);
	cf_buf_init(&r->ct, CF_WORKER_MAX_RESULT_BYTES + (CF_WORKER_MAX_RESULT_BYTES >> 8), false);
	*out = cf_buf_writer(&r->ct);
	return CF_OK;
}

static cf_err io_output_commit(void *arg, const char *name)
{
	run_io *r = arg;
	cf_err rc = cf_run_output_put(r->run, name, r->ct.data, r->ct.len, r->rel);
	if (rc != CF_OK)
		log_error("output %s: %s", name, cf_run_error(r->run));
	cf_buf_free(&r->ct);
	return rc;
}

static void io_output_abort(void *arg, const char *name)
{
	run_io *r = arg;
	(void)name;
	cf_buf_free(&r->ct);
}

/*
 * The KMS's CA must carry verified evidence (non-debug) under the
 * platform certificate. Both come from cofferd, so this is a sanity check,
 * not the defence: a KMS cofferd made up cannot release the real file
 * keys, and without them the inputs do not decrypt (docs/tasks.md).
 */
static cf_err verify_kms_ca(const cf_run_params *p, char *why, size_t whylen)
{
	BIO *bio = BIO_new_mem_buf(p->kms_ca.data, (int)p->kms_ca.len);
	X509 *ca = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	json_t *policy = json_pack("{s:b}", "allow_debug", 0);
	cf_ratls_verifier cfg;
	cf_verdict v;
	bool have_verdict = false;
	cf_err rc;
	memset(&cfg, 0, sizeof(cfg));
	if (!ca || !policy) {
		snprintf(why, whylen, "the KMS CA is not a PEM certificate");
		rc = CF_ERR_PARSE;
		goto out;
	}
	cfg.collateral.platform_cert.data = p->platform_cert.data;
	cfg.collateral.platform_cert.len = p->platform_cert.len;
	cfg.policy = policy;
	if ((rc = cf_ratls_verify_cert(ca, &cfg, &v)) != CF_OK) {
		snprintf(why, whylen, "the KMS CA's evidence cannot be checked: %s", cf_strerror(rc));
		goto out;
	}
	have_verdict = true;
	if (!cf_verdict_ok(&v)) {
		const cf_check *c = cf_verdict_first_failure(&v);
		snprintf(why, whylen, "the KMS CA's evidence does not verify: %s: expected %.120s, "
			 "got %.120s", c ? c->name : "?", c ? c->expected : "", c ? c->actual : "");
		rc = CF_ERR_AUTH;
		goto out;
	}
	char *m = json_dumps(json_object_get(v.claims, "measurements"), JSON_COMPACT | JSON_SORT_KEYS);
	log_info("KMS CA verified: %s TEE, measurements %s", cf_tee_kind_name(v.tee), m ? m : "?");
	free(m);
out:
	if (have_verdict)
		cf_verdict_free(&v);
	json_decref(policy);
	X509_free(ca);
	BIO_free(bio);
	return rc;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * Seconds from this process's creation (the launcher's fork) to now: the
 * soft TEE's launch, confinement and pre-faulting of the secret arena,
 * all before main. -1 if /proc does not say (resolution: clock ticks).
 */
static double seconds_since_process_start(void)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	/* Fields after the command name (which may hold spaces): state is 3, starttime 22. */
	const char *p = strrchr(buf, ')');
	unsigned long long start = 0;
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
			 "%*d %*d %*d %*d %llu", &start) != 1)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	struct timespec now;
	if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &now) != 0)
		return -1;
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9 - (double)start / (double)hz;
}

/* Lets SQLite fail cleanly (SQLITE_NOMEM) before the enclave's arena runs out. */
static void limit_sqlite_heap(void)
{
	const char *s = getenv("COFFER_ENCLAVE_SIZE");
	char *end = NULL;
	unsigned long long n = s ? strtoull(s, &end, 10) : 0;
	if (n > 0 && end && *end == '\0')
		cf_sql_limit_heap(n / 4 * 3);
}

/* Everything after the parameters; the finish message is composed in why. */
static cf_err run(const cf_run_params *p, const cf_tee_provider *tee, cf_run *cofferd, char *why,
		  size_t whylen)
{
	json_t *spec = NULL;
	cf_job job;
	cf_kms_client *kms = NULL;
	cf_kms_release_result rel;
	cf_worker_stats stats;
	char msg[320];
	struct timespec t0;
	cf_err rc;
	memset(&job, 0, sizeof(job));
	memset(&rel, 0, sizeof(rel));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((rc = cf_run_spec(cofferd, &spec)) != CF_OK) {
		snprintf(why, whylen, "cannot read the run's spec: %s", cf_run_error(cofferd));
		goto out;
	}
	log_info("the run's spec fetched in %.2f s", seconds_since(&t0));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const json_t *task = json_object_get(spec, "task");
	const json_t *approvals = json_object_get(spec, "approvals");
	const json_t *inputs = json_object_get(spec, "inputs");
	if (!json_is_object(task) || !json_is_array(approvals) || !json_is_array(inputs)) {
		snprintf(why, whylen, "the run's spec lacks task, approvals or inputs");
		rc = CF_ERR_PARSE;
		goto out;
	}
	if ((rc = cf_job_parse(task, &job, msg, sizeof(msg))) != CF_OK) {
		snprintf(why, whylen, "the task is not one this enclave runs: %s", msg);
		goto out;
	}
	if (!p->kms || p->kms_ca.len == 0 || p->platform_cert.len == 0) {
		snprintf(why, whylen, "cofferd gave no KMS (kms, kms_ca and platform_cert): start it "
			 "with --kms, --kms-ca and --platform-cert");
		rc = CF_ERR_ARG;
		goto out;
	}
	if ((rc = verify_kms_ca(p, why, whylen)) != CF_OK)
		goto out;
	if ((rc = cf_kms_client_open_pem(p->kms, p->kms_ca.data, p->kms_ca.len, &kms)) != CF_OK) {
		snprintf(why, whylen, "cannot open the KMS client: %s", cf_strerror(rc));
		goto out;
	}
	if ((rc = cf_kms_release(kms, tee, task, approvals, &rel)) != CF_OK) {
		const cf_kms_error *e = cf_kms_client_error(kms);
		snprintf(why, whylen, "the KMS released no keys: %s%s%.64s (HTTP %ld): %.300s",
			 cf_strerror(rc), e->check[0] ? ": " : "", e->check, e->status, e->message);
		goto out;
	}
	log_info("the KMS released %zu input key%s for this task: KMS CA check, evidence and "
		 "release in %.2f s", rel.ninputs, rel.ninputs == 1 ? "" : "s", seconds_since(&t0));

	run_io rio = { .run = cofferd, .spec_inputs = inputs, .rel = &rel };
	cf_worker_io io = {
		.arg = &rio,
		.input_open = io_input_open,
		.input_close = io_input_close,
		.output_open = io_output_open,
		.output_commit = io_output_commit,
		.output_abort = io_output_abort,
	};
	rc = cf_worker_run(&job, &rel, &io, NULL, &stats, why, whylen);
	cf_cofferd_stream_free(rio.blob);
	cf_buf_free(&rio.ct);
	if (rc == CF_OK)
		snprintf(why, whylen, "%zu output%s written", stats.outputs,
			 stats.outputs == 1 ? "" : "s");
out:
	cf_kms_release_result_free(&rel);
	cf_kms_client_free(kms);
	cf_job_free(&job);
	json_decref(spec);
	return rc;
}

int main(int argc, char **argv)
{
	cf_run_params params;
	cf_buf in;
	cf_run *cofferd = NULL;
	const cf_tee_provider *tee = NULL;
	char why[512] = "";
	int status = 2;
	cf_err rc = CF_OK;
	memset(&params, 0, sizeof(params));
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double launch_s = seconds_since_process_start();
	cf_buf_init(&in, CF_PARAMS_MAX + 1, true);
	cf_log_init("coffer-enclave", CF_LOG_INFO, false);
	(void)argv;
	if (argc != 1) {
		fputs("usage: coffer-enclave < RUN-PARAMETERS.json (started by cofferd under "
		      "coffer-launch)\n", stderr);
		goto out;
	}
	if (cf_tee_detect(&tee) != CF_OK) {
		log_error("not running in a TEE (cofferd starts me with coffer-launch)");
		status = 3;
		goto out;
	}
	cf_fd_io fdin = { STDIN_FILENO };
	cf_reader r = cf_fd_reader(&fdin);
	for (;;) {
		uint8_t chunk[4096];
		size_t got = 0;
		if ((rc = r.read(r.ctx, chunk, sizeof(chunk), &got)) != CF_OK || got == 0 ||
		    (rc = cf_buf_append(&in, chunk, got)) != CF_OK) {
			cf_wipe(chunk, sizeof(chunk));
			break;
		}
		cf_wipe(chunk, sizeof(chunk));
	}
	if (rc != CF_OK) {
		log_error("reading the run parameters failed: %s", cf_strerror(rc));
		goto out;
	}
	if ((rc = cf_run_params_parse(in.data ? (const char *)in.data : "", in.len, &params, why,
				      sizeof(why))) != CF_OK) {
		log_error("bad run parameters: %s", why);
		goto out;
	}
	cf_buf_free(&in);
	/* A warm enclave waited for these since main began: the run starts now. */
	struct timespec t_run;
	clock_gettime(CLOCK_MONOTONIC, &t_run);
	status = 1;
	limit_sqlite_heap();
	if ((rc = cf_run_open(params.cofferd, params.cofferd_ca.data, params.cofferd_ca.len,
			      params.token, params.run, &cofferd)) != CF_OK) {
		log_error("cannot open the cofferd client (cofferd, cofferd_ca, run or token is "
			  "malformed): %s", cf_strerror(rc));
		goto out;
	}
	log_info("run %s in a %s TEE; main began %.2f s after the process was created (launch, "
		 "arena set-up)", params.run, cf_tee_kind_name(tee->kind), launch_s);
	rc = run(&params, tee, cofferd, why, sizeof(why));
	if (rc == CF_OK)
		log_info("succeeded: %s", why);
	else
		log_error("failed: %s", why);
	cf_err frc = cf_run_finish(cofferd, rc == CF_OK, why);
	if (frc != CF_OK) {
		log_error("reporting the end to cofferd failed: %s", cf_run_error(cofferd));
		rc = rc == CF_OK ? frc : rc;
	}
	status = rc == CF_OK ? 0 : 1;
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		log_info("finished %.2f s after main began, %.2f s after the run's parameters came; "
			 "cpu (arena pre-faulting included): user %.2f s, system %.2f s; SQLite "
			 "heap peak %.0f MiB", seconds_since(&t0), seconds_since(&t_run),
			 (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
			 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
			 (double)sqlite3_memory_highwater(0) / (1024.0 * 1024.0));
out:
	cf_run_free(cofferd);
	cf_run_params_free(&params);
	cf_buf_free(&in);
	return status;
}
