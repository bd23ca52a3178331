/*
 * release_enclave: a test "enclave" for the KMS's release path. Run
 * under coffer-launch, it asks the KMS for the keys of a task with
 * cf_kms_release (its own TEE's evidence, an ephemeral wrapping key) and
 * prints what it got as JSON: per input the table, the dataset, the
 * SHA-256 of the file key (never the key) and the header digest, and the
 * KMS-signed output recipients. With --check TABLE=FILE.age it also
 * decrypts that file with the released key, refusing a file whose header
 * is not the registered one, and prints the plaintext's SHA-256 and size
 * (never the plaintext).
 *
 *   release_enclave --kms URL --cacert CA.pem --task TASK.json
 *                   [--approval FILE]... [--check TABLE=FILE.age]...
 *
 * An approval FILE holds one {"org", "sig"} or an array of them. Exit 0
 * on success, 1 on a refusal or failure (the KMS's check on stderr), 2 on
 * a usage error, 3 when not running in a TEE.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "coffer/age.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"
#include "coffer/tee.h"

#define MAX_CHECKS 16
#define FILE_MAX (1u << 20)

static const char usage_text[] =
	"usage: release_enclave --kms URL --cacert CA.pem --task TASK.json\n"
	"                       [--approval FILE]... [--check TABLE=FILE.age]...\n";

static int fail(const char *what, const char *fmt, ...) CF_PRINTF(2, 3);
static int fail(const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "release_enclave: %s: ", what);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

static cf_err read_json_file(const char *path, json_t **out)
{
	cf_buf b;
	cf_buf_init(&b, FILE_MAX, false);
	cf_err rc = CF_OK;
	FILE *f = fopen(path, "rb");
	if (!f)
		return CF_ERR_IO;
	char chunk[4096];
	size_t n;
	while (rc == CF_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = cf_buf_append(&b, chunk, n);
	if (rc == CF_OK && ferror(f))
		rc = CF_ERR_IO;
	fclose(f);
	if (rc == CF_OK)
		rc = cf_json_parse(b.data ? (const char *)b.data : "", b.len, NULL, out);
	cf_buf_free(&b);
	return rc;
}

/* A writer that only hashes and counts. */
typedef struct hash_sink {
	cf_hash_ctx *h;
	unsigned long long bytes;
} hash_sink;

static cf_err sink_write(void *ctx, const uint8_t *buf, size_t len)
{
	hash_sink *s = ctx;
	s->bytes += len;
	return cf_hash_update(s->h, buf, len);
}

/* Decrypts path with the released key of table; adds plaintext_sha256 and bytes to entry. */
static int check_file(const cf_kms_input *in, const char *path, json_t *entry)
{
	hash_sink sink = { 0 };
	uint8_t digest[CF_SHA256_LEN];
	char hex[2 * CF_SHA256_LEN + 1];
	int status = 1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail("opening a dataset failed", "%s: %s", path, strerror(errno));
	cf_err rc = cf_hash_new(CF_SHA256, &sink.h);
	if (rc == CF_OK) {
		cf_fd_io io = { fd };
		rc = cf_age_decrypt_with_file_key(in->file_key, in->header_sha256, cf_fd_reader(&io),
						  (cf_writer){ sink_write, &sink });
	}
	if (rc == CF_OK)
		rc = cf_hash_final(sink.h, digest);
	if (rc != CF_OK) {
		fail("decrypting a dataset failed", "%s (%s): %s", path, in->table,
		     rc == CF_ERR_AUTH ? "its header is not the registered one" : cf_strerror(rc));
		goto out;
	}
	cf_hex_encode(digest, sizeof(digest), hex);
	json_object_set_new(entry, "plaintext_sha256", json_string(hex));
	json_object_set_new(entry, "plaintext_bytes", json_integer((json_int_t)sink.bytes));
	status = 0;
out:
	cf_hash_free(sink.h);
	close(fd);
	return status;
}

