/*
 * Unit tests for tee/launch/image.c: sizes, the manifest, config checks,
 * and the measured image (sealed memfds + SHA-384 measurement). Hostile
 * input throughout: overflowing sizes, malformed manifests, files that
 * change after the build, FIFOs and directories as programs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coffer/crypto.h"
#include "launch.h"

/* --- helpers --- */

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_tmpdir(char *out, size_t cap)
{
	snprintf(out, cap, "/tmp/coffer-test-launch-XXXXXX");
	assert_non_null(mkdtemp(out));
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < cap);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

static void write_str(const char *path, const char *s)
{
	write_file(path, s, strlen(s));
}

/* Overwrites one byte in place (same inode, same size). */
static void poke(const char *path, off_t off, uint8_t v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &v, 1, off), 1);
	close(fd);
}

static uint8_t peek(const char *path, off_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t v = 0;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &v, 1, off), 1);
	close(fd);
	return v;
}

static off_t size_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Reads a whole file (malloc'd). */
static uint8_t *slurp_fd(int fd, size_t *len)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *p = malloc((size_t)st.st_size + 1);
	assert_non_null(p);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, p + got, (size_t)st.st_size - got, (off_t)got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	*len = got;
	return p;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	uint8_t *p = slurp_fd(fd, len);
	close(fd);
	return p;
}

/* --- launch_parse_size --- */

static void test_parse_size(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "007", 7 },
		{ "64K", 64ull << 10 },
		{ "64k", 64ull << 10 },
		{ "256M", 256ull << 20 },
		{ "1G", 1ull << 30 },
		{ "2GiB", 2ull << 30 },
		{ "1MB", 1ull << 20 },
		{ "1KiB", 1ull << 10 },
		{ "3T", 3ull << 40 },
		{ "16777215T", 16777215ull << 40 },
		{ "17179869183G", 17179869183ull << 30 },
		{ "18446744073709551615", UINT64_MAX },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t v = 12345;
		cf_err rc = launch_parse_size(good[i].s, &v);
		if (rc != CF_OK)
			fail_msg("\"%s\" rejected: %s", good[i].s, cf_errname(rc));
		if (v != good[i].v)
			fail_msg("\"%s\" = %llu", good[i].s, (unsigned long long)v);
	}
	static const char *const bad[] = {
		"", "-1", "+5", "12X", "1.5G", "M", "99999999999999999999",
		"18446744073709551615K", "18446744073709551616", "16777216T", "17179869184G",
		" 1", " -1", "\t5", "\n5", "1 K", "1K ", "1 ", "0x10", "1e3", "1P", "1E", "1GG",
		"1KBB", "1Ki", "1iB", "1Gb", "1B", "K1", "--1", "- 1", "1,000", "1_000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 12345;
		cf_err rc = launch_parse_size(bad[i], &v);
		if (rc == CF_OK)
			fail_msg("\"%s\" accepted as %llu", bad[i], (unsigned long long)v);
		assert_true(v == 12345);
	}
	uint64_t v = 1;
	assert_int_not_equal(launch_parse_size(NULL, &v), CF_OK);
}

/* --- the manifest --- */

struct mf {
	char dir[64];
	char path[128];
	char why[512];
	struct launch_config c;
};

static void mf_init(struct mf *m)
{
	make_tmpdir(m->dir, sizeof(m->dir));
	path_in(m->path, sizeof(m->path), m->dir, "manifest.json");
	launch_config_init(&m->c);
	m->why[0] = 0;
}

static void mf_done(struct mf *m)
{
	launch_config_free(&m->c);
	rm_rf(m->dir);
}

static cf_err mf_load(struct mf *m, const char *json)
{
	write_str(m->path, json);
	m->why[0] = 0;
	return launch_manifest_load(&m->c, m->path, m->why, sizeof(m->why));
}

