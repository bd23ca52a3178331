/*
 * coffer task: the digest that identifies a task, and an input owner's
 * approval of it (docs/kms.md, "Task and release"). An approval signs
 * the digest of the task's canonical JSON, so any change to the task
 * needs new approvals.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/crypto.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"

#define TASK_FILE_MAX (1u << 20)

static const char task_usage[] =
	"usage: coffer task COMMAND [OPTIONS]\n\n"
	"commands:\n"
	"  digest   print a task's digest (SHA-256 of its canonical JSON)\n"
	"  approve  review a task and sign its digest as this profile's organisation\n";

static const char digest_usage[] =
	"usage: coffer task digest FILE.json [--json]\n\n"
	"Prints the SHA-256 (hex) of the canonical JSON of the task in FILE.json\n"
	"(\"-\" for standard input): sorted keys, no whitespace. Key order and\n"
	"formatting do not change it; any value does.\n";

static const char approve_usage[] =
	"usage: coffer task approve FILE.json [-o APPROVAL.json] [--yes]\n\n"
	"Shows the task's inputs, outputs and recipients, and the TEE kinds and\n"
	"measurements it may run on (on standard error), then signs its digest with\n"
	"the organisation key of this profile and prints {\"org\", \"sig\"}. The KMS\n"
	"releases an input's key only if its owner approved the exact task, so only\n"
	"an organisation that owns an input can approve. On a terminal it asks\n"
	"before signing, unless --yes.\n\n"
	"  -o, --output FILE  write the approval to FILE instead of standard output\n"
	"  --yes              do not ask\n";

static int load_task(const char *path, json_t **task)
{
	cf_buf b;
	cf_buf_init(&b, TASK_FILE_MAX, false);
	int status = CLI_OK;
	cf_err rc = cli_read_file(path, b.max, &b);
	if (rc != CF_OK)
		status = cli_fail("reading the task failed", "%s: %s", path,
				  rc == CF_ERR_IO || rc == CF_ERR_NOT_FOUND ? strerror(errno)
				  : rc == CF_ERR_TOO_BIG		    ? "over 1 MiB"
									    : cf_strerror(rc));
	else if ((rc = cf_json_parse((const char *)b.data, b.len, NULL, task)) != CF_OK)
		status = cli_fail("reading the task failed", "%s: %s", path,
				  rc == CF_ERR_LIMIT ? "nested too deeply" : "not valid JSON");
	cf_buf_free(&b);
	return status;
}

static int task_digest(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c != 'j')
			return cli_bad_option("task digest", c, argv);
		json = true;
	}
	if (argc - optind != 1)
		return cli_usage("task digest", "expected one task FILE.json");

	json_t *task = NULL, *o = NULL;
	uint8_t digest[CF_SHA256_LEN];
	char hex[2 * CF_SHA256_LEN + 1];
	int status = load_task(argv[optind], &task);
	if (status != CLI_OK)
		return status;
	cf_err rc = cf_task_digest(task, digest);
	if (rc != CF_OK) {
		status = cli_fail("computing the digest failed", "%s", cf_strerror(rc));
		goto out;
	}
	cf_hex_encode(digest, sizeof(digest), hex);
	if (json) {
		o = json_pack("{s:s}", "task_digest", hex);
		status = o ? cli_print_json(o) : cli_fail("printing failed", "out of memory");
	} else {
		printf("%s\n", hex);
	}
out:
	json_decref(o);
	json_decref(task);
	return status;
}

/* The organisation part of "ORG/NAME". */
static bool owned_by(const char *dataset, const char *org)
{
	size_t n = strlen(org);
	return strncmp(dataset, org, n) == 0 && dataset[n] == '/';
}

/*
 * The task comes from whoever wrote it (cofferd is not trusted): its
 * strings are printed with control characters and non-ASCII bytes
 * escaped, so none can rewrite what the approver sees.
 */
static void put_safe(FILE *f, const char *s, int width)
{
	int n = 0;
	for (const unsigned char *p = (const unsigned char *)(s ? s : "?"); *p; p++) {
		if (*p < 0x20 || *p >= 0x7f || *p == '\\')
			n += fprintf(f, "\\x%02x", *p);
		else
			n += fputc(*p, f) == EOF ? 0 : 1;
	}
	for (; n < width; n++)
		fputc(' ', f);
}

