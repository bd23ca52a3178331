/* Unit tests for lib/io.c: readers, writers and atomic output files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer/io.h"

static void test_read_full_one_byte_reads(void **state)
{
	(void)state;
	uint8_t src[1000];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7);
	/* max_read = 1: every read returns one byte, read_full must loop. */
	cf_mem_reader m = { .data = src, .len = sizeof(src), .max_read = 1 };
	cf_reader r = cf_mem_reader_of(&m);
	uint8_t buf[1200];
	size_t got = 0;
	assert_int_equal(cf_read_full(r, buf, 300, &got), CF_OK);
	assert_int_equal(got, 300);
	assert_memory_equal(buf, src, 300);
	/* Asking for more than is left: the rest, and got < cap says "end". */
	assert_int_equal(cf_read_full(r, buf, sizeof(buf), &got), CF_OK);
	assert_int_equal(got, 700);
	assert_memory_equal(buf, src + 300, 700);
	/* At the end: zero. */
	assert_int_equal(cf_read_full(r, buf, sizeof(buf), &got), CF_OK);
	assert_int_equal(got, 0);
	/* cap 0 reads nothing. */
	m.off = 0;
	got = 99;
	assert_int_equal(cf_read_full(r, buf, 0, &got), CF_OK);
	assert_int_equal(got, 0);
	assert_int_equal(m.off, 0);

	/* Odd chunk sizes give the same bytes. */
	for (size_t chunk = 1; chunk < 20; chunk += 3) {
		cf_mem_reader m2 = { .data = src, .len = sizeof(src), .max_read = chunk };
		uint8_t out[1000];
		assert_int_equal(cf_read_full(cf_mem_reader_of(&m2), out, sizeof(out), &got), CF_OK);
		assert_int_equal(got, sizeof(out));
		assert_memory_equal(out, src, sizeof(out));
	}
	/* Empty source. */
	cf_mem_reader e = { .data = NULL, .len = 0 };
	assert_int_equal(cf_read_full(cf_mem_reader_of(&e), buf, 10, &got), CF_OK);
	assert_int_equal(got, 0);
}

/* A reader that yields a few bytes and then fails. */
struct failing {
	int calls;
};

static cf_err failing_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	struct failing *f = ctx;
	if (f->calls++ >= 2)
		return CF_ERR_IO;
	buf[0] = 'x';
	*got = cap ? 1 : 0;
	return CF_OK;
}

/* A broken reader that reports more bytes than it was allowed to write. */
static cf_err lying_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	(void)ctx;
	(void)buf;
	*got = cap + 5;
	return CF_OK;
}

static void test_read_full_errors(void **state)
{
	(void)state;
	struct failing f = { 0 };
	cf_reader r = { failing_read, &f };
	uint8_t buf[10];
	size_t got = 0;
	assert_int_equal(cf_read_full(r, buf, sizeof(buf), &got), CF_ERR_IO);
	assert_int_equal(f.calls, 3);

	cf_reader liar = { lying_read, NULL };
	assert_int_not_equal(cf_read_full(liar, buf, sizeof(buf), &got), CF_OK);
}

static void test_buf_writer_respects_max(void **state)
{
	(void)state;
	cf_buf b;
	cf_buf_init(&b, 10, false);
	cf_writer w = cf_buf_writer(&b);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)"hello", 5), CF_OK);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)"", 0), CF_OK);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)"world!", 6), CF_ERR_TOO_BIG);
	assert_int_equal(b.len, 5);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)"world", 5), CF_OK);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "helloworld", 10);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)"!", 1), CF_ERR_TOO_BIG);
	assert_int_equal(b.len, 10);
	cf_buf_free(&b);
}

static void test_fd_io(void **state)
{
	(void)state;
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	cf_fd_io io = { fileno(tmp) };
	cf_writer w = cf_fd_writer(&io);
	uint8_t data[100000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ (i >> 8));
	assert_int_equal(w.write(w.ctx, data, sizeof(data)), CF_OK);
	assert_int_equal(lseek(io.fd, 0, SEEK_SET), 0);
	uint8_t back[sizeof(data) + 10];
	size_t got = 0;
	assert_int_equal(cf_read_full(cf_fd_reader(&io), back, sizeof(back), &got), CF_OK);
	assert_int_equal(got, sizeof(data));
	assert_memory_equal(back, data, sizeof(data));
	fclose(tmp);

	/* A closed descriptor is an I/O error, both ways. */
	cf_fd_io bad = { -1 };
	assert_int_equal(cf_read_full(cf_fd_reader(&bad), back, 10, &got), CF_ERR_IO);
	w = cf_fd_writer(&bad);
	assert_int_equal(w.write(w.ctx, data, 10), CF_ERR_IO);
}

/* --- output files --- */

