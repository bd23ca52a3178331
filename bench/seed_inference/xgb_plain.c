/*
 * xgb_plain: plain XGBoost (libxgboost's C API, Debian's 1.7.4) in an
 * ordinary process, the baseline of the seed-inference benchmark
 * (bench/seed-inference.sh): what coffer-enclave's xgboost jobs are
 * compared with.
 *
 *   xgb_plain train --data FILE.csv --model OUT.json [--rows N]
 *                   [--valid-rows M] [--trees 100] [--depth 6] [--eta 0.3]
 *                   [--seed 0] [--nthread 2]
 *   xgb_plain predict --model MODEL.json --data FILE.csv --out PRED.csv
 *                   [--nthread 2]
 *
 * The CSV has a header row. A column named "id" is the row's id (a signed
 * 64-bit integer, copied to the predictions; without one, the row number),
 * "label" the binary label (train needs it; predict ignores it); every
 * other column is a numeric feature, in header order, and the feature
 * names go into the DMatrix, so a model refuses data whose columns differ.
 * An empty field is missing (NaN, XGBoost's "missing"); any other
 * non-number is an error naming the line and column.
 *
 * train reads the first N data rows (all without --rows), builds a DMatrix
 * from a dense float array, trains `trees` rounds of binary:logistic with
 * the histogram method (depth, eta, seed, nthread as given), and writes
 * the model as XGBoost JSON. With --valid-rows, the M rows after them are
 * a validation set whose AUC and log loss are printed after training (not
 * timed as training).
 * predict loads the model, reads the whole CSV, builds the DMatrix, and
 * writes "id,prediction" (the probability, %.9g: a float32 exactly).
 *
 * On success prints timings and the peak RSS as key=value lines on
 * standard output: parse_s (reading and converting the CSV), dmatrix_s,
 * train_s or predict_s, save_s or write_s, total_s (from start to exit,
 * model loading included), peak_rss_kb (getrusage ru_maxrss), rows, and
 * features. Errors go to standard error, exit status 1 (2: usage).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xgboost/c_api.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2))) static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("xgb_plain: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* Every XGBoost call: its error message, then exit. */
#define XGB(call)                                                          \
	do {                                                               \
		if ((call) != 0)                                           \
			die("%s: %s", #call, XGBGetLastError());           \
	} while (0)

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

/* A CSV read into a dense row-major float matrix. */
struct table {
	size_t rows, cap, nfeat;
	float *x;       /* rows x nfeat, NaN = missing */
	float *label;   /* rows, if the CSV has a label column */
	int64_t *id;    /* rows, if it has an id column */
	char **names;   /* nfeat feature names */
};

enum { COL_FEATURE, COL_ID, COL_LABEL };

struct reader {
	const char *path;
	int fd;
	char *buf;
	size_t cap, start, end;
	int eof;
	uint64_t line;
};

enum { READ_BUF = 8 << 20 };

/* The next line (without its newline and any \r), NUL-terminated in place;
 * NULL at the end of the file. */
static char *next_line(struct reader *r, size_t *len)
{
	for (;;) {
		char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		if (nl || (r->eof && r->end > r->start)) {
			char *line = r->buf + r->start;
			size_t n = nl ? (size_t)(nl - line) : r->end - r->start;
			r->start += n + (nl != NULL);
			if (n && line[n - 1] == '\r')
				n--;
			line[n] = 0; /* the buffer keeps one spare byte */
			r->line++;
			*len = n;
			return line;
		}
		if (r->eof)
			return NULL;
		if (r->start) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		if (r->end == r->cap)
			die("%s:%" PRIu64 ": line longer than %zu bytes", r->path, r->line + 1, r->cap);
		ssize_t got = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			die("%s: read: %s", r->path, strerror(errno));
		}
		if (got == 0)
			r->eof = 1;
		r->end += (size_t)got;
	}
}

/* A numeric field [s, e): empty = NaN. Integers of up to 15 digits take a
 * fast path (exact in a double, so one rounding to float, as strtof);
 * anything else goes through strtof. Returns 0, or -1 if not a number. */
