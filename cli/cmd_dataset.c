/*
 * coffer dataset: register an age-encrypted dataset with the KMS
 * (docs/kms.md, dataset.register). Only the file's header travels: the
 * bytes through the MAC line, which wrap the file key to the KMS-held
 * key. The payload never leaves the owner's machine this way.
 *
 * And push: encrypt a CSV to a KMS key, register its header with the
 * KMS, and upload the ciphertext to cofferd (docs/api.md, "Datasets").
 * The plaintext is read from its file and never written anywhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/age.h"
#include "coffer/cofferd_client.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"

#define READ_STEP (16u * 1024)
/* The plaintext is read ahead on a second thread, as coffer age encrypt does. */
#define PREFETCH_BLOCK (1u << 20)
#define PREFETCH_BLOCKS 4

static const char dataset_usage[] =
	"usage: coffer dataset COMMAND [OPTIONS]\n\n"
	"Datasets are age files encrypted to a key the KMS holds (coffer key create).\n\n"
	"commands:\n"
	"  push      encrypt a CSV to a KMS key, register it and upload it to cofferd\n"
	"  list      list cofferd's datasets (--kms: the KMS's registry)\n"
	"  show      show one of cofferd's datasets\n"
	"  delete    delete one of the organisation's datasets from cofferd\n"
	"  register  register an encrypted file's header with the KMS\n\n"
	"The KMS commands take --kms URL and --cacert FILE to override the KMS pinned\n"
	"by coffer attest; the cofferd ones use the session of coffer login.\n";

static const char push_usage[] =
	"usage: coffer dataset push NAME FILE.csv --key ID [--tmpdir DIR] [--json]\n"
	"                           [--kms URL --cacert FILE]\n\n"
	"Publishes FILE.csv as this organisation's dataset NAME:\n"
	"  1. encrypts it with age to the current recipient of KMS key ID (from the\n"
	"     KMS's key list), streaming, into an unnamed temporary file (mode 0600,\n"
	"     gone when coffer exits) in DIR (default $TMPDIR or /tmp): cofferd needs\n"
	"     the ciphertext's size and SHA-256 before the first byte, and age\n"
	"     encryption is randomised, so the ciphertext is made once and kept;\n"
	"  2. creates the dataset in cofferd (kms_dataset ORG/NAME, size, sha256);\n"
	"  3. uploads the ciphertext in parts of 8 MiB;\n"
	"  4. registers its age header with the KMS as ORG/NAME (coffer dataset\n"
	"     register), which checks that key ID opens it;\n"
	"  5. commits the upload; cofferd checks size and SHA-256.\n"
	"If a step after 2 fails, the half-made dataset is deleted from cofferd. The\n"
	"plaintext is never written anywhere. On a terminal, progress (bytes, rate)\n"
	"is shown on standard error.\n\n"
	"  NAME         1 to 64 characters of [a-z0-9-]\n"
	"  --key ID     the organisation's KMS key to encrypt to (coffer key list)\n"
	"  --tmpdir DIR where the ciphertext is kept during the upload\n"
	"  --json       print {\"id\", \"name\", \"kms_dataset\", \"size\", \"sha256\",\n"
	"               \"header_sha256\", \"key\", \"version\"}\n";

static const char show_usage[] =
	"usage: coffer dataset show ID [--json]\n\n"
	"Shows dataset ID's metadata in cofferd (GET /v1/datasets/ID): owner, name,\n"
	"KMS name, size, SHA-256 and state.\n";

static const char delete_usage[] =
	"usage: coffer dataset delete ID\n\n"
	"Deletes dataset ID (its ciphertext and metadata) from cofferd. Its KMS\n"
	"registration stays.\n";

static const char register_usage[] =
	"usage: coffer dataset register NAME FILE.age --key ID [--json]\n"
	"                               [--kms URL --cacert FILE]\n\n"
	"Registers FILE.age (binary or armored, encrypted to the current version of key\n"
	"ID) as dataset ORG/NAME. Only the header (through the MAC line) is sent; the\n"
	"KMS checks that its key opens it. Prints the dataset's name and the SHA-256 of\n"
	"the header, which an enclave checks the file against before decrypting.\n\n"
	"  NAME      1 to 64 characters of [a-z0-9-]\n"
	"  --key ID  the KMS key the file is encrypted to\n"
	"  --json    print the KMS's answer {\"dataset\", \"key\", \"version\", ...}\n";