static char *make_tmpdir(void)
{
	char *dir = strdup("/tmp/coffer-test-io-XXXXXX");
	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

/* Number of entries (other than . and ..) in dir; names the first in first. */
static int dir_entries(const char *dir, char *first, size_t firstcap)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n++ == 0 && first)
			snprintf(first, firstcap, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static void read_file(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(out, 1, cap - 1, f);
	out[n] = 0;
	fclose(f);
}

static void test_outfile_commit(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *target = path_in(dir, "plain.txt");
	mode_t old_umask = umask(0);
	cf_outfile o;
	assert_int_equal(cf_outfile_open(&o, target, 0), CF_OK);
	umask(old_umask);
	/* Nothing at the target until commit; one temporary beside it. */
	struct stat st;
	assert_int_equal(stat(target, &st), -1);
	char name[256];
	assert_int_equal(dir_entries(dir, name, sizeof(name)), 1);
	assert_true(strncmp(name, "plain.txt", 9) == 0);
	cf_writer w = cf_outfile_writer(&o);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)"secret ", 7), CF_OK);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)"plaintext", 9), CF_OK);
	assert_int_equal(cf_outfile_commit(&o), CF_OK);

	assert_int_equal(stat(target, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 16);
	char buf[64];
	read_file(target, buf, sizeof(buf));
	assert_string_equal(buf, "secret plaintext");
	assert_int_equal(dir_entries(dir, name, sizeof(name)), 1);
	assert_string_equal(name, "plain.txt");
	/* The struct is spent: abort after commit must not remove the result. */
	cf_outfile_abort(&o);
	assert_int_equal(stat(target, &st), 0);

	/* Committing over an existing file replaces it; an explicit mode is kept. */
	assert_int_equal(cf_outfile_open(&o, target, 0640), CF_OK);
	w = cf_outfile_writer(&o);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)"v2", 2), CF_OK);
	assert_int_equal(cf_outfile_commit(&o), CF_OK);
	read_file(target, buf, sizeof(buf));
	assert_string_equal(buf, "v2");
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(dir_entries(dir, NULL, 0), 1);

	/* An empty file is a valid result. */
	char *empty = path_in(dir, "empty");
	assert_int_equal(cf_outfile_open(&o, empty, 0), CF_OK);
	assert_int_equal(cf_outfile_commit(&o), CF_OK);
	assert_int_equal(stat(empty, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	unlink(empty);
	unlink(target);
	assert_int_equal(rmdir(dir), 0);
	free(empty);
	free(target);
	free(dir);
}

static void test_outfile_abort(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *target = path_in(dir, "out.bin");
	cf_outfile o;
	assert_int_equal(cf_outfile_open(&o, target, 0), CF_OK);
	cf_writer w = cf_outfile_writer(&o);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)"partial plaintext", 17), CF_OK);
	cf_outfile_abort(&o);
	/* Neither the target nor the temporary remains. */
	assert_int_equal(dir_entries(dir, NULL, 0), 0);
	assert_null(o.path);
	assert_null(o.tmp_path);
	assert_int_equal(o.io.fd, -1);
	cf_outfile_abort(&o); /* twice is harmless */

	/* Abort leaves an existing target untouched. */
	FILE *f = fopen(target, "wb");
	assert_non_null(f);
	fputs("original", f);
	fclose(f);
	assert_int_equal(cf_outfile_open(&o, target, 0), CF_OK);
	w = cf_outfile_writer(&o);
	assert_int_equal(w.write(w.ctx, (const uint8_t *)"garbage", 7), CF_OK);
	cf_outfile_abort(&o);
	char buf[32];
	read_file(target, buf, sizeof(buf));
	assert_string_equal(buf, "original");
	assert_int_equal(dir_entries(dir, NULL, 0), 1);
	unlink(target);

	/* A directory that does not exist: an error, and nothing to clean up. */
	char *nowhere = path_in(dir, "missing/sub/out.bin");
	assert_int_equal(cf_outfile_open(&o, nowhere, 0), CF_ERR_IO);
	assert_null(o.path);
	assert_null(o.tmp_path);
	cf_outfile_abort(&o);

	assert_int_equal(rmdir(dir), 0);
	free(nowhere);
	free(target);
	free(dir);
}

static void test_outfile_commit_failure_cleans_up(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	char *target = path_in(dir, "out.bin");
	cf_outfile o;
	assert_int_equal(cf_outfile_open(&o, target, 0), CF_OK);
	/* Swap in a pipe, on which fsync fails: commit must still close it. */
	int p[2];
	assert_int_equal(pipe(p), 0);
	int real_fd = o.io.fd;
	o.io.fd = p[1];
	assert_int_equal(cf_outfile_commit(&o), CF_ERR_IO);
	errno = 0;
	assert_int_equal(fcntl(p[1], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	close(p[0]);
	close(real_fd);
	/* The failed commit removed the temporary and created no target. */
	assert_int_equal(dir_entries(dir, NULL, 0), 0);
	assert_null(o.path);
	assert_null(o.tmp_path);

	/* rename() failing (the target is a non-empty directory) also cleans up. */
	char *sub = path_in(dir, "out.bin");
	assert_int_equal(mkdir(sub, 0700), 0);
	char *inner = path_in(sub, "x");
	FILE *f = fopen(inner, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(cf_outfile_open(&o, target, 0), CF_OK);
	assert_int_equal(cf_outfile_commit(&o), CF_ERR_IO);
	assert_int_equal(dir_entries(dir, NULL, 0), 1);
	unlink(inner);
	rmdir(sub);
	assert_int_equal(rmdir(dir), 0);
	free(inner);
	free(sub);
	free(target);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_full_one_byte_reads),
		cmocka_unit_test(test_read_full_errors),
		cmocka_unit_test(test_buf_writer_respects_max),
		cmocka_unit_test(test_fd_io),
		cmocka_unit_test(test_outfile_commit),
		cmocka_unit_test(test_outfile_abort),
		cmocka_unit_test(test_outfile_commit_failure_cleans_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
