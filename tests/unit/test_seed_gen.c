/*
 * The seed-inference benchmark's programs (bench/seed_inference), run as
 * processes: seed_gen is deterministic and writes the documented CSV, and
 * xgb_plain trains a model that beats chance on held-out rows and predicts
 * the same twice for the same seed; bad models and bad CSVs fail cleanly.
 * SEED_GEN and XGB_PLAIN name the programs (tests/unit/meson.build).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];

static const char *prog(const char *env)
{
	const char *p = getenv(env);
	if (!p || !*p) {
		fprintf(stderr, "%s is not set\n", env);
		abort();
	}
	return p;
}

/* A path in tmpdir; up to 64 live at once (every test starts afresh). */
static char *tpath(const char *name)
{
	static char bufs[64][512];
	static int i;
	char *b = bufs[i++ % 64];
	snprintf(b, sizeof(bufs[0]), "%s/%s", tmpdir, name);
	return b;
}

static char out_path[512], err_path[512];

/* Runs argv with stdout and stderr to tmpdir/out and tmpdir/err; returns
 * the exit status (-1 if killed). */
static int run(const char *const *argv)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o < 0 || e < 0)
			_exit(127);
		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = 0;
	fclose(f);
	if (len)
		*len = (size_t)n;
	return p;
}

static void spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void gen(const char *rows, const char *seed, const char *out)
{
	const char *argv[] = { prog("SEED_GEN"), "--rows", rows, "--seed", seed, "-o", out, NULL };
	assert_int_equal(run(argv), 0);
}

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_seed_gen.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(out_path, sizeof(out_path), "%s/out", tmpdir);
	snprintf(err_path, sizeof(err_path), "%s/err", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Same seed: the same bytes; another seed: other bytes; fewer rows: a
 * prefix (each row has its own generator). */
static void test_gen_deterministic(void **state)
{
	(void)state;
	gen("3000", "7", tpath("a.csv"));
	gen("3000", "7", tpath("b.csv"));
	gen("3000", "8", tpath("c.csv"));
	gen("1000", "7", tpath("d.csv"));
	size_t la, lb, lc, ld;
	char *a = slurp(tpath("a.csv"), &la), *b = slurp(tpath("b.csv"), &lb);
	char *c = slurp(tpath("c.csv"), &lc), *d = slurp(tpath("d.csv"), &ld);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	assert_true(lc != la || memcmp(a, c, la) != 0);
	assert_true(ld < la);
	assert_memory_equal(a, d, ld);
	free(a);
	free(b);
	free(c);
	free(d);
}

/* The bytes of 1000 rows, seed 1, are pinned: the benchmark's data set
 * does not change unnoticed (between builds, compilers or sessions). */
static void test_gen_golden(void **state)
{
	(void)state;
	gen("1000", "1", tpath("g.csv"));
	size_t n;
	char *p = slurp(tpath("g.csv"), &n);
	unsigned char md[32];
	unsigned mdlen;
	assert_int_equal(EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL), 1);
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(hex, "97b31e53d623e20b5d180bb72b0852710dbb88705dea6c3a76e9d85850426e9a");
	free(p);
}

/* Splits line (modified) at commas; returns the number of fields. */
static int split(char *line, char **f, int max)
{
	int n = 0;
	for (char *p = line;; p++) {
		if (n == max)
			return max + 1;
		f[n++] = p;
		p = strchr(p, ',');
		if (!p)
			return n;
		*p = 0;
	}
}