static void test_manifest_valid(void **state)
{
	(void)state;
	struct mf m;
	mf_init(&m);
	assert_int_equal(mf_load(&m, "{\"version\":1,\"args\":[\"--port\",\"8443\",\"\"],"
				      "\"env\":[\"HOME\",\"_x9\",\"COFFER_LOG\"],\"enclave_size\":\"512M\","
				      "\"memory\":1073741824,\"cores\":2,\"debug\":true}"),
			 CF_OK);
	assert_int_equal(m.c.nargs, 3);
	assert_string_equal(m.c.args[0], "--port");
	assert_string_equal(m.c.args[1], "8443");
	assert_string_equal(m.c.args[2], "");
	assert_int_equal(m.c.nenv, 3);
	assert_string_equal(m.c.env[0], "HOME");
	assert_string_equal(m.c.env[1], "_x9");
	assert_string_equal(m.c.env[2], "COFFER_LOG");
	assert_true(m.c.enclave_size == 512ull << 20);
	assert_true(m.c.memory == 1ull << 30);
	assert_int_equal(m.c.cores, 2);
	assert_true(m.c.debug);
	launch_config_free(&m.c);
	assert_int_equal(m.c.nargs, 0);
	assert_int_equal(m.c.nenv, 0);

	/* Empty object: nothing changes. */
	launch_config_init(&m.c);
	assert_int_equal(mf_load(&m, "{}"), CF_OK);
	assert_int_equal(m.c.nargs, 0);
	assert_true(m.c.enclave_size == 0);
	assert_false(m.c.debug);
	/* Sizes as integers and strings; debug false stays false. */
	assert_int_equal(mf_load(&m, "{\"enclave_size\":1048576,\"memory\":\"2G\",\"debug\":false,"
				     "\"cores\":0}"),
			 CF_OK);
	assert_true(m.c.enclave_size == 1048576);
	assert_true(m.c.memory == 2ull << 30);
	assert_false(m.c.debug);
	mf_done(&m);
}

static void test_manifest_command_line_wins(void **state)
{
	(void)state;
	struct mf m;
	mf_init(&m);
	m.c.enclave_size = 2ull << 20;
	m.c.memory = 8ull << 20;
	m.c.cores = 1;
	m.c.debug = true;
	assert_int_equal(mf_load(&m, "{\"enclave_size\":\"1G\",\"memory\":\"2G\",\"cores\":3,"
				     "\"debug\":false}"),
			 CF_OK);
	assert_true(m.c.enclave_size == 2ull << 20);
	assert_true(m.c.memory == 8ull << 20);
	assert_int_equal(m.c.cores, 1);
	/* --debug cannot be switched off by the manifest. */
	assert_true(m.c.debug);

	/* Command-line args equal to the manifest's: fine. */
	m.c.args[m.c.nargs++] = strdup("a");
	m.c.args[m.c.nargs++] = strdup("b");
	assert_int_equal(mf_load(&m, "{\"args\":[\"a\",\"b\"]}"), CF_OK);
	assert_int_equal(m.c.nargs, 2);
	/* Different: an error naming the conflict. */
	static const char *const differ[] = {
		"{\"args\":[\"a\",\"c\"]}", "{\"args\":[\"a\"]}", "{\"args\":[\"a\",\"b\",\"c\"]}",
		"{\"args\":[]}", "{\"args\":[\"b\",\"a\"]}", "{\"args\":[\"a\",\"b \"]}",
		"{\"args\":[\"ab\"]}",
	};
	for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		cf_err rc = mf_load(&m, differ[i]);
		if (rc == CF_OK)
			fail_msg("%s accepted against args a b", differ[i]);
		assert_true(strlen(m.why) > 0);
		assert_non_null(strstr(m.why, "args"));
		assert_int_equal(m.c.nargs, 2);
	}
	mf_done(&m);
}