/* What the approver signs for, on stderr. Returns the number of inputs org owns. */
static size_t show_task(const json_t *task, const char *hex, const char *org)
{
	size_t mine = 0, i, j;
	const char *table;
	const json_t *in, *o, *r, *v;
	FILE *f = stderr;
	fprintf(f, "task %s\n\ninputs:\n", hex);
	json_object_foreach((json_t *)json_object_get(task, "inputs"), table, in) {
		const char *ds = json_string_value(json_object_get(in, "dataset"));
		bool own = ds && owned_by(ds, org);
		mine += own;
		fputs("  ", f);
		put_safe(f, table, 20);
		fputs(" <- ", f);
		put_safe(f, ds, 0);
		fputs(own ? "   (yours)\n" : "\n", f);
	}
	fprintf(f, "\noutputs:\n");
	json_array_foreach(json_object_get(task, "outputs"), i, o) {
		fputs("  ", f);
		put_safe(f, json_string_value(json_object_get(o, "name")), 0);
		fputs(", encrypted to:\n", f);
		json_array_foreach(json_object_get(o, "recipients"), j, r) {
			fputs("    ", f);
			put_safe(f, json_string_value(json_object_get(r, "org")), 20);
			fputc(' ', f);
			put_safe(f, json_string_value(json_object_get(r, "recipient")), 0);
			fputc('\n', f);
		}
	}
	const json_t *tee = json_object_get(task, "tee");
	fprintf(f, "\nruns only in TEE kinds:");
	json_array_foreach(json_object_get(tee, "kinds"), i, v) {
		fputc(' ', f);
		put_safe(f, json_string_value(v), 0);
	}
	fprintf(f, "\nwith measurements:\n");
	json_array_foreach(json_object_get(tee, "measurements"), i, v) {
		fputs("  ", f);
		put_safe(f, json_string_value(v), 0);
		fputc('\n', f);
	}
	const json_t *job = json_object_get(task, "job");
	if (job) {
		char *s = json_dumps(job, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY |
				   JSON_ENSURE_ASCII);
		if (s)
			fprintf(f, "\njob:\n%s\n", s);
		free(s);
	}
	fprintf(f, "\n");
	return mine;
}

static bool confirm(const char *org)
{
	char line[16];
	fprintf(stderr, "Sign this task as organisation %s? [y/N] ", org);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

static int task_approve(int argc, char **argv)
{
	enum { O_YES = 256 };
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "yes", no_argument, NULL, O_YES },
		{ NULL, 0, NULL, 0 },
	};
	const char *out_path = NULL;
	bool yes = false;
	int c;
	while ((c = cli_getopt(argc, argv, "o:", opts)) != -1) {
		switch (c) {
		case 'o': out_path = optarg; break;
		case O_YES: yes = true; break;
		default: return cli_bad_option("task approve", c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage("task approve", "expected one task FILE.json");

	json_t *task = NULL, *approval = NULL;
	cli_org org;
	uint8_t digest[CF_SHA256_LEN];
	char hex[2 * CF_SHA256_LEN + 1], why[160];
	char *text = NULL;
	cf_outfile of;
	bool of_open = false;
	memset(&org, 0, sizeof(org));
	int status = load_task(argv[optind], &task);
	if (status != CLI_OK)
		return status;
	status = CLI_FAIL;
	if (cf_task_check(task, why, sizeof(why)) != CF_OK) {
		cli_fail("approving the task failed", "%s: %s", argv[optind], why);
		goto out;
	}
	cf_err rc = cf_task_digest(task, digest);
	if (rc != CF_OK) {
		cli_fail("approving the task failed", "%s", cf_strerror(rc));
		goto out;
	}
	cf_hex_encode(digest, sizeof(digest), hex);
	if ((status = cli_org_load(&org)) != CLI_OK)
		goto out;
	status = CLI_FAIL;
	if (show_task(task, hex, org.name) == 0) {
		cli_fail("approving the task failed",
			 "organisation %s owns no input of this task (the KMS would refuse the "
			 "approval: approval_owner)",
			 org.name);
		goto out;
	}
	if (!yes && isatty(STDIN_FILENO) && isatty(STDERR_FILENO) && !confirm(org.name)) {
		cli_fail("approving the task failed", "not confirmed");
		goto out;
	}
	if ((rc = cf_task_approve(org.seed, digest, org.name, &approval)) != CF_OK) {
		cli_fail("signing the approval failed", "%s", cf_strerror(rc));
		goto out;
	}
	text = json_dumps(approval, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text) {
		cli_fail("signing the approval failed", "out of memory");
		goto out;
	}
	if (!out_path) {
		printf("%s\n", text);
		status = fflush(stdout) == 0 ? CLI_OK
					     : cli_fail("writing the approval failed", "%s",
							strerror(errno));
		goto out;
	}
	if ((rc = cf_outfile_open(&of, out_path, 0644)) != CF_OK) {
		cli_fail("writing the approval failed", "%s: %s", out_path, strerror(errno));
		goto out;
	}
	of_open = true;
	cf_writer w = cf_outfile_writer(&of);
	if ((rc = w.write(w.ctx, (const uint8_t *)text, strlen(text))) != CF_OK ||
	    (rc = w.write(w.ctx, (const uint8_t *)"\n", 1)) != CF_OK ||
	    (rc = cf_outfile_commit(&of)) != CF_OK) {
		cli_fail("writing the approval failed", "%s: %s", out_path, strerror(errno));
		goto out;
	}
	of_open = false;
	fprintf(stderr, "approval by %s written to %s\n", org.name, out_path);
	status = CLI_OK;
out:
	if (of_open)
		cf_outfile_abort(&of);
	free(text);
	json_decref(approval);
	json_decref(task);
	cli_org_wipe(&org);
	return status;
}

int cmd_task(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{ "digest", task_digest, digest_usage },
		{ "approve", task_approve, approve_usage },
	};
	return cli_dispatch("task", task_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