static int parse_float(const char *s, const char *e, float *out)
{
	if (s == e) {
		*out = NAN;
		return 0;
	}
	const char *p = s;
	int neg = 0;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (p < e && e - p <= 15) {
		uint64_t v = 0;
		const char *q = p;
		while (q < e && (unsigned)(*q - '0') < 10)
			v = v * 10 + (uint64_t)(*q++ - '0');
		if (q == e) {
			double d = (double)v;
			*out = (float)(neg ? -d : d);
			return 0;
		}
	}
	char tmp[64];
	size_t n = (size_t)(e - s);
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	char *end;
	errno = 0;
	float f = strtof(tmp, &end);
	if (end != tmp + n || end == tmp)
		return -1;
	*out = f;
	return 0;
}

static int parse_i64(const char *s, const char *e, int64_t *out)
{
	char tmp[32];
	size_t n = (size_t)(e - s);
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	char *end;
	errno = 0;
	long long v = strtoll(tmp, &end, 10);
	if (errno || end != tmp + n)
		return -1;
	*out = v;
	return 0;
}

/* Reads the first max_rows data rows (0 = all). need_label: the CSV must
 * have a label column, and no label may be missing. */
static void read_csv(const char *path, uint64_t max_rows, int need_label, struct table *t)
{
	memset(t, 0, sizeof(*t));
	struct reader r = { .path = path, .cap = READ_BUF };
	r.fd = open(path, O_RDONLY);
	if (r.fd < 0)
		die("%s: %s", path, strerror(errno));
	r.buf = xrealloc(NULL, r.cap + 1);

	size_t len;
	char *line = next_line(&r, &len);
	if (!line)
		die("%s: empty file (no header row)", path);
	size_t ncols = 1;
	for (size_t i = 0; i < len; i++)
		ncols += line[i] == ',';
	int *kind = xrealloc(NULL, ncols * sizeof(int));
	char **colname = xrealloc(NULL, ncols * sizeof(char *));
	t->names = xrealloc(NULL, ncols * sizeof(char *));
	int has_id = 0, has_label = 0;
	char *f = line;
	for (size_t c = 0; c < ncols; c++) {
		char *comma = strchr(f, ',');
		if (comma)
			*comma = 0;
		if (!strcmp(f, "id") && !has_id) {
			kind[c] = COL_ID;
			has_id = 1;
		} else if (!strcmp(f, "label") && !has_label) {
			kind[c] = COL_LABEL;
			has_label = 1;
		} else {
			if (!*f)
				die("%s: header: column %zu has no name", path, c + 1);
			kind[c] = COL_FEATURE;
			if (!(t->names[t->nfeat++] = strdup(f)))
				die("out of memory");
		}
		f = comma ? comma + 1 : f + strlen(f);
	}
	/* Names for error messages that outlive the header line's buffer. */
	for (size_t c = 0, k = 0; c < ncols; c++)
		colname[c] = kind[c] == COL_FEATURE ? t->names[k++] : kind[c] == COL_ID ? "id" : "label";
	if (need_label && !has_label)
		die("%s: no \"label\" column (train needs one)", path);
	if (t->nfeat == 0)
		die("%s: no feature columns", path);

	while ((line = next_line(&r, &len)) != NULL) {
		if (len == 0)
			continue; /* a blank line (the last one, say) */
		if (max_rows && t->rows == max_rows)
			break;
		if (t->rows == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 65536;
			t->x = xrealloc(t->x, t->cap * t->nfeat * sizeof(float));
			if (has_label)
				t->label = xrealloc(t->label, t->cap * sizeof(float));
			if (has_id)
				t->id = xrealloc(t->id, t->cap * sizeof(int64_t));
		}
		float *row = t->x + t->rows * t->nfeat;
		const char *p = line, *end = line + len;
		size_t k = 0;
		for (size_t c = 0; c < ncols; c++) {
			if (p > end)
				die("%s:%" PRIu64 ": %zu fields, the header has %zu", path, r.line, c, ncols);
			const char *e = memchr(p, ',', (size_t)(end - p));
			if (!e)
				e = end;
			if (kind[c] == COL_FEATURE) {
				if (parse_float(p, e, &row[k++]) != 0)
					die("%s:%" PRIu64 ": column %s: not a number: \"%.*s\"", path,
					    r.line, colname[c], (int)(e - p > 40 ? 40 : e - p), p);
			} else if (kind[c] == COL_LABEL) {
				float v;
				if (need_label && p == e)
					die("%s:%" PRIu64 ": label: missing", path, r.line);
				if (parse_float(p, e, &v) != 0 || (need_label && isnan(v)))
					die("%s:%" PRIu64 ": label: not a number: \"%.*s\"", path, r.line,
					    (int)(e - p > 40 ? 40 : e - p), p);
				t->label[t->rows] = v;
			} else if (parse_i64(p, e, &t->id[t->rows]) != 0) {
				die("%s:%" PRIu64 ": id: not an integer: \"%.*s\"", path, r.line,
				    (int)(e - p > 40 ? 40 : e - p), p);
			}
			p = e + 1;
		}
		if (p <= end)
			die("%s:%" PRIu64 ": more fields than the header's %zu", path, r.line, ncols);
		t->rows++;
	}
	close(r.fd);
	free(r.buf);
	free(kind);
	free(colname);
	if (t->rows == 0)
		die("%s: no data rows", path);
}