static const char list_usage[] =
	"usage: coffer dataset list [--json]\n"
	"       coffer dataset list --kms [URL] [--cacert FILE] [--json]\n\n"
	"Lists cofferd's datasets (GET /v1/datasets): id, owner, name, state, size and\n"
	"KMS name. With --kms, lists the KMS's registry of this organisation's datasets\n"
	"instead: name, key, key version, header SHA-256 (the pinned KMS, or URL).\n";

enum { O_JSON = 256, O_KMS, O_CACERT, O_KEY };

/*
 * The header bytes of an age file (fd, from its start; path names it in
 * errors): read until cf_age_header_parse sees the whole header; armored
 * files are de-armored first.
 */
static int read_header_fd(int fd, const char *path, cf_buf *hdr)
{
	cf_armor_reader *armor = NULL;
	cf_age_header h;
	uint8_t peek[64];
	size_t consumed = 0, npeek = 0;
	int status = CLI_FAIL;
	cf_err rc;
	memset(&h, 0, sizeof(h));
	cf_fd_io io = { fd };
	cf_reader in = cf_fd_reader(&io);
	if ((rc = cf_read_full(in, peek, sizeof(peek), &npeek)) != CF_OK ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		cli_fail("reading the dataset failed", "%s: %s", path,
			 rc == CF_OK ? "not a regular file" : strerror(errno));
		goto out;
	}
	size_t i = 0;
	while (i < npeek && (peek[i] == ' ' || peek[i] == '\t' || peek[i] == '\r' || peek[i] == '\n'))
		i++;
	if (i < npeek && peek[i] == '-') {
		if ((rc = cf_armor_reader_new(in, &armor)) != CF_OK) {
			cli_fail("reading the dataset failed", "%s", cf_strerror(rc));
			goto out;
		}
		in = cf_armor_reader_as_reader(armor);
	}
	for (;;) {
		uint8_t chunk[READ_STEP];
		size_t got = 0;
		rc = cf_read_full(in, chunk, sizeof(chunk), &got);
		if (rc == CF_OK)
			rc = cf_buf_append(hdr, chunk, got);
		if (rc != CF_OK) {
			cli_fail("reading the dataset failed", "%s: %s", path,
				 rc == CF_ERR_IO ? strerror(errno)
				 : rc == CF_ERR_TOO_BIG ? "the header is over 1 MiB"
							: cf_strerror(rc));
			goto out;
		}
		cf_age_header_free(&h);
		rc = cf_age_header_parse(hdr->data, hdr->len, &h, &consumed);
		if (rc == CF_OK)
			break;
		if (rc != CF_ERR_TRUNCATED || got < sizeof(chunk)) {
			cli_fail("reading the dataset failed", "%s: %s", path,
				 rc == CF_ERR_TRUNCATED ? "the file ends inside the age header"
							: "not an age file (malformed header)");
			goto out;
		}
	}
	hdr->len = consumed; /* the header only: never a byte of the payload */
	status = CLI_OK;
out:
	cf_age_header_free(&h);
	cf_armor_reader_free(armor);
	return status;
}

static int read_header(const char *path, cf_buf *hdr)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail("reading the dataset failed", "%s: %s", path, strerror(errno));
	int status = read_header_fd(fd, path, hdr);
	close(fd);
	return status;
}

