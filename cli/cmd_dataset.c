/*
 * coffer dataset: register an age-encrypted dataset with the KMS
 * (docs/kms.md, dataset.register). Only the file's header travels: the
 * bytes through the MAC line, which wrap the file key to the KMS-held
 * key. The payload never leaves the owner's machine this way.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/age.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"

#define READ_STEP (16u * 1024)

static const char dataset_usage[] =
	"usage: coffer dataset COMMAND [OPTIONS]\n\n"
	"Datasets are age files encrypted to a key the KMS holds (coffer key create).\n\n"
	"commands:\n"
	"  register  register an encrypted file's header with the KMS\n"
	"  list      list the organisation's datasets\n\n"
	"Every command takes --kms URL and --cacert FILE to override the KMS pinned\n"
	"by coffer attest.\n";

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
	"usage: coffer dataset list [--json] [--kms URL --cacert FILE]\n\n"
	"Lists the organisation's datasets: name, key, key version, header SHA-256.\n";

enum { O_JSON = 256, O_KMS, O_CACERT, O_KEY };

/*
 * The header bytes of an age file: read until cf_age_header_parse sees
 * the whole header; armored files are de-armored first.
 */
static int read_header(const char *path, cf_buf *hdr)
{
	cf_armor_reader *armor = NULL;
	cf_age_header h;
	uint8_t peek[64];
	size_t consumed = 0, npeek = 0;
	int status = CLI_FAIL;
	cf_err rc;
	memset(&h, 0, sizeof(h));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail("reading the dataset failed", "%s: %s", path, strerror(errno));
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

static int dataset_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "kms", required_argument, NULL, O_KMS },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL, *cacert = NULL;
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_JSON: json = true; break;
		case O_KMS: url = optarg; break;
		case O_CACERT: cacert = optarg; break;
		default: return cli_bad_option("dataset list", c, argv);
		}
	}
	if (optind != argc)
		return cli_usage("dataset list", "unexpected argument '%s'", argv[optind]);

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

int cmd_dataset(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{ "register", dataset_register, register_usage },
		{ "list", dataset_list, list_usage },
	};
	return cli_dispatch("dataset", dataset_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