static void free_table(struct table *t)
{
	free(t->x);
	free(t->label);
	free(t->id);
	for (size_t i = 0; i < t->nfeat; i++)
		free(t->names[i]);
	free(t->names);
	memset(t, 0, sizeof(*t));
}

static DMatrixHandle make_dmatrix(const struct table *t, const float *x, const float *label,
				  size_t rows, int nthread)
{
	DMatrixHandle dm;
	XGB(XGDMatrixCreateFromMat_omp(x, rows, t->nfeat, NAN, &dm, nthread));
	XGB(XGDMatrixSetStrFeatureInfo(dm, "feature_name", (const char **)t->names, t->nfeat));
	if (label)
		XGB(XGDMatrixSetFloatInfo(dm, "label", label, rows));
	return dm;
}

static long peak_rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static _Noreturn void usage(void)
{
	fprintf(stderr,
		"usage: xgb_plain train --data FILE.csv --model OUT.json [--rows N] [--valid-rows M]\n"
		"                       [--trees 100] [--depth 6] [--eta 0.3] [--seed 0] [--nthread 2]\n"
		"       xgb_plain predict --model MODEL.json --data FILE.csv --out PRED.csv [--nthread 2]\n");
	exit(2);
}

static uint64_t num_arg(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		die("bad %s: %s", what, s);
	return v;
}

struct opts {
	const char *data, *model, *out, *eta;
	uint64_t rows, valid_rows, trees, depth, seed, nthread;
};