static int dataset_register(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, O_KEY },
		{ "json", no_argument, NULL, O_JSON },
		{ "kms", required_argument, NULL, O_KMS },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ NULL, 0, NULL, 0 },
	};
	const char *key = NULL, *url = NULL, *cacert = NULL;
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_KEY: key = optarg; break;
		case O_JSON: json = true; break;
		case O_KMS: url = optarg; break;
		case O_CACERT: cacert = optarg; break;
		default: return cli_bad_option("dataset register", c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage("dataset register", "expected NAME and FILE.age");
	if (!key)
		return cli_usage("dataset register", "give the KMS key with --key ID");
	const char *name = argv[optind], *path = argv[optind + 1];
	if (!cf_kms_valid_name(name))
		return cli_usage("dataset register",
				 "a dataset name is 1 to 64 characters of [a-z0-9-]");

	cf_buf hdr;
	char *b64 = NULL;
	json_t *fields = NULL, *reply = NULL;
	uint8_t digest[CF_SHA256_LEN];
	char hex[2 * CF_SHA256_LEN + 1];
	const char *s;
	cf_buf_init(&hdr, CF_AGE_MAX_HEADER + READ_STEP, false);
	int status = read_header(path, &hdr);
	if (status != CLI_OK)
		goto out;
	status = CLI_FAIL;
	if (cf_hash(CF_SHA256, hdr.data, hdr.len, digest) != CF_OK ||
	    !(b64 = malloc(cf_b64_encoded_len(hdr.len, true) + 1))) {
		cli_fail("registering the dataset failed", "out of memory");
		goto out;
	}
	cf_hex_encode(digest, sizeof(digest), hex);
	cf_b64_encode(hdr.data, hdr.len, true, b64);
	fields = json_pack("{s:s, s:s, s:s}", "name", name, "key", key, "header", b64);
	if (!fields) {
		cli_fail("registering the dataset failed", "out of memory");
		goto out;
	}
	if ((status = cli_org_request("registering the dataset failed", url, cacert,
				      "dataset.register", fields, &reply)) != CLI_OK)
		goto out;
	/* The KMS hashes what it stored; it must be what we sent. */
	if (cf_json_get_string(reply, "header_sha256", &s) == CF_OK && strcmp(s, hex) != 0) {
		status = cli_fail("registering the dataset failed",
				  "the KMS recorded header %s, but the file's is %s", s, hex);
		goto out;
	}
	if (json) {
		status = cli_print_json(reply);
	} else {
		const char *ds = "?";
		long long version = 0;
		if (cf_json_get_string(reply, "dataset", &ds) != CF_OK)
			ds = "?";
		if (cf_json_get_int(reply, "version", &version) != CF_OK)
			version = 0;
		printf("dataset %s (key %s version %lld)\nheader_sha256 %s\n", ds, key, version, hex);
		status = CLI_OK;
	}
out:
	json_decref(reply);
	json_decref(fields);
	free(b64);
	cf_buf_free(&hdr);
	return status;
}

/* The KMS's registry of this organisation's datasets. */
static int list_kms(const char *url, const char *cacert, bool json)
{
	json_t *reply = NULL;
	int status = cli_org_request("listing the datasets failed", url, cacert, "dataset.list",
				     NULL, &reply);
	if (status != CLI_OK)
		return status;
	const json_t *list = json_object_get(reply, "datasets");
	if (!json_is_array(list)) {
		status = cli_fail("listing the datasets failed",
				  "the KMS's answer has no \"datasets\" array");
	} else if (json) {
		status = cli_print_json(reply);
	} else {
		printf("%-40s %-20s %-7s %s\n", "DATASET", "KEY", "VERSION", "HEADER_SHA256");
		size_t i;
		const json_t *d;
		json_array_foreach(list, i, d) {
			const char *ds, *key, *hs;
			long long version;
			if (cf_json_get_string(d, "dataset", &ds) != CF_OK)
				ds = "?";
			if (cf_json_get_string(d, "key", &key) != CF_OK)
				key = "?";
			if (cf_json_get_string(d, "header_sha256", &hs) != CF_OK)
				hs = "-";
			if (cf_json_get_int(d, "version", &version) != CF_OK)
				version = 0;
			printf("%-40s %-20s %-7lld %s\n", ds, key, version, hs);
		}
	}
	json_decref(reply);
	return status;
}

/* The owner of a cofferd dataset: "org", else "owner". */
static const char *owner_of(const json_t *d)
{
	const char *o = cli_str(d, "org");
	return strcmp(o, "-") != 0 ? o : cli_str(d, "owner");
}

static void put_size(const json_t *d, int width)
{
	long long v;
	char s[32] = "-";
	if (cf_json_get_int(d, "size", &v) == CF_OK && v >= 0)
		cf_cofferd_format_size((uint64_t)v, s, sizeof(s));
	printf("%-*s", width, s);
}

