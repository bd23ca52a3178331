/*
 * coffer audit verify: check an audit log written by coffer-kms or
 * cofferd (docs/audit.md) against the public key that signed it, and
 * name the first bad line. coffer audit fetch: download cofferd's log.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cli.h"
#include "coffer/audit.h"
#include "coffer/cofferd_client.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"

#define KEY_FILE_MAX (64u * 1024)

/* Bounds a fetched log; a real one is far smaller. */
#define AUDIT_FETCH_MAX (64ull << 30)

static const char audit_usage[] =
	"usage: coffer audit COMMAND [OPTIONS]\n\n"
	"commands:\n"
	"  verify  verify a hash-chained, signed audit log\n"
	"  fetch   download cofferd's audit log (admin, auditor)\n";

static const char fetch_usage[] =
	"usage: coffer audit fetch -o FILE [--force]\n\n"
	"Downloads cofferd's audit log (GET /v1/audit, JSON lines), streaming, into\n"
	"FILE (mode 0600; it appears only when the whole log has arrived), and prints\n"
	"the key cofferd says signs it (GET /v1/audit/key). Check the log with coffer\n"
	"audit verify FILE --key KEY, with a key obtained elsewhere than from cofferd\n"
	"itself if cofferd is not to vouch for its own log.\n\n"
	"  -o, --output FILE  where the log goes (never over an existing file unless\n"
	"                     --force)\n"
	"  --force            replace FILE if it exists\n";

static const char verify_usage[] =
	"usage: coffer audit verify FILE (--key KEY | --key-file KEYFILE) [--json]\n\n"
	"Verifies an audit log of coffer-kms or cofferd: every line a well-formed\n"
	"entry, seq counting from 1 without gaps, each prev the hash of the entry\n"
	"before, each hash the SHA-256 of its entry, each signature valid under the\n"
	"key, and time never going back. FILE (\"-\" for standard input) is read as\n"
	"a stream, in constant memory.\n\n"
	"  --key KEY          the log's Ed25519 public key: 64 hex digits, or base64\n"
	"  --key-file KEYFILE a file holding the key: hex or base64 on its first line,\n"
	"                     or a PEM public key (openssl pkey -pubout)\n"
	"  --json             print {\"verified\", \"entries\", \"last_hash\", \"last_time\",\n"
	"                     \"first_bad\"} on standard output\n\n"
	"Prints \"ok: N entries, last hash H\" and exits 0 when every entry verifies;\n"
	"otherwise names the first bad line on standard error and exits 1. Entries\n"
	"cut off the end of a log leave a shorter good log: compare N and H with a\n"
	"head recorded elsewhere.\n";

/* 64 hex digits, or the base64 of 32 bytes (padded or not). */
static cf_err parse_key_text(const char *s, size_t len, uint8_t pub[static CF_ED25519_PUB_LEN])
{
	size_t n = 0;
	if (len == 2 * CF_ED25519_PUB_LEN)
		return cf_hex_decode(s, len, pub, CF_ED25519_PUB_LEN, &n) == CF_OK &&
				       n == CF_ED25519_PUB_LEN
			       ? CF_OK
			       : CF_ERR_ENCODING;
	bool padded = len == cf_b64_encoded_len(CF_ED25519_PUB_LEN, true);
	if (!padded && len != cf_b64_encoded_len(CF_ED25519_PUB_LEN, false))
		return CF_ERR_ENCODING;
	uint8_t out[CF_ED25519_PUB_LEN + 3];
	if (cf_b64_decode(s, len, padded, out, sizeof(out), &n) != CF_OK || n != CF_ED25519_PUB_LEN)
		return CF_ERR_ENCODING;
	memcpy(pub, out, CF_ED25519_PUB_LEN);
	return CF_OK;
}