static int is_uint(const char *s)
{
	if (!*s || (s[0] == '0' && s[1]))
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static void test_gen_well_formed(void **state)
{
	(void)state;
	enum { ROWS = 3000 };
	gen("3000", "11", tpath("w.csv"));
	char *text = slurp(tpath("w.csv"), NULL);
	char *save, *line = strtok_r(text, "\n", &save);
	char header[512] = "id,label";
	for (int j = 1; j <= 13; j++)
		snprintf(header + strlen(header), sizeof(header) - strlen(header), ",I%d", j);
	for (int j = 1; j <= 26; j++)
		snprintf(header + strlen(header), sizeof(header) - strlen(header), ",C%d", j);
	assert_string_equal(line, header);
	long rows = 0, pos = 0, missing[41] = { 0 };
	uint32_t c9[4] = { 0 };
	int c9n = 0;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *f[42];
		assert_int_equal(split(line, f, 41), 41);
		char want[24];
		snprintf(want, sizeof(want), "%ld", rows);
		assert_string_equal(f[0], want);
		assert_true(!strcmp(f[1], "0") || !strcmp(f[1], "1"));
		pos += f[1][0] == '1';
		for (int j = 2; j < 41; j++) {
			if (!*f[j]) {
				missing[j]++;
				continue;
			}
			if (j == 3 && !strcmp(f[j], "-1"))
				continue; /* I2 */
			assert_true(is_uint(f[j]));
			if (j >= 15)
				assert_true(strtoul(f[j], NULL, 10) < (1UL << 24));
		}
		/* C9 has three categories. */
		uint32_t v = (uint32_t)strtoul(f[15 + 8], NULL, 10);
		int seen = 0;
		for (int k = 0; k < c9n; k++)
			seen |= c9[k] == v;
		if (!seen) {
			assert_true(c9n < 3);
			c9[c9n++] = v;
		}
		rows++;
	}
	assert_int_equal(rows, ROWS);
	/* About a quarter positive; Criteo's shares of missing values. */
	assert_in_range(pos * 100 / ROWS, 18, 35);
	assert_in_range(missing[2 + 11] * 100 / ROWS, 70, 84); /* I12: 77 % */
	assert_in_range(missing[2 + 0] * 100 / ROWS, 38, 52);  /* I1: 45 % */
	assert_true(missing[2 + 7] * 100 / ROWS < 2);           /* I8: 0.1 % */
	assert_in_range(missing[15 + 21] * 100 / ROWS, 69, 83); /* C22: 76 % */
	assert_int_equal(missing[15 + 0], 0);                   /* C1 */
	free(text);
	(void)c9;
}

/* "id,prediction" rows into p[]; returns the row count. */
static size_t read_predictions(const char *path, double *p, size_t max)
{
	char *text = slurp(path, NULL);
	char *save, *line = strtok_r(text, "\n", &save);
	assert_string_equal(line, "id,prediction");
	size_t n = 0;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		assert_true(n < max);
		char *comma = strchr(line, ',');
		assert_non_null(comma);
		*comma = 0;
		char want[24];
		snprintf(want, sizeof(want), "%zu", n);
		assert_string_equal(line, want);
		char *end;
		p[n] = strtod(comma + 1, &end);
		assert_true(*end == 0);
		assert_true(p[n] > 0 && p[n] < 1);
		n++;
	}
	free(text);
	return n;
}

/* AUC of scores against labels: the share of (positive, negative) pairs
 * ranked right, ties counting half. */
static double auc(const double *s, const int *y, size_t n)
{
	double good = 0, pairs = 0;
	for (size_t i = 0; i < n; i++) {
		if (!y[i])
			continue;
		for (size_t j = 0; j < n; j++) {
			if (y[j])
				continue;
			pairs++;
			good += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
		}
	}
	return good / pairs;
}