static int list_cofferd(bool json)
{
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL;
	const json_t *items, *d;
	size_t i;
	int status = cli_cofferd_connect(&cc);
	if (status != CLI_OK)
		return status;
	if ((status = cli_cofferd_call(cc, "listing the datasets failed", "GET", "/v1/datasets",
				       NULL, &reply)) != CLI_OK ||
	    (status = cli_items("listing the datasets failed", reply, &items)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(reply);
		goto out;
	}
	printf("%-22s %-16s %-24s %-10s %-10s %s\n", "ID", "ORG", "NAME", "STATE", "SIZE",
	       "KMS_DATASET");
	json_array_foreach(items, i, d) {
		cli_put_safe(stdout, cli_str(d, "id"), 22);
		putchar(' ');
		cli_put_safe(stdout, owner_of(d), 16);
		putchar(' ');
		cli_put_safe(stdout, cli_str(d, "name"), 24);
		putchar(' ');
		cli_put_safe(stdout, cli_str(d, "state"), 10);
		putchar(' ');
		put_size(d, 10);
		putchar(' ');
		cli_put_safe(stdout, cli_str(d, "kms_dataset"), 0);
		putchar('\n');
	}
out:
	json_decref(reply);
	cf_cofferd_client_free(cc);
	return status;
}

static int dataset_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		/* Optional, so that a bare --kms selects the pinned KMS; "--kms URL" still works. */
		{ "kms", optional_argument, NULL, O_KMS },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL, *cacert = NULL;
	bool json = false, kms = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_JSON: json = true; break;
		case O_KMS:
			kms = true;
			url = optarg;
			break;
		case O_CACERT:
			kms = true;
			cacert = optarg;
			break;
		default: return cli_bad_option("dataset list", c, argv);
		}
	}
	if (kms && !url && argc - optind == 1 && strncmp(argv[optind], "https://", 8) == 0)
		url = argv[optind++];
	if (optind != argc)
		return cli_usage("dataset list", "unexpected argument '%s'", argv[optind]);
	return kms ? list_kms(url, cacert, json) : list_cofferd(json);
}

/* --- dataset show, delete --- */

static int one_id(const char *cmd, int argc, char **argv, bool allow_json, bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	*json = false;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c != O_JSON || !allow_json)
			return cli_bad_option(cmd, c, argv);
		*json = true;
	}
	if (argc - optind != 1)
		return cli_usage(cmd, "expected the dataset ID");
	return cli_check_id(cmd, argv[optind], "ds");
}

static int dataset_show(int argc, char **argv)
{
	bool json;
	int status = one_id("dataset show", argc, argv, true, &json);
	if (status != CLI_OK)
		return status;
	char path[64];
	snprintf(path, sizeof(path), "/v1/datasets/%s", argv[optind]);
	cf_cofferd_client *cc = NULL;
	json_t *d = NULL;
	long long created;
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		return status;
	if ((status = cli_cofferd_call(cc, "showing the dataset failed", "GET", path, NULL, &d)) !=
	    CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(d);
		goto out;
	}
	static const char *const fields[][2] = {
		{ "id", "id" },		 { "owner", NULL },	{ "name", "name" },
		{ "kms dataset", "kms_dataset" }, { "state", "state" }, { "sha256", "sha256" },
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		printf("%-12s ", fields[i][0]);
		cli_put_safe(stdout, fields[i][1] ? cli_str(d, fields[i][1]) : owner_of(d), 0);
		putchar('\n');
	}
	printf("%-12s ", "size");
	put_size(d, 0);
	long long bytes;
	if (cf_json_get_int(d, "size", &bytes) == CF_OK)
		printf(" (%lld bytes)", bytes);
	putchar('\n');
	if (cf_json_get_int(d, "created", &created) == CF_OK) {
		char when[40];
		cli_time(created, when, sizeof(when));
		printf("%-12s %s\n", "created", when);
	}
out:
	json_decref(d);
	cf_cofferd_client_free(cc);
	return status;
}

static int dataset_delete(int argc, char **argv)
{
	bool json;
	int status = one_id("dataset delete", argc, argv, false, &json);
	if (status != CLI_OK)
		return status;
	char path[64];
	snprintf(path, sizeof(path), "/v1/datasets/%s", argv[optind]);
	cf_cofferd_client *cc = NULL;
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		return status;
	status = cli_cofferd_call(cc, "deleting the dataset failed", "DELETE", path, NULL, NULL);
	if (status == CLI_OK)
		printf("deleted dataset %s\n", argv[optind]);
	cf_cofferd_client_free(cc);
	return status;
}