static int train(const struct opts *o, double t0)
{
	struct table t;
	double t1 = now();
	read_csv(o->data, o->rows ? o->rows + o->valid_rows : 0, 1, &t);
	size_t ntrain = o->rows && o->rows < t.rows ? o->rows : t.rows;
	if (o->valid_rows && ntrain == t.rows)
		die("%s: %zu rows, none left for --valid-rows", o->data, t.rows);
	size_t nvalid = t.rows - ntrain;
	double t2 = now();
	DMatrixHandle dm[2];
	dm[0] = make_dmatrix(&t, t.x, t.label, ntrain, (int)o->nthread);
	dm[1] = nvalid ? make_dmatrix(&t, t.x + ntrain * t.nfeat, t.label + ntrain, nvalid,
				      (int)o->nthread) :
			 NULL;
	double t3 = now();

	BoosterHandle bst;
	XGB(XGBoosterCreate(dm, nvalid ? 2 : 1, &bst));
	char buf[32];
	XGB(XGBoosterSetParam(bst, "objective", "binary:logistic"));
	XGB(XGBoosterSetParam(bst, "tree_method", "hist"));
	snprintf(buf, sizeof(buf), "%" PRIu64, o->depth);
	XGB(XGBoosterSetParam(bst, "max_depth", buf));
	XGB(XGBoosterSetParam(bst, "eta", o->eta));
	snprintf(buf, sizeof(buf), "%" PRIu64, o->seed);
	XGB(XGBoosterSetParam(bst, "seed", buf));
	snprintf(buf, sizeof(buf), "%" PRIu64, o->nthread);
	XGB(XGBoosterSetParam(bst, "nthread", buf));
	XGB(XGBoosterSetParam(bst, "eval_metric", "auc"));
	XGB(XGBoosterSetParam(bst, "eval_metric", "logloss"));
	for (uint64_t i = 0; i < o->trees; i++)
		XGB(XGBoosterUpdateOneIter(bst, (int)i, dm[0]));
	double t4 = now();

	bst_ulong len;
	const char *json;
	XGB(XGBoosterSaveModelToBuffer(bst, "{\"format\": \"json\"}", &len, &json));
	FILE *f = fopen(o->model, "wb");
	if (!f || fwrite(json, 1, len, f) != len || fclose(f) != 0)
		die("%s: %s", o->model, strerror(errno));
	double t5 = now();

	const char *eval = NULL;
	if (nvalid) {
		const char *names[2] = { "train", "valid" };
		XGB(XGBoosterEvalOneIter(bst, (int)o->trees - 1, dm, names, 2, &eval));
	}
	printf("mode=train\nrows=%zu\nvalid_rows=%zu\nfeatures=%zu\ntrees=%" PRIu64 "\n", ntrain,
	       nvalid, t.nfeat, o->trees);
	printf("parse_s=%.3f\ndmatrix_s=%.3f\ntrain_s=%.3f\nsave_s=%.3f\n", t2 - t1, t3 - t2,
	       t4 - t3, t5 - t4);
	if (eval) {
		/* "[99]\ttrain-auc:0.8\ttrain-logloss:0.4\tvalid-auc:..." */
		const char *p = strchr(eval, '\t');
		for (; p; p = strchr(p + 1, '\t')) {
			const char *colon = strchr(p, ':');
			const char *tab = strchr(p + 1, '\t');
			if (!colon)
				break;
			printf("%.*s=%.*s\n", (int)(colon - p - 1), p + 1,
			       (int)(tab ? tab - colon - 1 : (long)strlen(colon + 1)), colon + 1);
		}
	}
	XGB(XGBoosterFree(bst));
	XGB(XGDMatrixFree(dm[0]));
	if (dm[1])
		XGB(XGDMatrixFree(dm[1]));
	free_table(&t);
	printf("total_s=%.3f\npeak_rss_kb=%ld\n", now() - t0, peak_rss_kb());
	return 0;
}