static void test_xgb_train_predict(void **state)
{
	(void)state;
	enum { ROWS = 2000, TRAIN = 1500 };
	const char *x = prog("XGB_PLAIN");
	char *data = tpath("x.csv");
	gen("2000", "5", data);
	char *m1 = tpath("m1.json"), *m2 = tpath("m2.json");
	const char *t1[] = { x, "train", "--data", data, "--model", m1, "--rows", "1500",
			     "--seed", "3", "--nthread", "2", NULL };
	assert_int_equal(run(t1), 0);
	char *out = slurp(out_path, NULL);
	assert_non_null(strstr(out, "train_s="));
	assert_non_null(strstr(out, "peak_rss_kb="));
	free(out);
	const char *t2[] = { x, "train", "--data", data, "--model", m2, "--rows", "1500",
			     "--seed", "3", "--nthread", "2", NULL };
	assert_int_equal(run(t2), 0);
	/* The model is XGBoost JSON, 100 trees. */
	char *model = slurp(m1, NULL);
	assert_true(model[0] == '{');
	assert_non_null(strstr(model, "\"num_trees\":\"100\""));
	free(model);

	char *p1 = tpath("p1.csv"), *p2 = tpath("p2.csv");
	const char *q1[] = { x, "predict", "--model", m1, "--data", data, "--out", p1, NULL };
	assert_int_equal(run(q1), 0);
	out = slurp(out_path, NULL);
	assert_non_null(strstr(out, "predict_s="));
	assert_non_null(strstr(out, "rows=2000\n"));
	free(out);
	const char *q2[] = { x, "predict", "--model", m2, "--data", data, "--out", p2, NULL };
	assert_int_equal(run(q2), 0);

	static double a[ROWS], b[ROWS];
	assert_int_equal(read_predictions(p1, a, ROWS), ROWS);
	assert_int_equal(read_predictions(p2, b, ROWS), ROWS);
	for (size_t i = 0; i < ROWS; i++)
		assert_true(fabs(a[i] - b[i]) <= 1e-6);

	/* Held-out rows: better than chance. */
	static int y[ROWS];
	char *text = slurp(data, NULL);
	char *save, *line = strtok_r(text, "\n", &save);
	for (size_t i = 0; i < ROWS; i++) {
		line = strtok_r(NULL, "\n", &save);
		assert_non_null(line);
		y[i] = strchr(line, ',')[1] == '1';
	}
	free(text);
	double held_out = auc(a + TRAIN, y + TRAIN, ROWS - TRAIN);
	print_message("held-out AUC %.3f\n", held_out);
	assert_true(held_out > 0.6);
}

/* Runs argv, which must fail with status 1 and say `what` on stderr. */
static void fails_with(const char *const *argv, const char *what)
{
	assert_int_equal(run(argv), 1);
	char *err = slurp(err_path, NULL);
	if (!strstr(err, what))
		fail_msg("stderr \"%s\" lacks \"%s\"", err, what);
	free(err);
}

static void test_xgb_errors(void **state)
{
	(void)state;
	const char *x = prog("XGB_PLAIN");
	char *data = tpath("e.csv"), *model = tpath("e.json"), *pred = tpath("e.pred");
	gen("300", "2", data);
	const char *train[] = { x, "train", "--data", data, "--model", model, NULL };
	assert_int_equal(run(train), 0);

	/* Malformed models. */
	char *bad = tpath("bad.json");
	spit(bad, "{\"learner\": {\"gradient_booster\": 7}}");
	const char *p1[] = { x, "predict", "--model", bad, "--data", data, "--out", pred, NULL };
	fails_with(p1, "not a valid XGBoost model");
	spit(bad, "hello");
	fails_with(p1, "not an XGBoost JSON model");

	/* No label column to train on. */
	char *csv = tpath("bad.csv");
	spit(csv, "id,a,b\n1,2,3\n");
	const char *t1[] = { x, "train", "--data", csv, "--model", model, NULL };
	fails_with(t1, "no \"label\" column");
	/* A non-numeric feature. */
	spit(csv, "id,label,a,b\n1,0,2,3\n2,1,x7,4\n");
	fails_with(t1, "bad.csv:3: column a: not a number: \"x7\"");
	/* A ragged row. */
	spit(csv, "id,label,a,b\n1,0,2,3\n2,1,4\n");
	fails_with(t1, "bad.csv:3: 3 fields, the header has 4");
	spit(csv, "id,label,a,b\n1,0,2,3,5\n");
	fails_with(t1, "more fields than the header");
	/* Data with other columns than the model's. */
	spit(csv, "id,a,b\n1,2,3\n");
	const char *p2[] = { x, "predict", "--model", model, "--data", csv, "--out", pred, NULL };
	fails_with(p2, "2 feature columns, the model takes 39");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gen_deterministic),
		cmocka_unit_test(test_gen_golden),
		cmocka_unit_test(test_gen_well_formed),
		cmocka_unit_test(test_xgb_train_predict),
		cmocka_unit_test(test_xgb_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