static void test_manifest_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
		/* unknown fields */
		"{\"foo\":1}", "{\"Args\":[]}", "{\"version\":1,\"extra\":null}",
		/* version */
		"{\"version\":2}", "{\"version\":0}", "{\"version\":\"1\"}", "{\"version\":1.0}",
		"{\"version\":true}",
		/* args */
		"{\"args\":\"a\"}", "{\"args\":[1]}", "{\"args\":[\"a\",null]}", "{\"args\":{}}",
		"{\"args\":[[\"a\"]]}",
		/* env */
		"{\"env\":\"HOME\"}", "{\"env\":[1]}", "{\"env\":[\"1A\"]}", "{\"env\":[\"A-B\"]}",
		"{\"env\":[\"\"]}", "{\"env\":[\"A B\"]}", "{\"env\":[\"A=B\"]}",
		"{\"env\":[\"\\u00e9\"]}", "{\"env\":[\"HOME\",\"9\"]}", "{\"env\":[null]}",
		/* sizes */
		"{\"enclave_size\":true}", "{\"enclave_size\":-1}", "{\"enclave_size\":1.5}",
		"{\"enclave_size\":\"12X\"}", "{\"enclave_size\":\"\"}", "{\"enclave_size\":null}",
		"{\"enclave_size\":\"-1\"}", "{\"enclave_size\":[1]}", "{\"memory\":\"1.5G\"}",
		"{\"memory\":\"18446744073709551615K\"}", "{\"memory\":{}}",
		/* cores */
		"{\"cores\":\"2\"}", "{\"cores\":-1}", "{\"cores\":4097}", "{\"cores\":1.0}",
		"{\"cores\":9223372036854775807}",
		/* debug */
		"{\"debug\":\"true\"}", "{\"debug\":1}", "{\"debug\":null}",
		/* not an object */
		"[]", "\"x\"", "1", "null", "true", "[{\"version\":1}]",
		/* not JSON */
		"", "{", "}", "{\"a\":1,}", "{'version':1}", "{\"version\":1} x",
		"{\"cores\":1,\"cores\":2}", "{\"args\":[\"\\u0000\"]}", "{\"args\":[\"\\ud800\"]}",
		"\xef\xbb\xbf{}", "{\"args\":[\"\xff\"]}",
	};
	struct mf m;
	mf_init(&m);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		launch_config_init(&m.c);
		cf_err rc = mf_load(&m, bad[i]);
		if (rc == CF_OK)
			fail_msg("manifest %s accepted", bad[i]);
		if (strlen(m.why) == 0)
			fail_msg("manifest %s: no reason given", bad[i]);
		/* The reason names the file. */
		assert_non_null(strstr(m.why, m.path));
		launch_config_free(&m.c);
	}
	mf_done(&m);
}