int main(int argc, char **argv)
{
	enum { O_KMS = 256, O_CACERT, O_TASK, O_APPROVAL, O_CHECK, O_HELP };
	static const struct option opts[] = {
		{ "kms", required_argument, NULL, O_KMS },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ "task", required_argument, NULL, O_TASK },
		{ "approval", required_argument, NULL, O_APPROVAL },
		{ "check", required_argument, NULL, O_CHECK },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL, *cacert = NULL, *task_path = NULL;
	const char *checks[MAX_CHECKS];
	bool checked[MAX_CHECKS] = { false };
	size_t nchecks = 0;
	json_t *approvals = json_array(), *task = NULL, *out = NULL, *list = NULL;
	cf_kms_client *c = NULL;
	cf_kms_release_result res;
	const cf_tee_provider *tee = NULL;
	int status = 2, opt;
	memset(&res, 0, sizeof(res));
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (opt) {
		case O_KMS: url = optarg; break;
		case O_CACERT: cacert = optarg; break;
		case O_TASK: task_path = optarg; break;
		case O_APPROVAL: {
			json_t *a = NULL;
			if (read_json_file(optarg, &a) != CF_OK) {
				status = fail("reading an approval failed", "%s", optarg);
				goto out;
			}
			if (json_is_array(a))
				json_array_extend(approvals, a);
			else
				json_array_append(approvals, a);
			json_decref(a);
			break;
		}
		case O_CHECK:
			if (nchecks == MAX_CHECKS || !strchr(optarg, '=')) {
				fputs(usage_text, stderr);
				goto out;
			}
			checks[nchecks++] = optarg;
			break;
		case O_HELP:
			fputs(usage_text, stdout);
			status = 0;
			goto out;
		default:
			fputs(usage_text, stderr);
			goto out;
		}
	}
	if (optind != argc || !url || !cacert || !task_path || !approvals) {
		fputs(usage_text, stderr);
		goto out;
	}
	status = 1;
	if (read_json_file(task_path, &task) != CF_OK) {
		status = fail("reading the task failed", "%s", task_path);
		goto out;
	}
	if (cf_tee_detect(&tee) != CF_OK) {
		status = 3;
		fail("finding a TEE failed", "not running in a TEE (start me with coffer-launch)");
		goto out;
	}
	cf_err rc = cf_kms_client_open(url, cacert, &c);
	if (rc != CF_OK) {
		status = fail("connecting to the KMS failed", "%s", cf_strerror(rc));
		goto out;
	}
	rc = cf_kms_release(c, tee, task, approvals, &res);
	if (rc != CF_OK) {
		const cf_kms_error *e = cf_kms_client_error(c);
		status = fail("the release failed", "%s%s%s (HTTP %ld): %s", cf_strerror(rc),
			      e->check[0] ? ": " : "", e->check, e->status, e->message);
		goto out;
	}

	char hex[2 * CF_SHA256_LEN + 1], kh[2 * CF_SHA256_LEN + 1];
	uint8_t key_hash[CF_SHA256_LEN];
	list = json_array();
	cf_hex_encode(res.task_digest, sizeof(res.task_digest), hex);
	out = json_pack("{s:s, s:O, s:O}", "task_digest", hex, "inputs", list, "outputs",
			json_object_get(res.recipients, "outputs"));
	if (!list || !out) {
		status = fail("printing failed", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < res.ninputs; i++) {
		const cf_kms_input *in = &res.inputs[i];
		if ((rc = cf_hash(CF_SHA256, in->file_key, sizeof(in->file_key), key_hash)) != CF_OK) {
			status = fail("hashing failed", "%s", cf_strerror(rc));
			goto out;
		}
		cf_hex_encode(key_hash, sizeof(key_hash), kh);
		cf_hex_encode(in->header_sha256, sizeof(in->header_sha256), hex);
		json_t *entry = json_pack("{s:s, s:s, s:s, s:s}", "table", in->table, "dataset",
					  in->dataset, "file_key_sha256", kh, "header_sha256", hex);
		if (!entry || json_array_append_new(list, entry)) {
			status = fail("printing failed", "out of memory");
			goto out;
		}
		for (size_t j = 0; j < nchecks; j++) {
			const char *eq = strchr(checks[j], '=');
			if ((size_t)(eq - checks[j]) != strlen(in->table) ||
			    strncmp(checks[j], in->table, strlen(in->table)) != 0)
				continue;
			checked[j] = true;
			if (check_file(in, eq + 1, entry) != 0)
				goto out;
		}
	}
	for (size_t j = 0; j < nchecks; j++) {
		if (!checked[j]) {
			status = fail("checking a dataset failed", "%s: no input of the task has that "
				      "table", checks[j]);
			goto out;
		}
	}
	char *s = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!s) {
		status = fail("printing failed", "out of memory");
		goto out;
	}
	printf("%s\n", s);
	free(s);
	status = 0;
out:
	cf_kms_release_result_free(&res);
	cf_kms_client_free(c);
	json_decref(list);
	json_decref(out);
	json_decref(task);
	json_decref(approvals);
	return status;
}
