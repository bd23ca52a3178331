/*
 * soft_workload: the CPU- and memory-heavy jobs the soft TEE benchmark
 * runs plain and under coffer-launch.
 *
 *   soft_workload score [ROWS]   tree-ensemble scoring of a ROWS x 39 float
 *                                matrix (default 1,500,000), 100 trees of
 *                                depth 6, on 2 threads: the reference's
 *                                inference test
 *   soft_workload sqlite [ROWS]  an in-memory SQLite table of ROWS rows
 *                                (default 1,000,000) and a GROUP BY aggregate
 *
 * Data is generated in the process (deterministic), on the heap, so under
 * the soft TEE it lives in secretmem. Prints one line:
 *   job=score rows=N setup_s=X compute_s=Y checksum=Z
 * compute_s is the warm-instance figure; the benchmark reports the cold
 * start (launch, pre-fault, setup) from the wall time around it.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#define FEATURES 39
#define TREES 100
#define DEPTH 6
#define NODES ((1 << DEPTH) - 1)
#define LEAVES (1 << DEPTH)
#define THREADS 2

struct tree {
	uint8_t feature[NODES];
	float threshold[NODES];
	float leaf[LEAVES];
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	/* splitmix64: deterministic and fast */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static float rngf(void)
{
	return (float)(rng() >> 40) / (float)(1 << 24);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct score_job {
	const float *x;
	const struct tree *trees;
	float *out;
	size_t begin, end;
};

static void *score_range(void *arg)
{
	struct score_job *j = arg;
	for (size_t r = j->begin; r < j->end; r++) {
		const float *row = j->x + r * FEATURES;
		float sum = 0;
		for (int t = 0; t < TREES; t++) {
			const struct tree *tr = &j->trees[t];
			int node = 0;
			for (int d = 0; d < DEPTH; d++)
				node = 2 * node + 1 + (row[tr->feature[node]] >= tr->threshold[node]);
			sum += tr->leaf[node - NODES];
		}
		j->out[r] = sum;
	}
	return NULL;
}

static int job_score(size_t rows)
{
	double t0 = now();
	float *x = malloc(rows * FEATURES * sizeof(float));
	float *out = malloc(rows * sizeof(float));
	struct tree *trees = malloc(TREES * sizeof(*trees));
	if (!x || !out || !trees)
		return 1;
	for (size_t i = 0; i < rows * FEATURES; i++)
		x[i] = rngf();
	for (int t = 0; t < TREES; t++) {
		for (int n = 0; n < NODES; n++) {
			trees[t].feature[n] = (uint8_t)(rng() % FEATURES);
			trees[t].threshold[n] = rngf();
		}
		for (int l = 0; l < LEAVES; l++)
			trees[t].leaf[l] = rngf() - 0.5f;
	}
	double t1 = now();
	pthread_t th[THREADS];
	struct score_job jobs[THREADS];
	for (int i = 0; i < THREADS; i++) {
		jobs[i] = (struct score_job){ x, trees, out, rows * (size_t)i / THREADS,
					      rows * (size_t)(i + 1) / THREADS };
		pthread_create(&th[i], NULL, score_range, &jobs[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	double t2 = now();
	double checksum = 0;
	for (size_t r = 0; r < rows; r++)
		checksum += out[r];
	printf("job=score rows=%zu setup_s=%.4f compute_s=%.4f checksum=%.6f\n", rows, t1 - t0,
	       t2 - t1, checksum);
	free(x);
	free(out);
	free(trees);
	return 0;
}

static int job_sqlite(size_t rows)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	double t0 = now();
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		return 1;
	sqlite3_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
			 "CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, val REAL, tag TEXT);"
			 "BEGIN;",
		     NULL, NULL, NULL);
	if (sqlite3_prepare_v2(db, "INSERT INTO t(grp, val, tag) VALUES (?, ?, ?)", -1, &st, NULL) !=
	    SQLITE_OK)
		return 1;
	char tag[32];
	for (size_t i = 0; i < rows; i++) {
		snprintf(tag, sizeof(tag), "row-%016llx", (unsigned long long)rng());
		sqlite3_bind_int(st, 1, (int)(rng() % 1000));
		sqlite3_bind_double(st, 2, rngf() * 1000.0);
		sqlite3_bind_text(st, 3, tag, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			return 1;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL);
	double t1 = now();
	double checksum = 0;
	for (int pass = 0; pass < 5; pass++) {
		if (sqlite3_prepare_v2(db,
				       "SELECT grp, count(*), avg(val), min(tag), max(val) FROM t "
				       "GROUP BY grp ORDER BY 3 DESC",
				       -1, &st, NULL) != SQLITE_OK)
			return 1;
		while (sqlite3_step(st) == SQLITE_ROW)
			checksum += sqlite3_column_double(st, 2) + sqlite3_column_int(st, 1);
		sqlite3_finalize(st);
	}
	double t2 = now();
	printf("job=sqlite rows=%zu setup_s=%.4f compute_s=%.4f checksum=%.6f\n", rows, t1 - t0,
	       t2 - t1, checksum);
	sqlite3_close(db);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: soft_workload score|sqlite [ROWS]\n");
		return 2;
	}
	size_t rows = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
	if (strcmp(argv[1], "score") == 0)
		return job_score(rows ? rows : 1500000);
	if (strcmp(argv[1], "sqlite") == 0)
		return job_sqlite(rows ? rows : 1000000);
	fprintf(stderr, "soft_workload: unknown job '%s'\n", argv[1]);
	return 2;
}