static void test_manifest_limits(void **state)
{
	(void)state;
	struct mf m;
	mf_init(&m);
	/* Over 1 MiB: refused (even though it would be valid JSON). */
	size_t big = (1u << 20) + 100;
	char *text = malloc(big + 1);
	assert_non_null(text);
	memset(text, ' ', big);
	memcpy(text, "{\"args\":[\"", 10);
	memset(text + 10, 'a', big - 20);
	memcpy(text + big - 10, "\"]}       ", 10);
	text[big] = 0;
	assert_int_not_equal(mf_load(&m, text), CF_OK);
	assert_true(strlen(m.why) > 0);
	assert_int_equal(m.c.nargs, 0);
	/* Exactly 1 MiB (whitespace padded): accepted. */
	size_t exact = 1u << 20;
	memset(text, ' ', exact);
	memcpy(text, "{\"cores\":1}", 11);
	text[exact] = 0;
	assert_int_equal(mf_load(&m, text), CF_OK);
	assert_int_equal(m.c.cores, 1);
	free(text);
	launch_config_free(&m.c);
	launch_config_init(&m.c);

	/* Counts: 256 args and 64 env names are the limits. */
	cf_buf b;
	cf_buf_init(&b, 1 << 20, false);
	for (int n = 256; n <= 257; n++) {
		cf_buf_reset(&b);
		assert_int_equal(cf_buf_append_str(&b, "{\"args\":["), CF_OK);
		for (int i = 0; i < n; i++)
			assert_int_equal(cf_buf_printf(&b, "%s\"a%d\"", i ? "," : "", i), CF_OK);
		assert_int_equal(cf_buf_append_str(&b, "]}"), CF_OK);
		assert_int_equal(cf_buf_terminate(&b), CF_OK);
		launch_config_init(&m.c);
		cf_err rc = mf_load(&m, (const char *)b.data);
		assert_int_equal(rc, n <= LAUNCH_MAX_ARGS ? CF_OK : CF_ERR_PARSE);
		assert_true(m.c.nargs <= LAUNCH_MAX_ARGS);
		launch_config_free(&m.c);
	}
	for (int n = 64; n <= 65; n++) {
		cf_buf_reset(&b);
		assert_int_equal(cf_buf_append_str(&b, "{\"env\":["), CF_OK);
		for (int i = 0; i < n; i++)
			assert_int_equal(cf_buf_printf(&b, "%s\"E%d\"", i ? "," : "", i), CF_OK);
		assert_int_equal(cf_buf_append_str(&b, "]}"), CF_OK);
		assert_int_equal(cf_buf_terminate(&b), CF_OK);
		launch_config_init(&m.c);
		cf_err rc = mf_load(&m, (const char *)b.data);
		assert_int_equal(rc, n <= LAUNCH_MAX_ENV ? CF_OK : CF_ERR_PARSE);
		assert_true(m.c.nenv <= LAUNCH_MAX_ENV);
		launch_config_free(&m.c);
	}
	/* env names already in the config count against the limit too. */
	launch_config_init(&m.c);
	for (int i = 0; i < 10; i++) {
		char name[8];
		snprintf(name, sizeof(name), "P%d", i);
		m.c.env[m.c.nenv++] = strdup(name);
	}
	cf_buf_reset(&b);
	assert_int_equal(cf_buf_append_str(&b, "{\"env\":["), CF_OK);
	for (int i = 0; i < 64; i++)
		assert_int_equal(cf_buf_printf(&b, "%s\"E%d\"", i ? "," : "", i), CF_OK);
	assert_int_equal(cf_buf_append_str(&b, "]}"), CF_OK);
	assert_int_equal(cf_buf_terminate(&b), CF_OK);
	assert_int_not_equal(mf_load(&m, (const char *)b.data), CF_OK);
	assert_true(m.c.nenv <= LAUNCH_MAX_ENV);
	assert_true(strlen(m.why) > 0);
	launch_config_free(&m.c);
	cf_buf_free(&b);

	/* Missing file, directory: errors naming the path. */
	launch_config_init(&m.c);
	char missing[160];
	path_in(missing, sizeof(missing), m.dir, "nope.json");
	m.why[0] = 0;
	assert_int_equal(launch_manifest_load(&m.c, missing, m.why, sizeof(m.why)), CF_ERR_IO);
	assert_non_null(strstr(m.why, missing));
	m.why[0] = 0;
	assert_int_not_equal(launch_manifest_load(&m.c, m.dir, m.why, sizeof(m.why)), CF_OK);
	assert_true(strlen(m.why) > 0);
	/* A tiny why buffer is still terminated. */
	char small[8];
	memset(small, 'x', sizeof(small));
	write_str(m.path, "{\"foo\":1}");
	assert_int_not_equal(launch_manifest_load(&m.c, m.path, small, sizeof(small)), CF_OK);
	assert_true(memchr(small, 0, sizeof(small)) != NULL);
	mf_done(&m);
}

/* --- launch_config_check --- */

static void test_config_check(void **state)
{
	(void)state;
	struct launch_config c;
	char why[256];
	long pages = sysconf(_SC_PHYS_PAGES), pagesize = sysconf(_SC_PAGESIZE);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	assert_true(pages > 0 && pagesize > 0 && ncpu > 0);
	uint64_t ram = (uint64_t)pages * (uint64_t)pagesize;

	launch_config_init(&c);
	c.enclave_size = 1u << 20;
	why[0] = 0;
	assert_int_equal(launch_config_check(&c, why, sizeof(why)), CF_OK);
	c.cores = (unsigned)ncpu;
	c.memory = c.enclave_size;
	assert_int_equal(launch_config_check(&c, why, sizeof(why)), CF_OK);

	struct {
		uint64_t enclave, memory;
		unsigned cores;
	} bad[] = {
		{ 0, 0, 0 },
		{ (1u << 20) - 1, 0, 0 },
		{ ram + (uint64_t)pagesize, 0, 0 },
		{ UINT64_MAX, 0, 0 },
		{ 4u << 20, (4u << 20) - 1, 0 },
		{ 4u << 20, 1, 0 },
		{ 1u << 20, 0, (unsigned)ncpu + 1 },
		{ 1u << 20, 0, 4096 + (unsigned)ncpu },
		{ 1u << 20, 0, UINT32_MAX },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		launch_config_init(&c);
		c.enclave_size = bad[i].enclave;
		c.memory = bad[i].memory;
		c.cores = bad[i].cores;
		why[0] = 0;
		cf_err rc = launch_config_check(&c, why, sizeof(why));
		if (rc == CF_OK)
			fail_msg("config %zu accepted", i);
		assert_true(strlen(why) > 0);
	}
	/* Exactly the host's memory is allowed. */
	launch_config_init(&c);
	c.enclave_size = ram;
	assert_int_equal(launch_config_check(&c, why, sizeof(why)), CF_OK);
}