/* --- dataset push --- */

/* Passes reads through, counting them for the progress line. */
typedef struct counting_reader {
	cf_reader in;
	cli_progress *progress;
	uint64_t n;
} counting_reader;

static cf_err counting_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	counting_reader *r = ctx;
	cf_err rc = r->in.read(r->in.ctx, buf, cap, got);
	if (rc == CF_OK) {
		r->n += *got;
		cli_progress_update(r->progress, r->n, 0);
	}
	return rc;
}

/* Passes writes through, counting and hashing them: the ciphertext's size and SHA-256. */
typedef struct hashing_writer {
	cf_writer out;
	cf_hash_ctx *sha;
	uint64_t n;
} hashing_writer;

static cf_err hashing_write(void *ctx, const uint8_t *buf, size_t len)
{
	hashing_writer *w = ctx;
	cf_err rc = cf_hash_update(w->sha, buf, len);
	if (rc == CF_OK)
		rc = w->out.write(w->out.ctx, buf, len);
	if (rc == CF_OK)
		w->n += len;
	return rc;
}

/*
 * An unnamed file in dir for the ciphertext: O_TMPFILE, or a file
 * unlinked as soon as it is made where that is not supported. Mode 0600
 * either way, and gone when the descriptor is closed, crash included.
 */
static int open_tmp(const char *dir, int *fd)
{
	*fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd >= 0)
		return CLI_OK;
	if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/.coffer-push-XXXXXX", dir);
		*fd = mkstemp(path);
		if (*fd >= 0) {
			unlink(path);
			return CLI_OK;
		}
	}
	return cli_fail("making a temporary file failed", "%s: %s", dir, strerror(errno));
}

/* The current recipient of key id among the organisation's keys (KMS key.list). */
static int key_recipient(const char *url, const char *cacert, const char *key, char *rcpt,
			 size_t cap)
{
	static const char what[] = "asking the KMS for the key failed";
	json_t *reply = NULL;
	const json_t *k, *found = NULL, *v;
	size_t i;
	int status = cli_org_request(what, url, cacert, "key.list", NULL, &reply);
	if (status != CLI_OK)
		return status;
	status = CLI_FAIL;
	json_array_foreach(json_object_get(reply, "keys"), i, k) {
		const char *id;
		if (cf_json_get_string(k, "key", &id) == CF_OK && strcmp(id, key) == 0)
			found = k;
	}
	if (!found) {
		cli_fail(what, "the organisation has no key %.80s (see coffer key list)", key);
		goto out;
	}
	const char *state;
	if (cf_json_get_string(found, "state", &state) == CF_OK && strcmp(state, "enabled") != 0) {
		cli_fail(what, "key %.80s is %.20s", key, state);
		goto out;
	}
	long long current;
	const char *r = NULL;
	if (cf_json_get_int(found, "current", &current) == CF_OK) {
		json_array_foreach(json_object_get(found, "versions"), i, v) {
			long long n;
			if (cf_json_get_int(v, "version", &n) == CF_OK && n == current &&
			    cf_json_get_string(v, "recipient", &r) != CF_OK)
				r = NULL;
		}
	}
	uint8_t pub[32];
	if (!r || strlen(r) >= cap || cf_age_recipient_parse(r, pub) != CF_OK) {
		cli_fail(what, "the KMS gives no valid recipient for key %.80s", key);
		goto out;
	}
	snprintf(rcpt, cap, "%s", r);
	status = CLI_OK;
out:
	json_decref(reply);
	return status;
}

/* Refuses a name the KMS already has: it would refuse the registration after the upload. */
static int kms_name_free(const char *url, const char *cacert, const char *kms_name)
{
	static const char what[] = "asking the KMS for the organisation's datasets failed";
	json_t *reply = NULL;
	const json_t *d;
	size_t i;
	int status = cli_org_request(what, url, cacert, "dataset.list", NULL, &reply);
	if (status != CLI_OK)
		return status;
	json_array_foreach(json_object_get(reply, "datasets"), i, d) {
		const char *ds;
		if (cf_json_get_string(d, "dataset", &ds) == CF_OK && strcmp(ds, kms_name) == 0) {
			status = cli_fail("pushing the dataset failed",
					  "the KMS already has a dataset %s: choose another NAME",
					  kms_name);
			break;
		}
	}
	json_decref(reply);
	return status;
}