static int predict(const struct opts *o, double t0)
{
	/* The model first: a bad one fails before the data is read. */
	FILE *f = fopen(o->model, "rb");
	if (!f)
		die("%s: %s", o->model, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || st.st_size <= 0)
		die("%s: empty model", o->model);
	char *mbuf = xrealloc(NULL, (size_t)st.st_size);
	if (fread(mbuf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
		die("%s: read error", o->model);
	fclose(f);
	if (mbuf[0] != '{')
		die("%s: not an XGBoost JSON model", o->model);
	BoosterHandle bst;
	XGB(XGBoosterCreate(NULL, 0, &bst));
	if (XGBoosterLoadModelFromBuffer(bst, mbuf, (bst_ulong)st.st_size) != 0)
		die("%s: not a valid XGBoost model: %s", o->model, XGBGetLastError());
	free(mbuf);
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRIu64, o->nthread);
	XGB(XGBoosterSetParam(bst, "nthread", buf));
	bst_ulong model_feat;
	XGB(XGBoosterGetNumFeature(bst, &model_feat));
	double t1 = now();

	struct table t;
	read_csv(o->data, 0, 0, &t);
	if (t.nfeat != model_feat)
		die("%s: %zu feature columns, the model takes %" PRIu64, o->data, t.nfeat,
		    (uint64_t)model_feat);
	double t2 = now();
	DMatrixHandle dm = make_dmatrix(&t, t.x, NULL, t.rows, (int)o->nthread);
	free(t.x); /* the DMatrix has its own copy */
	t.x = NULL;
	double t3 = now();

	/* libxgboost 1.7.4 needs every field, "cache_id" included. */
	const char *cfg = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
			  "\"iteration_end\": 0, \"strict_shape\": false, \"cache_id\": 0}";
	const bst_ulong *shape;
	bst_ulong dim;
	const float *pred;
	if (XGBoosterPredictFromDMatrix(bst, dm, cfg, &shape, &dim, &pred) != 0)
		die("predict: %s", XGBGetLastError());
	if (dim < 1 || shape[0] != t.rows || (dim == 2 && shape[1] != 1) || dim > 2)
		die("predict: unexpected output shape (dim %" PRIu64 ")", (uint64_t)dim);
	double t4 = now();

	FILE *out = fopen(o->out, "wb");
	if (!out)
		die("%s: %s", o->out, strerror(errno));
	static char obuf[1 << 20];
	setvbuf(out, obuf, _IOFBF, sizeof(obuf));
	fputs("id,prediction\n", out);
	for (size_t i = 0; i < t.rows; i++) {
		if (t.id)
			fprintf(out, "%" PRId64 ",%.9g\n", t.id[i], (double)pred[i]);
		else
			fprintf(out, "%zu,%.9g\n", i, (double)pred[i]);
	}
	if (fflush(out) != 0 || ferror(out) || fclose(out) != 0)
		die("%s: write error", o->out);
	double t5 = now();

	printf("mode=predict\nrows=%zu\nfeatures=%zu\n", t.rows, t.nfeat);
	printf("load_model_s=%.3f\nparse_s=%.3f\ndmatrix_s=%.3f\npredict_s=%.3f\nwrite_s=%.3f\n",
	       t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4);
	XGB(XGDMatrixFree(dm));
	XGB(XGBoosterFree(bst));
	free_table(&t);
	printf("total_s=%.3f\npeak_rss_kb=%ld\n", now() - t0, peak_rss_kb());
	return 0;
}

int main(int argc, char **argv)
{
	double t0 = now();
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	struct opts o = { .trees = 100, .depth = 6, .eta = "0.3", .seed = 0, .nthread = 2 };
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(a, "--data"))
			o.data = v;
		else if (!strcmp(a, "--model"))
			o.model = v;
		else if (!strcmp(a, "--out"))
			o.out = v;
		else if (!strcmp(a, "--rows"))
			o.rows = num_arg(v, a);
		else if (!strcmp(a, "--valid-rows"))
			o.valid_rows = num_arg(v, a);
		else if (!strcmp(a, "--trees"))
			o.trees = num_arg(v, a);
		else if (!strcmp(a, "--depth"))
			o.depth = num_arg(v, a);
		else if (!strcmp(a, "--eta"))
			o.eta = v;
		else if (!strcmp(a, "--seed"))
			o.seed = num_arg(v, a);
		else if (!strcmp(a, "--nthread"))
			o.nthread = num_arg(v, a);
		else
			usage();
	}
	if (!o.data || !o.model || o.nthread == 0)
		usage();
	if (!strcmp(mode, "train")) {
		if (o.trees == 0 || o.trees > 100000)
			die("bad --trees");
		if (o.valid_rows && !o.rows)
			die("--valid-rows needs --rows");
		return train(&o, t0);
	}
	if (!strcmp(mode, "predict")) {
		if (!o.out)
			usage();
		return predict(&o, t0);
	}
	usage();
}
