#define CF_LOG_MODULE "worker"

#include "worker.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coffer/age.h"
#include "coffer/log.h"
#include "output.h"
#include "policy.h"
#include "sql.h"
#include "xgb.h"
#if CF_JOB_HAVE_STATS
#include "stats.h"
#endif
#if CF_JOB_HAVE_PSI
#include "psi.h"
#endif

static cf_err fail(char *why, size_t whylen, cf_err rc, const char *fmt, ...) CF_PRINTF(4, 5);
static cf_err fail(char *why, size_t whylen, cf_err rc, const char *fmt, ...)
{
	if (why && whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static const cf_kms_input *released_key(const cf_kms_release_result *rel, const cf_job_input *in)
{
	for (size_t i = 0; i < rel->ninputs; i++) {
		if (strcmp(rel->inputs[i].table, in->table) == 0 &&
		    strcmp(rel->inputs[i].dataset, in->dataset) == 0)
			return &rel->inputs[i];
	}
	return NULL;
}

/*
 * Where an input's time goes: the ciphertext's transfer (reads), the CSV
 * loader's first pass (writes: checks, counts, types; it keeps the
 * plaintext), and what is left of the stream, decryption.
 */
/*
 * A decryption's reads and writes, timed: wall time (waiting for
 * ciphertext, the consumer's work) and this thread's CPU time, so that
 * the decryption's own CPU time is the stream's less both sides' (its wall
 * time would count the moments other threads of the job had the core).
 */
typedef struct timed_stream {
	cf_reader in;
	cf_writer out;
	double read_s, write_s;
	double read_cpu, write_cpu, start_cpu;
} timed_stream;

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static cf_err timed_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	timed_stream *t = ctx;
	struct timespec t0;
	/* The CPU clock's own calls inside the wall window: never counted as decryption. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double c0 = thread_cpu();
	cf_err rc = t->in.read(t->in.ctx, buf, cap, got);
	t->read_cpu += thread_cpu() - c0;
	t->read_s += seconds_since(&t0);
	return rc;
}

static cf_err timed_write(void *ctx, const uint8_t *buf, size_t len)
{
	timed_stream *t = ctx;
	struct timespec t0;
	/* The CPU clock's own calls inside the wall window: never counted as decryption. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double c0 = thread_cpu();
	cf_err rc = t->out.write(t->out.ctx, buf, len);
	t->write_cpu += thread_cpu() - c0;
	t->write_s += seconds_since(&t0);
	return rc;
}

/* The decryption's own CPU time, once the stream is over. */
static double decrypt_cpu(const timed_stream *t)
{
	double d = thread_cpu() - t->start_cpu - t->read_cpu - t->write_cpu;
	return d > 0 ? d : 0;
}

/* Decrypts one input into its table. */
static cf_err load_input(cf_sql *db, const cf_job_input *in, const cf_kms_release_result *rel,
			 const cf_worker_io *io, const cf_csv_limits *limits, cf_csv_table *info,
			 char *why, size_t whylen)
{
	cf_csv_load *l = NULL;
	cf_reader rd;
	timed_stream ts = { 0 };
	bool opened = false;
	struct timespec t0, t1;
	double stream_s = 0, insert_s = 0;
	cf_err rc;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const cf_kms_input *key = released_key(rel, in);
	if (!key) {
		rc = fail(why, whylen, CF_ERR_AUTH, "the KMS released no key for input %s", in->table);
		goto out;
	}
	if ((rc = cf_csv_load_new(cf_sql_db(db), in->table, limits, &l)) != CF_OK) {
		fail(why, whylen, rc, "input %s: cannot start loading: %s", in->table, cf_strerror(rc));
		goto out;
	}
	if ((rc = io->input_open(io->arg, in, &rd)) != CF_OK) {
		fail(why, whylen, rc, "input %s: cannot fetch its ciphertext: %s", in->table,
		     cf_strerror(rc));
		goto out;
	}
	opened = true;
	ts = (timed_stream){ .in = rd, .out = cf_csv_load_writer(l), .start_cpu = thread_cpu() };
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rc = cf_age_decrypt_with_file_key(key->file_key, key->header_sha256,
					  (cf_reader){ timed_read, &ts },
					  (cf_writer){ timed_write, &ts });
	stream_s = seconds_since(&t1);
	double decrypt_cpu_s = decrypt_cpu(&ts);
	if (rc == CF_OK) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		rc = cf_csv_load_finish(l, info);
		insert_s = seconds_since(&t1);
	}
	if (rc != CF_OK) {
		if (cf_csv_load_error(l)[0])
			fail(why, whylen, rc, "input %s: %s", in->table, cf_csv_load_error(l));
		else if (rc == CF_ERR_AUTH)
			fail(why, whylen, rc, "input %s: its header is not the one the KMS registered "
			     "(a swapped or altered file)", in->table);
		else
			fail(why, whylen, rc, "input %s: the ciphertext does not decrypt: %s", in->table,
			     cf_strerror(rc));
		goto out;
	}
	size_t counts[4] = { 0 };
	for (size_t c = 0; c < info->ncolumns; c++)
		counts[info->types[c]]++;
	double decrypt_s = stream_s - ts.read_s - ts.write_s;
	log_info("input %s: %llu rows, %zu columns (%zu integer, %zu real, %zu text) in %.2f s: "
		 "transfer %.2f s, decrypt %.2f s, check and type %.2f s, insert %.2f s; "
		 "decryption's CPU %.2f s",
		 in->table, (unsigned long long)info->rows, info->ncolumns, counts[CF_CSV_INTEGER],
		 counts[CF_CSV_REAL], counts[CF_CSV_TEXT], seconds_since(&t0), ts.read_s,
		 decrypt_s > 0 ? decrypt_s : 0, ts.write_s, insert_s, decrypt_cpu_s);
out:
	if (opened && io->input_close)
		io->input_close(io->arg, in);
	cf_csv_load_free(l);
	return rc;
}

/* Decrypts a model input into secret bytes (never a table). */
static cf_err load_model(const cf_job_input *in, const cf_kms_release_result *rel,
			 const cf_worker_io *io, cf_buf *model, char *why, size_t whylen)
{
	cf_reader rd;
	struct timespec t0;
	cf_err rc;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const cf_kms_input *key = released_key(rel, in);
	if (!key)
		return fail(why, whylen, CF_ERR_AUTH, "the KMS released no key for input %s",
			    in->table);
	if ((rc = io->input_open(io->arg, in, &rd)) != CF_OK)
		return fail(why, whylen, rc, "input %s: cannot fetch its ciphertext: %s", in->table,
			    cf_strerror(rc));
	rc = cf_age_decrypt_with_file_key(key->file_key, key->header_sha256, rd,
					  cf_buf_writer(model));
	if (io->input_close)
		io->input_close(io->arg, in);
	if (rc == CF_ERR_TOO_BIG)
		return fail(why, whylen, rc, "input %s: the model is larger than %u bytes", in->table,
			    CF_XGB_MAX_MODEL);
	if (rc == CF_ERR_AUTH)
		return fail(why, whylen, rc, "input %s: its header is not the one the KMS registered "
			    "(a swapped or altered file)", in->table);
	if (rc != CF_OK)
		return fail(why, whylen, rc, "input %s: the ciphertext does not decrypt: %s",
			    in->table, cf_strerror(rc));
	log_info("input %s: a model of %zu bytes in %.2f s", in->table, model->len,
		 seconds_since(&t0));
	return CF_OK;
}

/*
 * Decrypts a CSV input straight into xgboost.predict (function.table),
 * which predicts as the rows arrive: csv gets the predictions.
 */
static cf_err load_rows(const cf_job *job, const cf_job_input *in,
			const cf_kms_release_result *rel, const cf_worker_io *io,
			const cf_buf *model, cf_buf *csv, cf_xgb_rows **rows, char *why,
			size_t whylen)
{
	cf_reader rd;
	timed_stream ts = { 0 };
	struct timespec t0, t1;
	cf_err rc;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const cf_kms_input *key = released_key(rel, in);
	if (!key)
		return fail(why, whylen, CF_ERR_AUTH, "the KMS released no key for input %s",
			    in->table);
	if ((rc = cf_xgb_rows_new(&job->predict, model->data, model->len, job->max_result_rows,
				  csv, rows, why, whylen)) != CF_OK) {
		if (!why || !why[0])
			fail(why, whylen, rc, "input %s: cannot start reading: %s", in->table,
			     cf_strerror(rc));
		return rc;
	}
	if ((rc = io->input_open(io->arg, in, &rd)) != CF_OK)
		return fail(why, whylen, rc, "input %s: cannot fetch its ciphertext: %s", in->table,
			    cf_strerror(rc));
	ts = (timed_stream){ .in = rd, .out = cf_xgb_rows_writer(*rows), .start_cpu = thread_cpu() };
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rc = cf_age_decrypt_with_file_key(key->file_key, key->header_sha256,
					  (cf_reader){ timed_read, &ts },
					  (cf_writer){ timed_write, &ts });
	double stream_s = seconds_since(&t1);
	double decrypt_cpu_s = decrypt_cpu(&ts);
	if (io->input_close)
		io->input_close(io->arg, in);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rc == CF_OK)
		rc = cf_xgb_rows_finish(*rows, NULL, 0);
	double last_s = seconds_since(&t1);
	if (rc != CF_OK) {
		if (cf_xgb_rows_error(*rows)[0])
			return fail(why, whylen, rc, "input %s: %s", in->table,
				    cf_xgb_rows_error(*rows));
		if (rc == CF_ERR_AUTH)
			return fail(why, whylen, rc, "input %s: its header is not the one the KMS "
				    "registered (a swapped or altered file)", in->table);
		return fail(why, whylen, rc, "input %s: the ciphertext does not decrypt: %s",
			    in->table, cf_strerror(rc));
	}
	double decrypt_s = stream_s - ts.read_s - ts.write_s;
	log_info("input %s: %llu rows read and predicted in %.2f s: transfer %.2f s, decrypt "
		 "%.2f s, parse (predicting alongside) %.2f s, the last predictions %.2f s; "
		 "decryption's CPU %.2f s",
		 in->table, (unsigned long long)cf_xgb_rows_count(*rows), seconds_since(&t0),
		 ts.read_s, decrypt_s > 0 ? decrypt_s : 0, ts.write_s, last_s, decrypt_cpu_s);
	return CF_OK;
}