/* --- the image and its measurement --- */

struct files {
	char dir[64];
	char program[128], runtime[128], allocator[128];
};

static void files_init(struct files *f)
{
	make_tmpdir(f->dir, sizeof(f->dir));
	path_in(f->program, sizeof(f->program), f->dir, "program");
	path_in(f->runtime, sizeof(f->runtime), f->dir, "libruntime.so");
	path_in(f->allocator, sizeof(f->allocator), f->dir, "liballoc.so");
	/* The program: a copy of /bin/true (or filler if there is none). */
	size_t len = 0;
	uint8_t *prog = NULL;
	if (access("/bin/true", R_OK) == 0)
		prog = slurp("/bin/true", &len);
	if (!prog || len < 3) {
		free(prog);
		len = 100000;
		prog = malloc(len);
		assert_non_null(prog);
		for (size_t i = 0; i < len; i++)
			prog[i] = (uint8_t)(i * 31 + 7);
	}
	write_file(f->program, prog, len);
	free(prog);
	/* Over one 64 KiB copy chunk, and not a multiple of it. */
	uint8_t *buf = malloc(200001);
	assert_non_null(buf);
	for (size_t i = 0; i < 200001; i++)
		buf[i] = (uint8_t)(i * 17 + (i >> 9));
	write_file(f->runtime, buf, 200001);
	for (size_t i = 0; i < 65536; i++)
		buf[i] = (uint8_t)(i * 5 + 3);
	write_file(f->allocator, buf, 65536);
	free(buf);
}

static void config_of(struct launch_config *c, const struct files *f)
{
	launch_config_init(c);
	c->program = f->program;
	c->runtime = f->runtime;
	c->allocator = f->allocator;
	c->args[c->nargs++] = strdup("--flag");
	c->args[c->nargs++] = strdup("value");
	c->env[c->nenv++] = strdup("HOME");
	c->enclave_size = 64ull << 20;
	c->cores = 1;
	c->memory = 128ull << 20;
	c->debug = false;
}

static void measure(const struct launch_config *c, uint8_t out[48])
{
	struct launch_image img;
	char why[512] = "";
	cf_err rc = launch_image_build(c, &img, why, sizeof(why));
	if (rc != CF_OK)
		fail_msg("build: %s: %s", cf_errname(rc), why);
	memcpy(out, img.measurement, 48);
	launch_image_free(&img);
}

static void hash_part(cf_hash_ctx *h, const uint8_t *p, size_t len)
{
	uint8_t le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)((uint64_t)len >> (8 * i));
	assert_int_equal(cf_hash_update(h, le, 8), CF_OK);
	if (len)
		assert_int_equal(cf_hash_update(h, p, len), CF_OK);
}