static cf_err parse_key_pem(const cf_buf *b, uint8_t pub[static CF_ED25519_PUB_LEN])
{
	cf_err rc = CF_ERR_ENCODING;
	BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
	EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	size_t n = CF_ED25519_PUB_LEN;
	if (k && EVP_PKEY_is_a(k, "ED25519") && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 &&
	    n == CF_ED25519_PUB_LEN)
		rc = CF_OK;
	EVP_PKEY_free(k);
	BIO_free(bio);
	return rc;
}

static int load_key_file(const char *path, uint8_t pub[static CF_ED25519_PUB_LEN])
{
	cf_buf b;
	cf_buf_init(&b, KEY_FILE_MAX, false);
	int status = CLI_OK;
	cf_err rc = cli_read_file(path, KEY_FILE_MAX, &b);
	if (rc != CF_OK) {
		status = cli_fail("reading the key failed", "%s: %s", path, cf_strerror(rc));
		goto out;
	}
	const char *text = b.data ? (const char *)b.data : "";
	if (strstr(text, "-----BEGIN PUBLIC KEY-----")) {
		rc = parse_key_pem(&b, pub);
	} else {
		/* The first line, without surrounding blanks. */
		size_t start = 0, end = 0;
		while (start < b.len && (text[start] == ' ' || text[start] == '\t'))
			start++;
		end = start;
		while (end < b.len && text[end] != '\n' && text[end] != '\r')
			end++;
		while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t'))
			end--;
		rc = parse_key_text(text + start, end - start, pub);
	}
	if (rc != CF_OK)
		status = cli_fail("reading the key failed",
				  "%s: not an Ed25519 public key (hex, base64 or PEM)", path);
out:
	cf_buf_free(&b);
	return status;
}

static void print_json(const cf_audit_report *r, bool verified)
{
	char hash[2 * CF_AUDIT_HASH_LEN + 1];
	cf_hex_encode(r->last_hash, CF_AUDIT_HASH_LEN, hash);
	json_t *bad = json_null();
	if (!verified) {
		bad = json_pack("{s:I, s:o, s:I, s:s, s:s}", "line", (json_int_t)r->line, "seq",
				r->seq_known ? json_integer(r->seq) : json_null(), "expected_seq",
				(json_int_t)(r->entries + 1), "fault", cf_audit_fault_name(r->fault),
				"reason", r->reason);
	}
	json_t *o = json_pack("{s:b, s:I, s:s, s:s, s:o}", "verified", verified, "entries",
			      (json_int_t)r->entries, "last_hash", hash, "last_time", r->last_time,
			      "first_bad", bad ? bad : json_null());
	char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	printf("%s\n", s ? s : "{}");
	free(s);
	json_decref(o);
}