/*
 * The function's result(s) of a kind other than sql, into res[CF_RESULT_MAIN]
 * (and res[CF_RESULT_METRICS] when an output takes the metrics).
 */
static cf_err run_function(cf_sql *db, const cf_job *job, const cf_buf *model,
			   cf_xgb_rows *rows_in, cf_buf *res, cf_worker_stats *stats, char *why,
			   size_t whylen)
{
	bool metrics = false;
	uint64_t rows = 0;
	struct timespec t0;
	cf_err rc;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t o = 0; o < job->noutputs; o++)
		metrics |= !job->outputs[o].query && job->outputs[o].result == CF_RESULT_METRICS;
	switch (job->kind) {
	case CF_FN_XGB_TRAIN:
		rc = cf_xgb_train_run(db, &job->train, &res[CF_RESULT_MAIN],
				      metrics ? &res[CF_RESULT_METRICS] : NULL, &rows, why, whylen);
		break;
	case CF_FN_XGB_PREDICT:
		if (job->predict.table) {
			/* Predicted as the input was read (load_rows). */
			rows = cf_xgb_rows_count(rows_in);
			rc = CF_OK;
		} else {
			rc = cf_xgb_predict_run(db, &job->predict, model->data, model->len,
						job->max_result_rows, &res[CF_RESULT_MAIN], &rows,
						why, whylen);
		}
		if (rc == CF_OK)
			stats->output_rows += rows;
		break;
	default:
		return fail(why, whylen, CF_ERR_UNSUPPORTED, "this enclave does not run the task's "
			    "function kind");
	}
	if (rc != CF_OK) {
		if (!why || !why[0])
			fail(why, whylen, rc, "the function failed: %s", cf_strerror(rc));
		return rc;
	}
	log_info("function: computed in %.2f s", seconds_since(&t0));
	return CF_OK;
}

