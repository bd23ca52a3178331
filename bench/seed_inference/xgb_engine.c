/*
 * xgb_engine: coffer-enclave's own xgboost.predict (enclave/xgb.c and
 * enclave/csv.c, compiled in) in an ordinary process on a plaintext CSV:
 * no TEE, no secretmem, no key release, no decryption, no platform. The
 * seed-inference benchmark (bench/seed-inference.sh) runs it beside
 * xgb_plain (the usual way to run XGBoost: parse, DMatrix, predict) so
 * that the enclave's figures split into what the engine does differently
 * and what confidentiality costs.
 *
 *   xgb_engine --model MODEL.json --data FILE.csv --out PRED.csv [--nthread 2]
 *
 * The features are every column but "id" and "label", in header order
 * (as the benchmark's task lists them); "id" is the id column. The file is
 * read in 1 MiB pieces into the function's CSV reader, as the enclave
 * feeds it decrypted plaintext; the predictions ("id,prediction", CRLF)
 * are written once complete, as the enclave encrypts them.
 *
 * Prints key=value lines: read_s (from the first byte read to the end of
 * the input: parsing, with the predictions alongside), finish_s (the last
 * predictions after the input ended), write_s, total_s (start to exit,
 * model loading included), peak_rss_kb, rows. Errors go to standard error,
 * exit status 1 (2: usage).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "coffer/buf.h"
#include "coffer/log.h"
#include "xgb.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static _Noreturn void die(const char *what, const char *why)
{
	fprintf(stderr, "xgb_engine: %s: %s\n", what, why);
	exit(1);
}

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: xgb_engine --model MODEL.json --data FILE.csv --out PRED.csv "
			"[--nthread 2]\n");
	exit(2);
}

static void read_file(const char *path, cf_buf *out)
{
	FILE *f = fopen(path, "rb");
	uint8_t piece[65536];
	size_t n;
	if (!f)
		die(path, strerror(errno));
	while ((n = fread(piece, 1, sizeof(piece), f)) > 0) {
		if (cf_buf_append(out, piece, n) != CF_OK)
			die(path, "too large");
	}
	if (ferror(f))
		die(path, strerror(errno));
	fclose(f);
}

/* The function as the benchmark's task writes it: features from the header. */
static json_t *function_of(const char *data, int nthread)
{
	FILE *f = fopen(data, "rb");
	char *line = NULL;
	size_t cap = 0;
	if (!f)
		die(data, strerror(errno));
	ssize_t n = getline(&line, &cap, f);
	fclose(f);
	if (n <= 0)
		die(data, "no header row");
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	json_t *features = json_array();
	for (char *save = NULL, *name = strtok_r(line, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		if (strcmp(name, "id") != 0 && strcmp(name, "label") != 0)
			json_array_append_new(features, json_string(name));
	}
	free(line);
	return json_pack("{s:s, s:s, s:s, s:o, s:s, s:i}", "kind", "xgboost.predict", "model", "m",
			 "table", "data", "features", features, "id", "id", "nthread", nthread);
}

int main(int argc, char **argv)
{
	const char *model_path = NULL, *data = NULL, *out_path = NULL;
	int nthread = 2;
	double t0 = now();
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--model"))
			model_path = argv[++i];
		else if (!strcmp(argv[i], "--data"))
			data = argv[++i];
		else if (!strcmp(argv[i], "--out"))
			out_path = argv[++i];
		else if (!strcmp(argv[i], "--nthread"))
			nthread = atoi(argv[++i]);
		else
			usage();
	}
	if (!model_path || !data || !out_path || nthread < 1)
		usage();
	cf_log_init("xgb_engine", getenv("XGB_ENGINE_LOG") ? CF_LOG_INFO : CF_LOG_WARN, false);

	cf_buf model, csv;
	cf_buf_init(&model, CF_XGB_MAX_MODEL, true);
	cf_buf_init(&csv, (size_t)1 << 30, true);
	read_file(model_path, &model);
	json_t *fn = function_of(data, nthread);
	cf_xgb_predict p;
	char why[256];
	if (cf_xgb_predict_parse(fn, &p, why, sizeof(why)) != CF_OK)
		die("function", why);
	json_decref(fn);

	cf_xgb_rows *rows;
	if (cf_xgb_rows_new(&p, model.data, model.len, UINT64_MAX, &csv, &rows, why,
			    sizeof(why)) != CF_OK)
		die(model_path, why);
	cf_writer w = cf_xgb_rows_writer(rows);
	int fd = open(data, O_RDONLY);
	if (fd < 0)
		die(data, strerror(errno));
	static uint8_t piece[1 << 20];
	double t1 = now();
	for (;;) {
		ssize_t n = read(fd, piece, sizeof(piece));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(data, strerror(errno));
		if (n == 0)
			break;
		if (w.write(w.ctx, piece, (size_t)n) != CF_OK)
			die(data, cf_xgb_rows_error(rows));
	}
	close(fd);
	double t2 = now();
	if (cf_xgb_rows_finish(rows, why, sizeof(why)) != CF_OK)
		die(data, why);
	double t3 = now();
	unsigned long long nrows = (unsigned long long)cf_xgb_rows_count(rows);
	cf_xgb_rows_free(rows);

	FILE *out = fopen(out_path, "wb");
	if (!out || fwrite(csv.data, 1, csv.len, out) != csv.len || fclose(out) != 0)
		die(out_path, strerror(errno));
	double t4 = now();
	cf_buf_free(&csv);
	cf_buf_free(&model);
	cf_xgb_predict_free(&p);

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("rows=%llu\nread_s=%.3f\nfinish_s=%.3f\nwrite_s=%.3f\ntotal_s=%.3f\n"
	       "peak_rss_kb=%ld\n", nrows, t2 - t1, t3 - t2, t4 - t3, now() - t0, ru.ru_maxrss);
	return 0;
}