static int audit_verify(int argc, char **argv)
{
	enum { O_KEY = 256, O_KEYFILE, O_JSON };
	static const struct option opts[] = {
		{ "key", required_argument, NULL, O_KEY },
		{ "key-file", required_argument, NULL, O_KEYFILE },
		{ "json", no_argument, NULL, O_JSON },
		{ NULL, 0, NULL, 0 },
	};
	const char *key = NULL, *key_file = NULL;
	bool json = false;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case O_KEY: key = optarg; break;
		case O_KEYFILE: key_file = optarg; break;
		case O_JSON: json = true; break;
		case ':': return cli_usage("audit", "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage("audit", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage("audit", "expected one audit log FILE");
	if (!key == !key_file)
		return cli_usage("audit", "give the public key with --key or --key-file (one of them)");

	uint8_t pub[CF_ED25519_PUB_LEN];
	if (key && parse_key_text(key, strlen(key), pub) != CF_OK)
		return cli_usage("audit", "--key must be an Ed25519 public key in hex (64 digits) "
					  "or base64");
	if (key_file) {
		int status = load_key_file(key_file, pub);
		if (status != CLI_OK)
			return status;
	}

	const char *path = argv[optind];
	cf_audit_report r;
	cf_err rc;
	if (strcmp(path, "-") == 0) {
		cf_fd_io io = { STDIN_FILENO };
		rc = cf_audit_verify_reader(cf_fd_reader(&io), pub, &r);
	} else {
		rc = cf_audit_verify_file(path, pub, &r);
	}
	if (rc != CF_OK && rc != CF_ERR_AUTH)
		return cli_fail("reading the audit log failed", "%s: %s", path, cf_strerror(rc));

	bool verified = rc == CF_OK;
	if (json)
		print_json(&r, verified);
	if (!verified) {
		if (r.seq_known)
			return cli_fail("audit log verification failed", "line %llu (seq %lld): %s",
					(unsigned long long)r.line, r.seq, r.reason);
		return cli_fail("audit log verification failed", "line %llu: %s",
				(unsigned long long)r.line, r.reason);
	}
	if (!json) {
		char hash[2 * CF_AUDIT_HASH_LEN + 1];
		cf_hex_encode(r.last_hash, CF_AUDIT_HASH_LEN, hash);
		printf("ok: %llu entries, last hash %s\n", (unsigned long long)r.entries, hash);
	}
	return CLI_OK;
}

static int audit_fetch(int argc, char **argv)
{
	enum { O_FORCE = 256 };
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, O_FORCE },
		{ NULL, 0, NULL, 0 },
	};
	const char *out_path = NULL;
	bool force = false;
	int c;
	while ((c = cli_getopt(argc, argv, "o:", opts)) != -1) {
		switch (c) {
		case 'o': out_path = optarg; break;
		case O_FORCE: force = true; break;
		default: return cli_bad_option("audit fetch", c, argv);
		}
	}
	if (optind != argc)
		return cli_usage("audit fetch", "unexpected argument '%s'", argv[optind]);
	if (!out_path)
		return cli_usage("audit fetch", "give the file to write with -o FILE");
	if (!force && access(out_path, F_OK) == 0)
		return cli_fail("fetching the audit log failed", "%s exists (add --force to replace "
								 "it)", out_path);
	static const char what[] = "fetching the audit log failed";
	cf_cofferd_client *cc = NULL;
	json_t *key = NULL;
	cf_outfile of;
	bool of_open = false;
	uint64_t size = 0;
	cli_progress prog;
	int status = cli_cofferd_connect(&cc);
	if (status != CLI_OK)
		return status;
	status = CLI_FAIL;
	cf_err rc = cf_outfile_open(&of, out_path, 0600);
	if (rc != CF_OK) {
		cli_fail(what, "%s: %s", out_path, strerror(errno));
		goto out;
	}
	of_open = true;
	cli_progress_start(&prog, "fetching", 0);
	rc = cf_cofferd_download(cc, "/v1/audit", cf_outfile_writer(&of), NULL, AUDIT_FETCH_MAX,
				 cli_progress_update, &prog, &size, NULL);
	cli_progress_end(&prog);
	if (rc != CF_OK) {
		if (cf_cofferd_client_error(cc)->message[0])
			cli_cofferd_fail(what, cc, rc);
		else
			cli_fail(what, "%s: %s", out_path, strerror(errno));
		goto out;
	}
	of_open = false;
	if ((rc = cf_outfile_commit(&of)) != CF_OK) {
		cli_fail(what, "%s: %s", out_path, strerror(errno));
		goto out;
	}
	printf("wrote %s (%llu bytes)\n", out_path, (unsigned long long)size);
	if (cf_cofferd_call(cc, "GET", "/v1/audit/key", NULL, &key) == CF_OK) {
		const char *pub = NULL;
		if (cf_json_get_string(key, "pub", &pub) == CF_OK) {
			printf("cofferd says the log is signed by ");
			cli_put_safe(stdout, pub, 0);
			printf("\ncheck it: coffer audit verify %s --key KEY\n", out_path);
		}
	}
	status = CLI_OK;
out:
	if (of_open)
		cf_outfile_abort(&of);
	json_decref(key);
	cf_cofferd_client_free(cc);
	return status;
}

int cmd_audit(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{ "verify", audit_verify, verify_usage },
		{ "fetch", audit_fetch, fetch_usage },
	};
	return cli_dispatch("audit", audit_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