/* Runs one output's query under the fence and the policy into csv. */
static cf_err run_output(cf_sql *db, const cf_job *job, const cf_job_output *o,
			 const cf_policy_table *tables, size_t ntables, cf_buf *csv, size_t *total,
			 cf_worker_stats *stats, char *why, size_t whylen)
{
	cf_policy_plan plan;
	sqlite3_stmt *st = NULL;
	char msg[320];
	uint64_t rows = 0;
	bool row = false, keep = true;
	struct timespec t0;
	cf_err rc;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&plan, 0, sizeof(plan));
	cf_buf_init(csv, CF_WORKER_MAX_RESULT_BYTES - *total, true);
	if ((rc = cf_policy_plan_make(&job->policy, o->query, tables, ntables, &plan, msg,
				      sizeof(msg))) != CF_OK) {
		fail(why, whylen, rc, "output %s: %s", o->name, msg[0] ? msg : cf_strerror(rc));
		goto out;
	}
	if ((rc = cf_sql_prepare(db, plan.query, &st, msg, sizeof(msg))) != CF_OK ||
	    (rc = cf_policy_bind(&plan, st, msg, sizeof(msg))) != CF_OK) {
		fail(why, whylen, rc, "output %s: %s", o->name, msg[0] ? msg : cf_strerror(rc));
		goto out;
	}
	if ((rc = cf_output_csv_header(csv, st, plan.visible)) != CF_OK)
		goto too_big;
	for (;;) {
		if ((rc = cf_sql_step(db, st, &row, msg, sizeof(msg))) != CF_OK) {
			fail(why, whylen, rc, "output %s: %s", o->name, msg);
			goto out;
		}
		if (!row)
			break;
		if ((rc = cf_policy_row(&plan, st, &keep, msg, sizeof(msg))) != CF_OK) {
			fail(why, whylen, rc, "output %s: %s", o->name, msg);
			goto out;
		}
		if (!keep)
			continue;
		if (++rows > job->max_result_rows) {
			rc = fail(why, whylen, CF_ERR_LIMIT, "output %s: the result has more than %llu "
				  "rows (policy.max_result_rows)", o->name,
				  (unsigned long long)job->max_result_rows);
			goto out;
		}
		if ((rc = cf_output_csv_row(csv, st, plan.visible)) != CF_OK)
			goto too_big;
	}
	*total += csv->len;
	stats->output_rows += rows;
	log_info("output %s: computed in %.2f s%s", o->name, seconds_since(&t0),
		 plan.active ? " under the output policy" : "");
	goto out;