static void test_image_measurement_spec(void **state)
{
	(void)state;
	struct files f;
	struct launch_config c;
	struct launch_image img;
	char why[512] = "";
	files_init(&f);
	config_of(&c, &f);
	c.debug = true;
	assert_int_equal(launch_image_build(&c, &img, why, sizeof(why)), CF_OK);

	/* The canonical manifest, as documented. */
	static const char want_manifest[] =
		"{\"args\":[\"--flag\",\"value\"],\"cores\":1,\"debug\":true,\"enclave_size\":67108864,"
		"\"env\":[\"HOME\"],\"memory\":134217728,\"version\":1}";
	assert_int_equal(img.manifest.len, strlen(want_manifest));
	assert_memory_equal(img.manifest.data, want_manifest, img.manifest.len);

	/* Recomputed independently from the files and the documented layout. */
	size_t plen, rlen, alen;
	uint8_t *prog = slurp(f.program, &plen), *rt = slurp(f.runtime, &rlen),
		*al = slurp(f.allocator, &alen);
	cf_hash_ctx *h;
	uint8_t want[48];
	assert_int_equal(cf_hash_new(CF_SHA384, &h), CF_OK);
	assert_int_equal(cf_hash_update(h, "coffer-soft-measurement-v1\n", 27), CF_OK);
	hash_part(h, prog, plen);
	hash_part(h, rt, rlen);
	hash_part(h, al, alen);
	hash_part(h, (const uint8_t *)want_manifest, strlen(want_manifest));
	assert_int_equal(cf_hash_final(h, want), CF_OK);
	cf_hash_free(h);
	assert_memory_equal(img.measurement, want, 48);

	/* The memfds hold exactly the files' bytes. */
	size_t n;
	uint8_t *got = slurp_fd(img.program_fd, &n);
	assert_int_equal(n, plen);
	assert_memory_equal(got, prog, n);
	free(got);
	got = slurp_fd(img.runtime_fd, &n);
	assert_int_equal(n, rlen);
	assert_memory_equal(got, rt, n);
	free(got);
	got = slurp_fd(img.allocator_fd, &n);
	assert_int_equal(n, alen);
	assert_memory_equal(got, al, n);
	free(got);
	/* The program is exec'd by fd, close-on-exec; the libraries must survive exec. */
	assert_true(fcntl(img.program_fd, F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(img.runtime_fd, F_GETFD) & FD_CLOEXEC);
	assert_false(fcntl(img.allocator_fd, F_GETFD) & FD_CLOEXEC);
	free(prog);
	free(rt);
	free(al);
	launch_image_free(&img);
	assert_int_equal(img.program_fd, -1);
	launch_image_free(&img); /* twice is harmless */

	/* No runtime or allocator: zero lengths, and a different measurement. */
	uint8_t base[48], m2[48];
	measure(&c, base);
	c.runtime = NULL;
	c.allocator = NULL;
	assert_int_equal(launch_image_build(&c, &img, why, sizeof(why)), CF_OK);
	assert_int_equal(img.runtime_fd, -1);
	assert_int_equal(img.allocator_fd, -1);
	memcpy(m2, img.measurement, 48);
	launch_image_free(&img);
	assert_memory_not_equal(base, m2, 48);
	launch_config_free(&c);
	rm_rf(f.dir);
}

static void test_image_measurement_sensitivity(void **state)
{
	(void)state;
	struct files f;
	struct launch_config c;
	uint8_t base[48], again[48], m[48];
	files_init(&f);
	config_of(&c, &f);
	measure(&c, base);
	measure(&c, again);
	assert_memory_equal(base, again, 48);

	/* One byte of any file, at its start, middle and end. */
	const char *const paths[] = { f.program, f.runtime, f.allocator };
	for (size_t p = 0; p < 3; p++) {
		off_t size = size_of(paths[p]);
		const off_t offs[] = { 0, size / 2, size - 1 };
		for (size_t o = 0; o < 3; o++) {
			uint8_t old = peek(paths[p], offs[o]);
			poke(paths[p], offs[o], (uint8_t)(old ^ 0x01));
			measure(&c, m);
			if (memcmp(m, base, 48) == 0)
				fail_msg("%s byte %lld changed, measurement did not", paths[p],
					 (long long)offs[o]);
			poke(paths[p], offs[o], old);
		}
	}
	/* Swapping runtime and allocator is a different image. */
	const char *rt = c.runtime;
	c.runtime = c.allocator;
	c.allocator = rt;
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	c.allocator = c.runtime;
	c.runtime = rt;
	/* Appending a byte to the program. */
	{
		int fd = open(f.program, O_WRONLY | O_APPEND | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "", 1), 1);
		close(fd);
		measure(&c, m);
		assert_memory_not_equal(m, base, 48);
		assert_int_equal(truncate(f.program, size_of(f.program) - 1), 0);
	}
	measure(&c, m);
	assert_memory_equal(m, base, 48);

	/* Every manifest field. */
	char *saved = c.args[1];
	c.args[1] = strdup("valuf");
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	free(c.args[1]);
	c.args[1] = strdup("valu");
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	free(c.args[1]);
	c.args[1] = saved;
	/* ["--flag","value"] vs ["--flagvalue"] vs ["--flag","value",""]. */
	c.nargs = 1;
	free(c.args[0]);
	c.args[0] = strdup("--flagvalue");
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	free(c.args[0]);
	c.args[0] = strdup("--flag");
	c.nargs = 2;
	measure(&c, m);
	assert_memory_equal(m, base, 48);
	c.args[c.nargs++] = strdup("");
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	free(c.args[--c.nargs]);

	free(c.env[0]);
	c.env[0] = strdup("HOMF");
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	free(c.env[0]);
	c.env[0] = strdup("HOME");
	c.nenv = 0;
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	c.nenv = 1;

	/* Restored: the same measurement again. */
	measure(&c, m);
	assert_memory_equal(m, base, 48);

	c.enclave_size += 4096;
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	c.enclave_size -= 4096;
	c.cores = 2;
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	c.cores = 0;
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	c.cores = 1;
	c.memory = 0;
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	c.memory = 128ull << 20;
	c.debug = true;
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	c.debug = false;
	/* Not measured: the program's path, platform dir, user, quiet. */
	c.platform_dir = "/elsewhere";
	c.user = "nobody";
	c.quiet = true;
	measure(&c, m);
	assert_memory_equal(m, base, 48);
	launch_config_free(&c);
	rm_rf(f.dir);
}