/* Encrypts path to rcpt into fd; size and sha256 of the ciphertext. */
static int encrypt_to(const char *path, const char *rcpt, int fd, uint64_t *size,
		      uint8_t sha256[CF_SHA256_LEN])
{
	cf_age_recipient r = { .kind = CF_AGE_X25519 };
	cf_prefetch *pf = NULL;
	cf_hash_ctx *sha = NULL;
	cli_progress prog;
	struct stat st;
	int status = CLI_FAIL;
	cf_err rc;
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return cli_fail("reading the dataset failed", "%s: %s", path, strerror(errno));
	if (fstat(in, &st) != 0 || S_ISDIR(st.st_mode)) {
		cli_fail("reading the dataset failed", "%s: %s", path,
			 S_ISDIR(st.st_mode) ? "a folder" : strerror(errno));
		goto out;
	}
	if ((rc = cf_age_recipient_parse(rcpt, r.pub)) != CF_OK ||
	    (rc = cf_hash_new(CF_SHA256, &sha)) != CF_OK) {
		cli_fail("encrypting the dataset failed", "%s", cf_strerror(rc));
		goto out;
	}
	cf_fd_io in_io = { in }, out_io = { fd };
	if ((rc = cf_prefetch_new(cf_fd_reader(&in_io), PREFETCH_BLOCK, PREFETCH_BLOCKS, &pf)) !=
	    CF_OK) {
		cli_fail("encrypting the dataset failed", "%s", cf_strerror(rc));
		goto out;
	}
	cli_progress_start(&prog, "encrypting", S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
	counting_reader cr = { cf_prefetch_reader(pf), &prog, 0 };
	hashing_writer hw = { cf_fd_writer(&out_io), sha, 0 };
	errno = 0;
	rc = cf_age_encrypt(&r, 1, NULL, (cf_reader){ counting_read, &cr },
			    (cf_writer){ hashing_write, &hw });
	cli_progress_end(&prog);
	if (rc != CF_OK) {
		cli_fail("encrypting the dataset failed", "%s: %s", path,
			 rc == CF_ERR_IO && errno ? strerror(errno) : cf_strerror(rc));
		goto out;
	}
	if ((rc = cf_hash_final(sha, sha256)) != CF_OK) {
		cli_fail("encrypting the dataset failed", "%s", cf_strerror(rc));
		goto out;
	}
	*size = hw.n;
	status = CLI_OK;
out:
	cf_prefetch_free(pf);
	cf_hash_free(sha);
	close(in);
	return status;
}

/*
 * The organisation cofferd knows this login by must be the profile's; an
 * admin (of no organisation) names it in the request (*for_org).
 */
static int check_login_org(cf_cofferd_client *cc, const char *org, bool *for_org)
{
	json_t *me = NULL;
	*for_org = false;
	int status = cli_cofferd_call(cc, "asking cofferd who this is failed", "GET", "/v1/me",
				      NULL, &me);
	if (status != CLI_OK)
		return status;
	const char *o, *role;
	if (cf_json_get_string(me, "org", &o) != CF_OK &&
	    cf_json_get_string(me, "role", &role) == CF_OK && strcmp(role, "admin") == 0) {
		*for_org = true;
	} else if (cf_json_get_string(me, "org", &o) == CF_OK && strcmp(o, org) != 0) {
		status = cli_fail("pushing the dataset failed",
				  "logged in to cofferd as a user of organisation %.64s, but this "
				  "profile's organisation is %s",
				  o, org);
	}
	json_decref(me);
	return status;
}

static int dataset_push(int argc, char **argv)
{
	enum { O_TMPDIR = 300 };
	static const struct option opts[] = {
		{ "key", required_argument, NULL, O_KEY },
		{ "tmpdir", required_argument, NULL, O_TMPDIR },
		{ "json", no_argument, NULL, O_JSON },
		{ "kms", required_argument, NULL, O_KMS },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ NULL, 0, NULL, 0 },
	};
	const char *key = NULL, *url = NULL, *cacert = NULL, *tmpdir = NULL;
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_KEY: key = optarg; break;
		case O_TMPDIR: tmpdir = optarg; break;
		case O_JSON: json = true; break;
		case O_KMS: url = optarg; break;
		case O_CACERT: cacert = optarg; break;
		default: return cli_bad_option("dataset push", c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage("dataset push", "expected NAME and FILE.csv");
	if (!key)
		return cli_usage("dataset push", "give the KMS key with --key ID");
	const char *name = argv[optind], *path = argv[optind + 1];
	if (!cf_kms_valid_name(name))
		return cli_usage("dataset push", "a dataset name is 1 to 64 characters of [a-z0-9-]");
	if (!tmpdir)
		tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	static const char what[] = "pushing the dataset failed";
	cli_org org;
	cf_cofferd_client *cc = NULL;
	cf_buf hdr;
	json_t *body = NULL, *reply = NULL, *fields = NULL, *kreply = NULL, *commit = NULL;
	json_t *o = NULL;
	char kms_name[140], rcpt[CF_AGE_RECIPIENT_STRLEN + 8], id[64] = "";
	char sha_hex[2 * CF_SHA256_LEN + 1], hdr_hex[2 * CF_SHA256_LEN + 1], blob[96];
	uint8_t sha[CF_SHA256_LEN], sent[CF_SHA256_LEN], hdr_sha[CF_SHA256_LEN];
	char *hdr_b64 = NULL;
	uint64_t size = 0;
	int fd = -1;
	bool created = false, for_org = false;
	cf_err rc;
	cf_buf_init(&hdr, CF_AGE_MAX_HEADER + READ_STEP, false);
	int status = cli_org_load(&org);
	if (status != CLI_OK)
		return status;
	snprintf(kms_name, sizeof(kms_name), "%s/%s", org.name, name);

	/* Everything that can be checked before the work: the login, the key, the name. */
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK ||
	    (status = check_login_org(cc, org.name, &for_org)) != CLI_OK ||
	    (status = key_recipient(url, cacert, key, rcpt, sizeof(rcpt))) != CLI_OK ||
	    (status = kms_name_free(url, cacert, kms_name)) != CLI_OK)
		goto out;

	if ((status = open_tmp(tmpdir, &fd)) != CLI_OK ||
	    (status = encrypt_to(path, rcpt, fd, &size, sha)) != CLI_OK)
		goto out;
	status = CLI_FAIL;
	cf_hex_encode(sha, sizeof(sha), sha_hex);
	if (lseek(fd, 0, SEEK_SET) != 0 || (status = read_header_fd(fd, "the ciphertext", &hdr)) !=
						   CLI_OK)
		goto fail;
	status = CLI_FAIL;
	if ((rc = cf_hash(CF_SHA256, hdr.data, hdr.len, hdr_sha)) != CF_OK ||
	    !(hdr_b64 = malloc(cf_b64_encoded_len(hdr.len, true) + 1))) {
		cli_fail(what, "%s", cf_strerror(rc == CF_OK ? CF_ERR_NOMEM : rc));
		goto fail;
	}
	cf_hex_encode(hdr_sha, sizeof(hdr_sha), hdr_hex);
	cf_b64_encode(hdr.data, hdr.len, true, hdr_b64);

	/* cofferd: the dataset, then its bytes. */
	body = json_pack("{s:s, s:s, s:I, s:s}", "name", name, "kms_dataset", kms_name, "size",
			 (json_int_t)size, "sha256", sha_hex);
	if (!body || (for_org && json_object_set_new(body, "org", json_string(org.name)))) {
		cli_fail(what, "out of memory");
		goto fail;
	}
	if ((status = cli_cofferd_call(cc, "creating the dataset in cofferd failed", "POST",
				       "/v1/datasets", body, &reply)) != CLI_OK)
		goto fail;
	status = CLI_FAIL;
	const char *s;
	if (cf_json_get_string(reply, "id", &s) != CF_OK || !cf_cofferd_valid_id(s, "ds")) {
		cli_fail(what, "cofferd's answer has no valid dataset id");
		goto fail;
	}
	snprintf(id, sizeof(id), "%s", s);
	created = true;
	snprintf(blob, sizeof(blob), "/v1/datasets/%s/blob", id);
	if (lseek(fd, 0, SEEK_SET) != 0) {
		cli_fail(what, "rewinding the ciphertext: %s", strerror(errno));
		goto fail;
	}
	cli_progress prog;
	cf_fd_io tmp_io = { fd };
	cli_progress_start(&prog, "uploading", size);
	rc = cf_cofferd_upload(cc, blob, cf_fd_reader(&tmp_io), size, cli_progress_update, &prog,
			       sent);
	cli_progress_end(&prog);
	if (rc != CF_OK) {
		cli_cofferd_fail("uploading the ciphertext failed", cc, rc);
		goto fail;
	}
	if (memcmp(sent, sha, sizeof(sha)) != 0) {
		cli_fail(what, "the temporary ciphertext changed during the upload");
		goto fail;
	}

	/* The KMS: the header, which it checks key ID opens. */
	fields = json_pack("{s:s, s:s, s:s}", "name", name, "key", key, "header", hdr_b64);
	if (!fields) {
		cli_fail(what, "out of memory");
		goto fail;
	}
	if ((status = cli_org_request("registering the dataset with the KMS failed", url, cacert,
				      "dataset.register", fields, &kreply)) != CLI_OK)
		goto fail;
	status = CLI_FAIL;
	if (cf_json_get_string(kreply, "header_sha256", &s) == CF_OK && strcmp(s, hdr_hex) != 0) {
		cli_fail(what, "the KMS recorded header %.64s, but the file's is %s", s, hdr_hex);
		goto fail;
	}

	/* cofferd checks the size and SHA-256 declared at the start. */
	char commit_path[96];
	snprintf(commit_path, sizeof(commit_path), "/v1/datasets/%s/commit", id);
	if ((status = cli_cofferd_call(cc, "committing the upload failed", "POST", commit_path,
				       NULL, &commit)) != CLI_OK)
		goto fail;
	status = CLI_FAIL;
	long long csize;
	if ((cf_json_get_string(commit, "sha256", &s) == CF_OK && strcmp(s, sha_hex) != 0) ||
	    (cf_json_get_int(commit, "size", &csize) == CF_OK && (uint64_t)csize != size)) {
		cli_fail(what, "cofferd committed another size or SHA-256 than was uploaded");
		goto fail;
	}
	created = false; /* done: nothing to undo */

	long long version = 0;
	if (cf_json_get_int(kreply, "version", &version) != CF_OK)
		version = 0;
	if (json) {
		o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:I}", "id", id, "name", name,
			      "kms_dataset", kms_name, "size", (json_int_t)size, "sha256", sha_hex,
			      "header_sha256", hdr_hex, "key", key, "version", (json_int_t)version);
		status = o ? cli_print_json(o) : cli_fail("printing failed", "out of memory");
	} else {
		char human[32];
		cf_cofferd_format_size(size, human, sizeof(human));
		printf("dataset %s (%s): %s of ciphertext, sha256 %s\n"
		       "registered with the KMS as %s (key %s version %lld), header_sha256 %s\n",
		       id, kms_name, human, sha_hex, kms_name, key, version, hdr_hex);
		status = CLI_OK;
	}
	goto out;
fail:
	status = CLI_FAIL;
	if (created) {
		char del[64];
		snprintf(del, sizeof(del), "/v1/datasets/%s", id);
		if (cf_cofferd_call(cc, "DELETE", del, NULL, NULL) == CF_OK)
			fprintf(stderr, "coffer: the unfinished dataset %s was deleted from cofferd\n",
				id);
		else
			fprintf(stderr, "coffer: the unfinished dataset %s is left in cofferd "
					"(coffer dataset delete %s)\n",
				id, id);
	}
out:
	if (fd >= 0)
		close(fd);
	free(hdr_b64);
	cf_buf_free(&hdr);
	json_decref(o);
	json_decref(commit);
	json_decref(kreply);
	json_decref(fields);
	json_decref(reply);
	json_decref(body);
	cf_cofferd_client_free(cc);
	cli_org_wipe(&org);
	return status;
}

int cmd_dataset(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{ "push", dataset_push, push_usage },
		{ "list", dataset_list, list_usage },
		{ "show", dataset_show, show_usage },
		{ "delete", dataset_delete, delete_usage },
		{ "register", dataset_register, register_usage },
	};
	return cli_dispatch("dataset", dataset_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