too_big:
	fail(why, whylen, rc, "output %s: %s", o->name,
	     rc == CF_ERR_TOO_BIG ? "the outputs are larger than 256 MiB together"
				  : cf_strerror(rc));
out:
	sqlite3_finalize(st);
	cf_policy_plan_free(&plan);
	return rc;
}

cf_err cf_worker_run(const cf_job *job, const cf_kms_release_result *rel, const cf_worker_io *io,
		     const cf_csv_limits *limits, cf_worker_stats *stats, char *why, size_t whylen)
{
	cf_sql *db = NULL;
	cf_csv_table *tables = NULL;
	cf_policy_table *ptables = NULL;
	cf_buf *csv = NULL;
	cf_age_recipient *rcpts = NULL;
	size_t nrcpts = 0, total = 0, nptables = 0;
	cf_buf model, res[2];
	cf_xgb_rows *rows = NULL;
	cf_worker_stats local;
	char msg[256];
	cf_err rc;
	if (why && whylen)
		why[0] = '\0';
	if (!stats)
		stats = &local;
	cf_buf_init(&model, CF_XGB_MAX_MODEL, true);
	cf_buf_init(&res[CF_RESULT_MAIN], CF_WORKER_MAX_RESULT_BYTES, true);
	cf_buf_init(&res[CF_RESULT_METRICS], CF_WORKER_MAX_RESULT_BYTES, true);
	memset(stats, 0, sizeof(*stats));
	if (!job || !rel || !io || !io->input_open || !io->output_open || !io->output_commit ||
	    !rel->recipients)
		return CF_ERR_ARG;
	tables = calloc(job->ninputs, sizeof(*tables));
	ptables = calloc(job->ninputs, sizeof(*ptables));
	csv = calloc(job->noutputs, sizeof(*csv));
	if (!tables || !ptables || !csv) {
		rc = CF_ERR_NOMEM;
		goto out;
	}
	for (size_t o = 0; o < job->noutputs; o++)
		cf_buf_init(&csv[o], 0, true);

	/* Every output must have its recipients in the KMS's statement: fail before any work. */
	for (size_t o = 0; o < job->noutputs; o++) {
		rc = cf_output_recipients(rel->recipients, job->outputs[o].name, &rcpts, &nrcpts, msg,
					  sizeof(msg));
		free(rcpts);
		rcpts = NULL;
		if (rc != CF_OK) {
			fail(why, whylen, CF_ERR_AUTH, "%s", msg);
			rc = CF_ERR_AUTH;
			goto out;
		}
	}

	if ((rc = cf_sql_open(&db)) != CF_OK) {
		fail(why, whylen, rc, "the database does not open: %s", cf_strerror(rc));
		goto out;
	}
	/* The model first: xgboost.predict's table is predicted as it is read. */
	for (size_t i = 0; i < job->ninputs; i++) {
		if (job->inputs[i].format == CF_INPUT_XGB_MODEL) {
			/* job.c allows one model input, to xgboost.predict. */
			cf_buf_free(&model);
			if ((rc = load_model(&job->inputs[i], rel, io, &model, why, whylen)) != CF_OK)
				goto out;
		}
	}
	for (size_t i = 0; i < job->ninputs; i++) {
		if (job->inputs[i].format == CF_INPUT_XGB_MODEL)
			continue;
		if (job->inputs[i].direct) {
			/* job.c allows one, xgboost.predict's function.table. */
			cf_xgb_rows_free(rows);
			rows = NULL;
			if ((rc = load_rows(job, &job->inputs[i], rel, io, &model,
					    &res[CF_RESULT_MAIN], &rows, why, whylen)) != CF_OK)
				goto out;
			stats->input_rows += cf_xgb_rows_count(rows);
			continue;
		}
		if ((rc = load_input(db, &job->inputs[i], rel, io, limits, &tables[i], why, whylen)) !=
		    CF_OK)
			goto out;
		stats->input_rows += tables[i].rows;
		ptables[nptables++] = (cf_policy_table){ tables[i].name, tables[i].columns,
							 tables[i].ncolumns };
		if ((rc = cf_sql_allow_table(db, job->inputs[i].table)) != CF_OK)
			goto out;
	}
	if ((rc = cf_sql_arm(db, job->time_budget_seconds)) != CF_OK) {
		fail(why, whylen, rc, "the fence does not arm: %s", cf_strerror(rc));
		goto out;
	}

	/* Every result before any ciphertext leaves: a refused output releases nothing. */
	if (job->kind == CF_FN_XGB_TRAIN || job->kind == CF_FN_XGB_PREDICT) {
		if ((rc = run_function(db, job, &model, rows, res, stats, why, whylen)) != CF_OK)
			goto out;
		cf_buf_free(&model);
		cf_xgb_rows_free(rows);
		rows = NULL;
	}
	for (size_t o = 0; o < job->noutputs; o++) {
		const cf_job_output *out = &job->outputs[o];
		if (!out->query && (job->kind == CF_FN_STATS || job->kind == CF_FN_PSI)) {
			/* stats and psi compute each output (psi: the form the task grants it). */
			cf_buf_init(&csv[o], CF_WORKER_MAX_RESULT_BYTES - total, true);
			struct timespec t0;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			rc = CF_ERR_UNSUPPORTED;
#if CF_JOB_HAVE_STATS
			if (job->kind == CF_FN_STATS)
				rc = cf_stats_run(db, job->function, out->name, &job->policy, &csv[o],
						  why, whylen);
#endif
#if CF_JOB_HAVE_PSI
			if (job->kind == CF_FN_PSI)
				rc = cf_psi_run(db, job->function, out->name, &job->policy, &csv[o],
						why, whylen);
#endif
			if (rc != CF_OK) {
				if (!why || !why[0])
					fail(why, whylen, rc, "output %s: %s", out->name,
					     cf_strerror(rc));
				goto out;
			}
			total += csv[o].len;
			log_info("output %s: computed in %.2f s", out->name, seconds_since(&t0));
			continue;
		}
		if (!out->query) {
			/* The function's result (job.c: only for kinds other than sql). */
			cf_buf *r = &res[out->result];
			bool last = true;
			for (size_t k = o + 1; k < job->noutputs; k++)
				last &= job->outputs[k].query || job->outputs[k].result != out->result;
			cf_buf_init(&csv[o], CF_WORKER_MAX_RESULT_BYTES - total, true);
			if (last && r->len <= csv[o].max) {
				/* Its last taker: moved, not copied. */
				size_t max = csv[o].max;
				csv[o] = *r;
				csv[o].max = max;
				cf_buf_init(r, 0, true);
			} else if ((rc = cf_buf_append(&csv[o], r->data, r->len)) != CF_OK) {
				fail(why, whylen, rc, "output %s: %s", out->name,
				     rc == CF_ERR_TOO_BIG ? "the outputs are larger than 256 MiB "
							    "together" : cf_strerror(rc));
				goto out;
			}
			total += csv[o].len;
			continue;
		}
		if ((rc = run_output(db, job, out, ptables, nptables, &csv[o], &total, stats, why,
				     whylen)) != CF_OK)
			goto out;
	}
	cf_buf_free(&res[CF_RESULT_MAIN]);
	cf_buf_free(&res[CF_RESULT_METRICS]);
	cf_sql_close(db);
	db = NULL;

	for (size_t o = 0; o < job->noutputs; o++) {
		const char *name = job->outputs[o].name;
		cf_writer w;
		if ((rc = cf_output_recipients(rel->recipients, name, &rcpts, &nrcpts, msg,
					       sizeof(msg))) != CF_OK) {
			fail(why, whylen, rc, "%s", msg);
			goto out;
		}
		if ((rc = io->output_open(io->arg, name, &w)) != CF_OK) {
			fail(why, whylen, rc, "output %s: cannot start the upload: %s", name,
			     cf_strerror(rc));
			goto out;
		}
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = cf_output_encrypt(rcpts, nrcpts, &csv[o], w);
		double encrypt_s = seconds_since(&t0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (rc == CF_OK)
			rc = io->output_commit(io->arg, name);
		if (rc != CF_OK) {
			if (io->output_abort)
				io->output_abort(io->arg, name);
			fail(why, whylen, rc, "output %s: encrypting or uploading failed: %s", name,
			     cf_strerror(rc));
			goto out;
		}
		/* Wipe each result as soon as it is sealed. */
		cf_buf_free(&csv[o]);
		free(rcpts);
		rcpts = NULL;
		stats->outputs++;
		log_info("output %s: encrypted to %zu recipient%s and committed in %.2f s: encrypt "
			 "%.2f s, upload %.2f s", name, nrcpts, nrcpts == 1 ? "" : "s",
			 seconds_since(&t0), encrypt_s, seconds_since(&t1));
	}
	rc = CF_OK;
out:
	free(rcpts);
	cf_buf_free(&model);
	cf_xgb_rows_free(rows);
	cf_buf_free(&res[CF_RESULT_MAIN]);
	cf_buf_free(&res[CF_RESULT_METRICS]);
	cf_sql_close(db);
	for (size_t o = 0; csv && o < job->noutputs; o++)
		cf_buf_free(&csv[o]);
	free(csv);
	for (size_t i = 0; tables && i < job->ninputs; i++)
		cf_csv_table_free(&tables[i]);
	free(tables);
	free(ptables);
	return rc;
}