static void test_image_sealed(void **state)
{
	(void)state;
	struct files f;
	struct launch_config c;
	struct launch_image img;
	char why[512] = "";
	files_init(&f);
	config_of(&c, &f);
	assert_int_equal(launch_image_build(&c, &img, why, sizeof(why)), CF_OK);
	size_t plen;
	uint8_t *orig = slurp(f.program, &plen);

	/* Change the original (in place, then replaced entirely). */
	poke(f.program, 0, (uint8_t)(orig[0] ^ 0xff));
	poke(f.program, (off_t)plen - 1, (uint8_t)(orig[plen - 1] ^ 0xff));
	size_t n;
	uint8_t *got = slurp_fd(img.program_fd, &n);
	assert_int_equal(n, plen);
	assert_memory_equal(got, orig, plen);
	free(got);
	write_str(f.program, "#!/bin/sh\necho replaced\n");
	got = slurp_fd(img.program_fd, &n);
	assert_int_equal(n, plen);
	assert_memory_equal(got, orig, plen);
	free(got);

	/* Every memfd is sealed against writes, growth, shrinking and unsealing. */
	int fds[] = { img.program_fd, img.runtime_fd, img.allocator_fd };
	for (size_t i = 0; i < 3; i++) {
		int seals = fcntl(fds[i], F_GET_SEALS);
		assert_true(seals >= 0);
		assert_true(seals & F_SEAL_WRITE);
		assert_true(seals & F_SEAL_GROW);
		assert_true(seals & F_SEAL_SHRINK);
		assert_true(seals & F_SEAL_SEAL);
		assert_int_equal(pwrite(fds[i], "x", 1, 0), -1);
		assert_int_equal(errno, EPERM);
		assert_int_equal(write(fds[i], "x", 1), -1);
		assert_int_equal(ftruncate(fds[i], 0), -1);
		assert_int_equal(ftruncate(fds[i], 1 << 30), -1);
		assert_int_equal(fallocate(fds[i], 0, 0, 1 << 30), -1);
		assert_int_equal(fcntl(fds[i], F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
		void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		assert_true(map == MAP_FAILED);
		/* And reopening through /proc cannot write either. */
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fds[i]);
		int w = open(proc, O_WRONLY | O_CLOEXEC);
		if (w >= 0) {
			assert_int_equal(write(w, "x", 1), -1);
			close(w);
		}
	}
	/* The measurement is of the sealed bytes, not the file's new content. */
	uint8_t m[48];
	memcpy(m, img.measurement, 48);
	launch_image_free(&img);
	write_file(f.program, orig, plen);
	uint8_t again[48];
	measure(&c, again);
	assert_memory_equal(m, again, 48);
	free(orig);
	launch_config_free(&c);
	rm_rf(f.dir);
}

static void test_image_bad_inputs(void **state)
{
	(void)state;
	struct files f;
	struct launch_config c;
	struct launch_image img;
	char why[512];
	char missing[160], fifo[160];
	files_init(&f);
	config_of(&c, &f);
	path_in(missing, sizeof(missing), f.dir, "no-such-program");

	/* A missing program, runtime or allocator: NOT_FOUND naming the path. */
	const char **slots[] = { &c.program, &c.runtime, &c.allocator };
	for (size_t i = 0; i < 3; i++) {
		const char *saved = *slots[i];
		*slots[i] = missing;
		why[0] = 0;
		memset(&img, 0x55, sizeof(img.measurement));
		assert_int_equal(launch_image_build(&c, &img, why, sizeof(why)), CF_ERR_NOT_FOUND);
		assert_non_null(strstr(why, missing));
		assert_int_equal(img.program_fd, -1);
		assert_int_equal(img.runtime_fd, -1);
		assert_int_equal(img.allocator_fd, -1);
		*slots[i] = saved;
	}
	/* Not regular files: a directory, a character device, a FIFO (no hang). */
	path_in(fifo, sizeof(fifo), f.dir, "fifo");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	const char *const odd[] = { f.dir, "/dev/null", "/dev/zero", fifo, "/proc/self" };
	for (size_t j = 0; j < sizeof(odd) / sizeof(odd[0]); j++) {
		for (size_t i = 0; i < 3; i++) {
			const char *saved = *slots[i];
			*slots[i] = odd[j];
			why[0] = 0;
			cf_err rc = launch_image_build(&c, &img, why, sizeof(why));
			if (rc == CF_OK)
				fail_msg("%s accepted as slot %zu", odd[j], i);
			assert_true(strlen(why) > 0);
			assert_non_null(strstr(why, odd[j]));
			assert_int_equal(img.program_fd, -1);
			*slots[i] = saved;
		}
	}
	/* An unreadable program (root reads anything, so only when not root). */
	if (geteuid() != 0) {
		assert_int_equal(chmod(f.program, 0), 0);
		why[0] = 0;
		assert_int_equal(launch_image_build(&c, &img, why, sizeof(why)), CF_ERR_IO);
		assert_non_null(strstr(why, f.program));
		assert_int_equal(chmod(f.program, 0644), 0);
	}
	/* An empty program file is measured as zero bytes, not refused here. */
	write_str(f.program, "");
	assert_int_equal(launch_image_build(&c, &img, why, sizeof(why)), CF_OK);
	launch_image_free(&img);

	/*
	 * Arguments and names the canonical JSON cannot carry (not UTF-8) are
	 * refused: json_string() would return NULL and the argument would run
	 * without being measured.
	 */
	uint8_t base[48], m[48];
	measure(&c, base);
	c.args[c.nargs++] = strdup("\xff\xfe");
	why[0] = 0;
	assert_int_equal(launch_image_build(&c, &img, why, sizeof(why)), CF_ERR_ARG);
	assert_non_null(strstr(why, "UTF-8"));
	assert_int_equal(img.program_fd, -1);
	free(c.args[--c.nargs]);
	c.args[c.nargs++] = strdup("ok \xc3\xa9"); /* valid UTF-8 is fine */
	measure(&c, m);
	assert_memory_not_equal(m, base, 48);
	free(c.args[--c.nargs]);
	c.env[c.nenv++] = strdup("BAD\xc3");
	why[0] = 0;
	assert_int_equal(launch_image_build(&c, &img, why, sizeof(why)), CF_ERR_ARG);
	assert_non_null(strstr(why, "UTF-8"));
	free(c.env[--c.nenv]);
	measure(&c, m);
	assert_memory_equal(m, base, 48);

	/* A manifest over the 1 MiB image limit fails with a reason. */
	for (size_t i = c.nargs; i < LAUNCH_MAX_ARGS; i++) {
		c.args[i] = malloc(8192);
		assert_non_null(c.args[i]);
		memset(c.args[i], 'a', 8191);
		c.args[i][8191] = 0;
	}
	c.nargs = LAUNCH_MAX_ARGS;
	why[0] = 0;
	assert_int_not_equal(launch_image_build(&c, &img, why, sizeof(why)), CF_OK);
	assert_true(strlen(why) > 0);
	assert_int_equal(img.program_fd, -1);
	launch_config_free(&c);
	rm_rf(f.dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_manifest_valid),
		cmocka_unit_test(test_manifest_command_line_wins),
		cmocka_unit_test(test_manifest_rejects),
		cmocka_unit_test(test_manifest_limits),
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_image_measurement_spec),
		cmocka_unit_test(test_image_measurement_sensitivity),
		cmocka_unit_test(test_image_sealed),
		cmocka_unit_test(test_image_bad_inputs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
