/*
 * coffer task: the digest that identifies a task, and an input owner's
 * approval of it (docs/kms.md, "Task and release"). An approval signs
 * the digest of the task's canonical JSON, so any change to the task
 * needs new approvals.
 *
 * And the task's life in cofferd (docs/api.md, "Tasks and runs"):
 * create, show, approve, run, follow, cancel, and fetch an output,
 * decrypted here with the organisation's age identity. cofferd is not
 * trusted: a task it serves is digested here before it is shown or
 * signed, and an output is decrypted only if the enclave's signature
 * over it verifies, under an output key the pinned KMS released for the
 * task's digest as computed here (docs/kms.md, "Signed outputs").
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
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

#define TASK_FILE_MAX (1u << 20)
#define IDENTITY_FILE_MAX (64u * 1024)
#define MAX_RUN_LOOKUPS 20
#define POLL_MIN_MS 500
#define POLL_MAX_MS 3000

static const char task_usage[] =
	"usage: coffer task COMMAND [OPTIONS]\n\n"
	"commands:\n"
	"  digest   print a task's digest (SHA-256 of its canonical JSON)\n"
	"  approve  review a task (a file, or one in cofferd) and sign its digest\n\n"
	"in cofferd (after coffer login):\n"
	"  create   submit a task file\n"
	"  list     list the tasks\n"
	"  show     show a task, its approvals and runs\n"
	"  run      start a run of an approved task (--wait: follow it to its end)\n"
	"  status   the state of a task or of a run\n"
	"  result   download an output and decrypt it with the organisation's key\n"
	"  cancel   cancel a task\n";

static const char create_usage[] =
	"usage: coffer task create --file TASK.json [--json]\n\n"
	"Submits the task in TASK.json (\"-\" for standard input; docs/tasks.md) to\n"
	"cofferd (POST /v1/tasks) and prints its id and digest. The task is checked\n"
	"first (inputs, outputs, TEE kinds and measurements), and cofferd's digest\n"
	"must be the one computed here.\n\n"
	"  -f, --file FILE  the task\n"
	"  --json           print cofferd's answer {\"id\", \"digest\"}\n";

static const char list_usage[] =
	"usage: coffer task list [--json]\n\n"
	"Lists cofferd's tasks, newest first: id, state, approving organisations, name.\n";

static const char show_usage[] =
	"usage: coffer task show ID [--json]\n\n"
	"Shows task ID (GET /v1/tasks/ID): its state, its digest (recomputed here from\n"
	"the task cofferd serves), inputs, outputs and recipients, where it may run,\n"
	"the input owners, who has approved, and its runs.\n";

static const char run_usage[] =
	"usage: coffer task run ID [--instance INST] [--wait [--timeout SECONDS]] [--json]\n\n"
	"Starts a run of task ID (POST /v1/tasks/ID/run) and prints the run's id. cofferd\n"
	"starts coffer-enclave for it, which gets the input keys from the KMS only if\n"
	"every input owner approved this exact task.\n\n"
	"  --instance INST    run on this instance (coffer instance list; it must be\n"
	"                     started: coffer instance start)\n"
	"  --wait             follow the run until it ends, print its state and exit\n"
	"                     status, and exit 0 only if it succeeded\n"
	"  --timeout SECONDS  with --wait, give up after this long (exit 1)\n"
	"  --json             print the answer (with --wait, the finished run)\n";

static const char status_usage[] =
	"usage: coffer task status ID [--json]\n\n"
	"ID is a task (task-...) or a run (run-...). For a task: its state, who approved\n"
	"and the state of its runs. For a run (GET /v1/runs/RUN): state, exit status,\n"
	"start and end, outputs (name, size, SHA-256) and log.\n";

static const char result_usage[] =
	"usage: coffer task result ID OUTPUT -o FILE [--force] [--run RUN] [--ciphertext]\n\n"
	"Downloads output OUTPUT of task ID (GET /v1/tasks/ID/outputs/OUTPUT) and\n"
	"decrypts it, streaming, with the organisation's age identity (org-age.key in\n"
	"the profile) into FILE (mode 0600).\n\n"
	"First it checks that an attested enclave made the output for this very task:\n"
	"the output's attestation (in the task's latest successful run, or RUN) must\n"
	"hold the KMS's statement of the run's output key, signed by the KMS pinned\n"
	"with coffer attest (its key asked over that CA) for the digest computed here\n"
	"from the task, and the output key's signature over that digest, OUTPUT and\n"
	"the SHA-256 of the ciphertext. FILE appears only once the whole output has\n"
	"decrypted and authenticated and its ciphertext is the one signed; on any\n"
	"failure nothing is left behind. It prints the TEE and the measurement of the\n"
	"enclave that made the output.\n\n"
	"  -o, --output FILE  where the plaintext goes (never over an existing file\n"
	"                     unless --force)\n"
	"  --force            replace FILE if it exists\n"
	"  --run RUN          check against this run's outputs\n"
	"  --ciphertext       save the age file as it is, without decrypting\n";

static const char cancel_usage[] =
	"usage: coffer task cancel ID [--json]\n\n"
	"Cancels task ID (POST /v1/tasks/ID/cancel) and prints its new state.\n";

static const char digest_usage[] =
	"usage: coffer task digest FILE.json [--json]\n\n"
	"Prints the SHA-256 (hex) of the canonical JSON of the task in FILE.json\n"
	"(\"-\" for standard input): sorted keys, no whitespace. Key order and\n"
	"formatting do not change it; any value does.\n";

static const char approve_usage[] =
	"usage: coffer task approve FILE.json [-o APPROVAL.json] [--yes]\n"
	"       coffer task approve ID [-o APPROVAL.json] [--yes]\n\n"
	"Shows the task's inputs, outputs and recipients, and the TEE kinds and\n"
	"measurements it may run on (on standard error), then signs its digest with\n"
	"the organisation key of this profile and prints {\"org\", \"sig\"}. The KMS\n"
	"releases an input's key only if its owner approved the exact task, so only\n"
	"an organisation that owns an input can approve. On a terminal it asks\n"
	"before signing, unless --yes.\n\n"
	"With a task id (task-...), the task is fetched from cofferd, its digest is\n"
	"computed here (and must be the one cofferd states: what is shown is what is\n"
	"signed), and the approval is posted to cofferd (POST /v1/tasks/ID/approvals).\n\n"
	"  -o, --output FILE  write the approval to FILE instead of standard output\n"
	"                     (with an id: as well)\n"
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
 * strings are printed with cli_put_safe, so none can rewrite what the
 * approver sees.
 */
/* What the approver signs for, on f. Returns the number of inputs org (may be NULL) owns. */
static size_t show_task(FILE *f, const json_t *task, const char *hex, const char *org)
{
	size_t mine = 0, i, j;
	const char *table;
	const json_t *in, *o, *r, *v;
	fprintf(f, "task %s\n\ninputs:\n", hex);
	json_object_foreach((json_t *)json_object_get(task, "inputs"), table, in) {
		const char *ds = json_string_value(json_object_get(in, "dataset"));
		bool own = ds && org && owned_by(ds, org);
		mine += own;
		fputs("  ", f);
		cli_put_safe(f, table, 20);
		fputs(" <- ", f);
		cli_put_safe(f, ds, 0);
		fputs(own ? "   (yours)\n" : "\n", f);
	}
	fprintf(f, "\noutputs:\n");
	json_array_foreach(json_object_get(task, "outputs"), i, o) {
		fputs("  ", f);
		cli_put_safe(f, json_string_value(json_object_get(o, "name")), 0);
		fputs(", encrypted to:\n", f);
		json_array_foreach(json_object_get(o, "recipients"), j, r) {
			fputs("    ", f);
			cli_put_safe(f, json_string_value(json_object_get(r, "org")), 20);
			fputc(' ', f);
			cli_put_safe(f, json_string_value(json_object_get(r, "recipient")), 0);
			fputc('\n', f);
		}
	}
	const json_t *tee = json_object_get(task, "tee");
	fprintf(f, "\nruns only in TEE kinds:");
	json_array_foreach(json_object_get(tee, "kinds"), i, v) {
		fputc(' ', f);
		cli_put_safe(f, json_string_value(v), 0);
	}
	fprintf(f, "\nwith measurements:\n");
	json_array_foreach(json_object_get(tee, "measurements"), i, v) {
		fputs("  ", f);
		cli_put_safe(f, json_string_value(v), 0);
		fputc('\n', f);
	}
	/* Every other member is signed too (the job, its name, ...): none is hidden. */
	const char *key;
	const json_t *member;
	json_object_foreach((json_t *)task, key, member) {
		if (strcmp(key, "inputs") == 0 || strcmp(key, "outputs") == 0 ||
		    strcmp(key, "tee") == 0)
			continue;
		char *s = json_dumps(member, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY |
					     JSON_ENSURE_ASCII);
		fputc('\n', f);
		cli_put_safe(f, key, 0);
		fputs(":\n", f);
		/* Line by line, so the JSON's own newlines stay and nothing else gets through. */
		for (char *line = s, *next; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			fputs("  ", f);
			cli_put_safe(f, line, 0);
			fputc('\n', f);
		}
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

/* Writes the approval to path (mode 0644, atomically). */
static int write_approval(const char *path, const char *text, const char *org)
{
	cf_outfile of;
	cf_err rc = cf_outfile_open(&of, path, 0644);
	if (rc != CF_OK)
		return cli_fail("writing the approval failed", "%s: %s", path, strerror(errno));
	cf_writer w = cf_outfile_writer(&of);
	if ((rc = w.write(w.ctx, (const uint8_t *)text, strlen(text))) != CF_OK ||
	    (rc = w.write(w.ctx, (const uint8_t *)"\n", 1)) != CF_OK) {
		cf_outfile_abort(&of);
		return cli_fail("writing the approval failed", "%s: %s", path, strerror(errno));
	}
	if ((rc = cf_outfile_commit(&of)) != CF_OK)
		return cli_fail("writing the approval failed", "%s: %s", path, strerror(errno));
	fprintf(stderr, "approval by %s written to %s\n", org, path);
	return CLI_OK;
}

/*
 * Shows task on stderr, asks (unless yes), and signs its digest as the
 * profile's organisation. org is loaded here; the caller wipes it.
 */
static int review_and_sign(const json_t *task, const char *where, bool yes, cli_org *org,
			   uint8_t digest[CF_SHA256_LEN], json_t **approval)
{
	char hex[2 * CF_SHA256_LEN + 1], why[160];
	int status;
	if (cf_task_check(task, why, sizeof(why)) != CF_OK)
		return cli_fail("approving the task failed", "%s: %s", where, why);
	cf_err rc = cf_task_digest(task, digest);
	if (rc != CF_OK)
		return cli_fail("approving the task failed", "%s", cf_strerror(rc));
	cf_hex_encode(digest, CF_SHA256_LEN, hex);
	if ((status = cli_org_load(org)) != CLI_OK)
		return status;
	if (show_task(stderr, task, hex, org->name) == 0)
		return cli_fail("approving the task failed",
				"organisation %s owns no input of this task (the KMS would refuse the "
				"approval: approval_owner)",
				org->name);
	if (!yes && isatty(STDIN_FILENO) && isatty(STDERR_FILENO) && !confirm(org->name))
		return cli_fail("approving the task failed", "not confirmed");
	if ((rc = cf_task_approve(org->seed, digest, org->name, approval)) != CF_OK)
		return cli_fail("signing the approval failed", "%s", cf_strerror(rc));
	return CLI_OK;
}

/* The task cofferd serves for id, checked against the digest it states. */
static int fetch_task(cf_cofferd_client *cc, const char *id, json_t **reply, const json_t **task,
		      char digest_hex[2 * CF_SHA256_LEN + 1])
{
	char path[64];
	uint8_t d[CF_SHA256_LEN];
	const char *claimed;
	snprintf(path, sizeof(path), "/v1/tasks/%s", id);
	int status = cli_cofferd_call(cc, "fetching the task failed", "GET", path, NULL, reply);
	if (status != CLI_OK)
		return status;
	*task = json_object_get(*reply, "task");
	if (!json_is_object(*task))
		return cli_fail("fetching the task failed", "cofferd's answer has no \"task\" object");
	cf_err rc = cf_task_digest(*task, d);
	if (rc != CF_OK)
		return cli_fail("fetching the task failed", "%s", cf_strerror(rc));
	cf_hex_encode(d, sizeof(d), digest_hex);
	/* cofferd's word is only a cross-check: what counts is the digest computed here. */
	if (cf_json_get_string(*reply, "digest", &claimed) != CF_OK)
		return cli_fail("fetching the task failed", "cofferd's answer has no digest");
	if (strcmp(claimed, digest_hex) != 0)
		return cli_fail("fetching the task failed",
				"cofferd states digest %.64s, but the task it serves hashes to %s: "
				"the task was altered",
				claimed, digest_hex);
	return CLI_OK;
}

/*
 * The digest this profile created or approved task id under, kept in
 * PROFILE/tasks/ID: cofferd could otherwise serve another approved task
 * (with its genuine, signed outputs) under this id. remember_digest
 * writes it; known_digest reads it (false: this profile has no record).
 */
static void remember_digest(const char *id, const char *hex)
{
	char dir[1024], path[1200];
	cf_outfile of;
	if (cli_profile(true, dir, sizeof(dir)) != CLI_OK)
		return;
	snprintf(path, sizeof(path), "%s/tasks", dir);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return;
	snprintf(path, sizeof(path), "%s/tasks/%s", dir, id);
	if (cf_outfile_open(&of, path, 0600) != CF_OK)
		return;
	cf_writer w = cf_outfile_writer(&of);
	char line[2 * CF_SHA256_LEN + 2];
	int n = snprintf(line, sizeof(line), "%s\n", hex);
	if (w.write(w.ctx, (const uint8_t *)line, (size_t)n) != CF_OK || cf_outfile_commit(&of) != CF_OK) {
		cf_outfile_abort(&of);
		fprintf(stderr, "coffer: warning: could not record task %s's digest in the profile\n", id);
	}
}

static bool known_digest(const char *id, char hex[2 * CF_SHA256_LEN + 1])
{
	char dir[1024], path[1200];
	if (cli_profile(false, dir, sizeof(dir)) != CLI_OK)
		return false;
	snprintf(path, sizeof(path), "%s/tasks/%s", dir, id);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = fgets(hex, 2 * CF_SHA256_LEN + 1, f) && strlen(hex) == 2 * CF_SHA256_LEN;
	fclose(f);
	return ok;
}

static int approve_remote(const char *id, const char *out_path, bool yes)
{
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL, *approval = NULL, *posted = NULL;
	const json_t *task = NULL;
	cli_org org;
	uint8_t digest[CF_SHA256_LEN];
	char hex[2 * CF_SHA256_LEN + 1], path[96];
	char *text = NULL;
	memset(&org, 0, sizeof(org));
	int status = cli_cofferd_connect(&cc);
	if (status != CLI_OK)
		return status;
	if ((status = fetch_task(cc, id, &reply, &task, hex)) != CLI_OK ||
	    (status = review_and_sign(task, id, yes, &org, digest, &approval)) != CLI_OK)
		goto out;
	if (out_path) {
		text = json_dumps(approval, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (!text) {
			status = cli_fail("signing the approval failed", "out of memory");
			goto out;
		}
		if ((status = write_approval(out_path, text, org.name)) != CLI_OK)
			goto out;
	}
	snprintf(path, sizeof(path), "/v1/tasks/%s/approvals", id);
	if ((status = cli_cofferd_call(cc, "posting the approval failed", "POST", path, approval,
				       &posted)) != CLI_OK)
		goto out;
	remember_digest(id, hex);
	printf("approved task %s (digest %s) as organisation %s\napprovals:", id, hex, org.name);
	size_t i;
	const json_t *a;
	json_array_foreach(json_object_get(posted, "approvals"), i, a) {
		putchar(' ');
		cli_put_safe(stdout, json_is_string(a) ? json_string_value(a) : cli_str(a, "org"), 0);
	}
	putchar('\n');
out:
	free(text);
	json_decref(posted);
	json_decref(approval);
	json_decref(reply);
	cf_cofferd_client_free(cc);
	cli_org_wipe(&org);
	return status;
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
		return cli_usage("task approve", "expected one task FILE.json or task ID");
	/* A task id is fetched from cofferd; anything else is a file ("./task-..." for one so named). */
	if (cf_cofferd_valid_id(argv[optind], "task"))
		return approve_remote(argv[optind], out_path, yes);

	json_t *task = NULL, *approval = NULL;
	cli_org org;
	uint8_t digest[CF_SHA256_LEN];
	char *text = NULL;
	memset(&org, 0, sizeof(org));
	int status = load_task(argv[optind], &task);
	if (status != CLI_OK)
		return status;
	if ((status = review_and_sign(task, argv[optind], yes, &org, digest, &approval)) != CLI_OK)
		goto out;
	status = CLI_FAIL;
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
	status = write_approval(out_path, text, org.name);
out:
	free(text);
	json_decref(approval);
	json_decref(task);
	cli_org_wipe(&org);
	return status;
}

/* --- in cofferd --- */

/* --json as the only option, and one id of prefix (or either prefix2, if non-NULL). */
static int id_args(const char *cmd, int argc, char **argv, const char *prefix,
		   const char *prefix2, bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	*json = false;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c != 'j')
			return cli_bad_option(cmd, c, argv);
		*json = true;
	}
	if (argc - optind != 1)
		return cli_usage(cmd, "expected one %s id", prefix);
	if (prefix2 && cf_cofferd_valid_id(argv[optind], prefix2))
		return CLI_OK;
	return cli_check_id(cmd, argv[optind], prefix);
}

static int task_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL;
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "f:", opts)) != -1) {
		switch (c) {
		case 'f': file = optarg; break;
		case 'j': json = true; break;
		default: return cli_bad_option("task create", c, argv);
		}
	}
	if (optind != argc)
		return cli_usage("task create", "unexpected argument '%s' (the task goes in --file)",
				 argv[optind]);
	if (!file)
		return cli_usage("task create", "give the task with --file TASK.json");

	json_t *task = NULL, *body = NULL, *reply = NULL;
	cf_cofferd_client *cc = NULL;
	uint8_t digest[CF_SHA256_LEN];
	char hex[2 * CF_SHA256_LEN + 1], why[160];
	const char *id, *claimed;
	int status = load_task(file, &task);
	if (status != CLI_OK)
		return status;
	status = CLI_FAIL;
	if (cf_task_check(task, why, sizeof(why)) != CF_OK) {
		cli_fail("creating the task failed", "%s: %s", file, why);
		goto out;
	}
	cf_err rc = cf_task_digest(task, digest);
	if (rc != CF_OK) {
		cli_fail("creating the task failed", "%s", cf_strerror(rc));
		goto out;
	}
	cf_hex_encode(digest, sizeof(digest), hex);
	if (!(body = json_pack("{s:O}", "task", task))) {
		cli_fail("creating the task failed", "out of memory");
		goto out;
	}
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK ||
	    (status = cli_cofferd_call(cc, "creating the task failed", "POST", "/v1/tasks", body,
				       &reply)) != CLI_OK)
		goto out;
	status = CLI_FAIL;
	if (cf_json_get_string(reply, "id", &id) != CF_OK || !cf_cofferd_valid_id(id, "task")) {
		cli_fail("creating the task failed", "cofferd's answer has no valid task id");
		goto out;
	}
	if (cf_json_get_string(reply, "digest", &claimed) == CF_OK && strcmp(claimed, hex) != 0) {
		cli_fail("creating the task failed",
			 "cofferd states digest %.64s for %s, but the task's is %s: do not approve it",
			 claimed, id, hex);
		goto out;
	}
	remember_digest(id, hex);
	if (json)
		status = cli_print_json(reply);
	else {
		printf("%s %s\n", id, hex);
		status = CLI_OK;
	}
out:
	json_decref(reply);
	json_decref(body);
	json_decref(task);
	cf_cofferd_client_free(cc);
	return status;
}

/* Prints an array of strings (or of objects with "org") separated by spaces; "-" if empty. */
static void put_orgs(const json_t *arr)
{
	size_t i;
	const json_t *a;
	if (json_array_size(arr) == 0)
		fputs("-", stdout);
	json_array_foreach(arr, i, a) {
		if (i)
			putchar(',');
		cli_put_safe(stdout, json_is_string(a) ? json_string_value(a) : cli_str(a, "org"), 0);
	}
}

static int task_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c != 'j')
			return cli_bad_option("task list", c, argv);
		json = true;
	}
	if (optind != argc)
		return cli_usage("task list", "unexpected argument '%s'", argv[optind]);
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL;
	const json_t *items, *t;
	size_t i;
	int status = cli_cofferd_connect(&cc);
	if (status != CLI_OK)
		return status;
	if ((status = cli_cofferd_call(cc, "listing the tasks failed", "GET", "/v1/tasks", NULL,
				       &reply)) != CLI_OK ||
	    (status = cli_items("listing the tasks failed", reply, &items)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(reply);
		goto out;
	}
	printf("%-22s %-10s %-20s %-24s %s\n", "ID", "STATE", "APPROVALS", "NAME", "CREATED");
	json_array_foreach(items, i, t) {
		long long created = 0;
		char when[40];
		if (cf_json_get_int(t, "created", &created) != CF_OK)
			created = 0;
		cli_time(created, when, sizeof(when));
		cli_put_safe(stdout, cli_str(t, "id"), 22);
		putchar(' ');
		cli_put_safe(stdout, cli_str(t, "state"), 10);
		putchar(' ');
		/* Padding by hand: put_orgs prints a list. */
		const json_t *ap = json_object_get(t, "approvals");
		put_orgs(ap);
		int w = 0;
		size_t j;
		const json_t *a;
		json_array_foreach(ap, j, a) {
			const char *o = json_is_string(a) ? json_string_value(a) : cli_str(a, "org");
			w += (int)strlen(o) + (j ? 1 : 0);
		}
		for (w = w ? w : 1; w < 20; w++)
			putchar(' ');
		putchar(' ');
		cli_put_safe(stdout, cli_str(t, "name"), 24);
		printf(" %s\n", when);
	}
out:
	json_decref(reply);
	cf_cofferd_client_free(cc);
	return status;
}

/* A run in a task's "runs": an id string, or an object with "id". */
static const char *run_id_of(const json_t *r)
{
	return json_is_string(r) ? json_string_value(r) : cli_str(r, "id");
}

/* One line per run: id, state, exit status (as far as cofferd's task answer says). */
static void put_runs(const json_t *runs)
{
	size_t i;
	const json_t *r;
	if (json_array_size(runs) == 0) {
		printf("  (none)\n");
		return;
	}
	json_array_foreach(runs, i, r) {
		long long exit_status;
		fputs("  ", stdout);
		cli_put_safe(stdout, run_id_of(r), 22);
		if (json_is_object(r)) {
			putchar(' ');
			cli_put_safe(stdout, cli_str(r, "state"), 10);
			if (cf_json_get_int(r, "exit_status", &exit_status) == CF_OK)
				printf(" exit %lld", exit_status);
		}
		putchar('\n');
	}
}

static int task_show(int argc, char **argv)
{
	bool json;
	int status = id_args("task show", argc, argv, "task", NULL, &json);
	if (status != CLI_OK)
		return status;
	const char *id = argv[optind];
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL;
	const json_t *task = NULL;
	char hex[2 * CF_SHA256_LEN + 1];
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		return status;
	if ((status = fetch_task(cc, id, &reply, &task, hex)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(reply);
		goto out;
	}
	printf("task %s, state ", id);
	cli_put_safe(stdout, cli_str(reply, "state"), 0);
	printf("\ndigest %s (recomputed here: matches cofferd's)\n", hex);
	fflush(stdout);
	show_task(stdout, task, hex, NULL);
	printf("input owners: ");
	put_orgs(json_object_get(reply, "owners"));
	printf("\napproved by:  ");
	put_orgs(json_object_get(reply, "approvals"));
	printf("\nruns:\n");
	put_runs(json_object_get(reply, "runs"));
out:
	json_decref(reply);
	cf_cofferd_client_free(cc);
	return status;
}

static int get_run(cf_cofferd_client *cc, const char *run, json_t **reply)
{
	char path[96];
	snprintf(path, sizeof(path), "/v1/runs/%s", run);
	return cli_cofferd_call(cc, "asking for the run failed", "GET", path, NULL, reply);
}

/* A run's summary: state, exit status, times, outputs. */
static void put_run(const json_t *r, bool with_log)
{
	long long v;
	char when[40];
	cli_put_safe(stdout, cli_str(r, "id"), 0);
	printf(" of task ");
	cli_put_safe(stdout, cli_str(r, "task"), 0);
	printf(": ");
	cli_put_safe(stdout, cli_str(r, "state"), 0);
	if (cf_json_get_int(r, "exit_status", &v) == CF_OK)
		printf(", exit status %lld", v);
	putchar('\n');
	if (cf_json_get_int(r, "started", &v) == CF_OK) {
		cli_time(v, when, sizeof(when));
		printf("  started %s\n", when);
	}
	if (cf_json_get_int(r, "ended", &v) == CF_OK) {
		cli_time(v, when, sizeof(when));
		printf("  ended   %s\n", when);
	}
	size_t i;
	const json_t *o;
	json_array_foreach(json_object_get(r, "outputs"), i, o) {
		char size[32] = "-";
		if (cf_json_get_int(o, "size", &v) == CF_OK && v >= 0)
			cf_cofferd_format_size((uint64_t)v, size, sizeof(size));
		printf("  output ");
		cli_put_safe(stdout, cli_str(o, "name"), 16);
		printf(" %-10s sha256 ", size);
		cli_put_safe(stdout, cli_str(o, "sha256"), 0);
		putchar('\n');
	}
	const char *log, *message;
	if (cf_json_get_string(r, "message", &message) == CF_OK && *message) {
		printf("  message ");
		cli_put_safe(stdout, message, 0);
		putchar('\n');
	}
	if (with_log && cf_json_get_string(r, "log", &log) == CF_OK && *log) {
		/* The log is the enclave's and cofferd's text: shown escaped, line by line. */
		printf("log:\n");
		const char *p = log;
		while (*p) {
			size_t n = strcspn(p, "\n");
			char line[1024];
			snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1), p);
			fputs("  ", stdout);
			cli_put_safe(stdout, line, 0);
			putchar('\n');
			p += n;
			if (*p == '\n')
				p++;
		}
	}
}

static void sleep_ms(unsigned ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* Polls run until its state is final; *reply is the last answer. */
static int wait_run(cf_cofferd_client *cc, const char *run, long timeout, json_t **reply)
{
	time_t start = time(NULL);
	unsigned delay = POLL_MIN_MS;
	char last[32] = "";
	for (;;) {
		json_t *r = NULL;
		int status = get_run(cc, run, &r);
		if (status != CLI_OK)
			return status;
		const char *state = cli_str(r, "state");
		if (strcmp(state, last) != 0 && isatty(STDERR_FILENO)) {
			fprintf(stderr, "%s ", run);
			cli_put_safe(stderr, state, 0);
			fputc('\n', stderr);
		}
		snprintf(last, sizeof(last), "%s", state);
		if (cf_cofferd_state_final(state)) {
			*reply = r;
			return CLI_OK;
		}
		json_decref(r);
		if (timeout > 0 && time(NULL) - start >= timeout)
			return cli_fail("waiting for the run failed", "%s is still %s after %ld s", run,
					last, timeout);
		sleep_ms(delay);
		delay = delay * 3 / 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 3 / 2;
	}
}

static int task_run(int argc, char **argv)
{
	enum { O_INSTANCE = 256, O_WAIT, O_TIMEOUT, O_JSON };
	static const struct option opts[] = {
		{ "instance", required_argument, NULL, O_INSTANCE },
		{ "wait", no_argument, NULL, O_WAIT },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "json", no_argument, NULL, O_JSON },
		{ NULL, 0, NULL, 0 },
	};
	const char *instance = NULL;
	bool wait = false, json = false;
	long timeout = 0;
	char *end;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_INSTANCE: instance = optarg; break;
		case O_WAIT: wait = true; break;
		case O_TIMEOUT:
			errno = 0;
			timeout = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || timeout < 1)
				return cli_usage("task run", "--timeout is a number of seconds");
			break;
		case O_JSON: json = true; break;
		default: return cli_bad_option("task run", c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage("task run", "expected the task ID");
	const char *id = argv[optind];
	int status = cli_check_id("task run", id, "task");
	if (status != CLI_OK)
		return status;
	if (instance && (status = cli_check_id("task run", instance, "inst")) != CLI_OK)
		return status;
	if (timeout && !wait)
		return cli_usage("task run", "--timeout goes with --wait");

	cf_cofferd_client *cc = NULL;
	json_t *body = NULL, *reply = NULL, *done = NULL;
	char path[64], run[32];
	snprintf(path, sizeof(path), "/v1/tasks/%s/run", id);
	body = instance ? json_pack("{s:s}", "instance", instance) : json_object();
	if (!body)
		return cli_fail("starting the run failed", "out of memory");
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK ||
	    (status = cli_cofferd_call(cc, "starting the run failed", "POST", path, body, &reply)) !=
		    CLI_OK)
		goto out;
	/* docs/api.md: {run}, the run's id (an object with "id" is taken too). */
	const json_t *r = json_object_get(reply, "run");
	const char *rid = r ? run_id_of(r) : "-";
	if (!cf_cofferd_valid_id(rid, "run")) {
		status = cli_fail("starting the run failed", "cofferd's answer has no valid run id");
		goto out;
	}
	snprintf(run, sizeof(run), "%.24s", rid); /* run- and 16 hex digits */
	if (!wait) {
		if (json)
			status = cli_print_json(reply);
		else
			printf("%s\n", run);
		goto out;
	}
	if ((status = wait_run(cc, run, timeout, &done)) != CLI_OK)
		goto out;
	if (json)
		status = cli_print_json(done);
	else
		put_run(done, false);
	if (status == CLI_OK && strcmp(cli_str(done, "state"), "succeeded") != 0)
		status = CLI_FAIL; /* the run's failure is the command's */
out:
	json_decref(done);
	json_decref(reply);
	json_decref(body);
	cf_cofferd_client_free(cc);
	return status;
}

static int task_status(int argc, char **argv)
{
	bool json;
	int status = id_args("task status", argc, argv, "task", "run", &json);
	if (status != CLI_OK)
		return status;
	const char *id = argv[optind];
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL;
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		return status;
	if (cf_cofferd_valid_id(id, "run")) {
		if ((status = get_run(cc, id, &reply)) != CLI_OK)
			goto out;
		if (json)
			status = cli_print_json(reply);
		else
			put_run(reply, true);
		goto out;
	}
	char path[64];
	snprintf(path, sizeof(path), "/v1/tasks/%s", id);
	if ((status = cli_cofferd_call(cc, "asking for the task failed", "GET", path, NULL,
				       &reply)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(reply);
		goto out;
	}
	printf("%s ", id);
	cli_put_safe(stdout, cli_str(reply, "state"), 0);
	printf("\n  owners    ");
	put_orgs(json_object_get(reply, "owners"));
	printf("\n  approvals ");
	put_orgs(json_object_get(reply, "approvals"));
	printf("\nruns:\n");
	put_runs(json_object_get(reply, "runs"));
out:
	json_decref(reply);
	cf_cofferd_client_free(cc);
	return status;
}

static int task_cancel(int argc, char **argv)
{
	bool json;
	int status = id_args("task cancel", argc, argv, "task", NULL, &json);
	if (status != CLI_OK)
		return status;
	const char *id = argv[optind];
	char path[64];
	snprintf(path, sizeof(path), "/v1/tasks/%s/cancel", id);
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL;
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		return status;
	if ((status = cli_cofferd_call(cc, "cancelling the task failed", "POST", path, NULL,
				       &reply)) == CLI_OK) {
		if (json) {
			status = cli_print_json(reply);
		} else {
			printf("%s ", id);
			cli_put_safe(stdout, cli_str(reply, "state"), 0);
			putchar('\n');
		}
	}
	json_decref(reply);
	cf_cofferd_client_free(cc);
	return status;
}

/* --- task result --- */

/*
 * What cofferd declares for output name: from run, or else from the
 * task's newest run that succeeded (task_reply is cofferd's answer for the
 * task). *found is false if it declares nothing committed; else *size,
 * sha256 and *attestation (a copy, NULL if cofferd lists none) are set.
 * All of it is cofferd's word: the caller verifies it.
 */
static int output_meta(cf_cofferd_client *cc, const json_t *task_reply, const char *task_id,
		       const char *run, const char *name, uint64_t *size,
		       uint8_t sha256[CF_SHA256_LEN], json_t **attestation, bool *found)
{
	json_t *r = NULL;
	int status = CLI_OK;
	*found = false;
	*attestation = NULL;
	const json_t *runs = json_object_get(task_reply, "runs"), *cand;
	size_t i, n = run ? 1 : json_array_size(runs);
	for (i = 0; i < n && i < MAX_RUN_LOOKUPS && !*found; i++) {
		const char *rid = run ? run : run_id_of(json_array_get(runs, i));
		if (!cf_cofferd_valid_id(rid, "run"))
			continue;
		json_decref(r);
		r = NULL;
		if ((status = get_run(cc, rid, &r)) != CLI_OK)
			goto out;
		if (!run && strcmp(cli_str(r, "state"), "succeeded") != 0)
			continue;
		if (run && strcmp(cli_str(r, "task"), task_id) != 0 && strcmp(cli_str(r, "task"), "-")) {
			status = cli_fail("fetching the result failed", "%s is a run of another task",
					  run);
			goto out;
		}
		size_t j;
		json_array_foreach(json_object_get(r, "outputs"), j, cand) {
			const char *on, *hex;
			long long sz;
			size_t got = 0;
			if (cf_json_get_string(cand, "name", &on) != CF_OK || strcmp(on, name) != 0)
				continue;
			/* Not committed yet (sha256 null): nothing is declared for it. */
			if (!json_is_string(json_object_get(cand, "sha256")))
				continue;
			if (cf_json_get_int(cand, "size", &sz) != CF_OK || sz < 0 ||
			    cf_json_get_string(cand, "sha256", &hex) != CF_OK || strlen(hex) != 64 ||
			    cf_hex_decode(hex, 64, sha256, CF_SHA256_LEN, &got) != CF_OK) {
				status = cli_fail("fetching the result failed",
						  "cofferd's metadata for output %s is malformed", name);
				goto out;
			}
			*size = (uint64_t)sz;
			const json_t *att = json_object_get(cand, "attestation");
			if (att && !json_is_null(att) && !(*attestation = json_deep_copy(att))) {
				status = cli_fail("fetching the result failed", "out of memory");
				goto out;
			}
			*found = true;
			break;
		}
	}
out:
	json_decref(r);
	return status;
}

/* Whether s is one of the strings of array (hex compared ignoring case). */
static bool listed(const json_t *array, const char *s, bool hex)
{
	size_t i;
	const json_t *v;
	json_array_foreach(array, i, v) {
		const char *x = json_string_value(v);
		if (x && (hex ? strcasecmp(x, s) == 0 : strcmp(x, s) == 0))
			return true;
	}
	return false;
}

/*
 * Checks, before a byte is decrypted, that the output cofferd declares is
 * one an attested enclave made for this task: the KMS's statement of the
 * run's output key verifies under the signing key of the KMS pinned with
 * `coffer attest` (asked over that CA), for the digest computed here from
 * the task, and the output key signed (digest, name, sha256). The TEE and
 * its measurement must also be among those the task allows (the KMS
 * checked; a recipient sees it for itself). origin says who made it.
 */
static int verify_output(const json_t *task, const uint8_t digest[CF_SHA256_LEN],
			 const char *name, const uint8_t sha256[CF_SHA256_LEN],
			 const json_t *attestation, cf_kms_output_origin *origin)
{
	static const char what[] = "fetching the result failed";
	static const char refused[] =
		"the output is not signed by an enclave the KMS released keys to for this task";
	cf_kms_client *kc = NULL;
	uint8_t kms_pub[CF_ED25519_PUB_LEN];
	char why[320];
	int status = cli_kms_connect(NULL, NULL, &kc);
	if (status != CLI_OK)
		return status;
	cf_err rc = cf_kms_info_pub(kc, kms_pub);
	if (rc != CF_OK) {
		status = cli_kms_fail("asking the pinned KMS for its signing key failed", kc, rc);
		goto out;
	}
	status = CLI_FAIL;
	if (!attestation) {
		cli_fail(what, "%s: cofferd lists no attestation for output %s", refused, name);
		goto out;
	}
	if (cf_kms_output_verify(kms_pub, attestation, digest, name, sha256, origin, why,
				 sizeof(why)) != CF_OK) {
		cli_fail(what, "%s: %s", refused, why);
		goto out;
	}
	const json_t *tee = json_object_get(task, "tee");
	if (!listed(json_object_get(tee, "kinds"), origin->tee, false) ||
	    !listed(json_object_get(tee, "measurements"), origin->measurement, true)) {
		cli_fail(what, "%s: the KMS released the keys to a %s enclave of measurement %.128s, "
			 "which the task does not allow", refused, origin->tee, origin->measurement);
		goto out;
	}
	status = CLI_OK;
out:
	cf_kms_client_free(kc);
	return status;
}

/* The profile's org-age.key, refused if others may read it. */
static int load_org_identity(cf_age_identity **ids, size_t *n)
{
	char dir[4096], path[4200];
	cf_buf text;
	struct stat st;
	size_t bad_line = 0;
	int status = cli_profile(false, dir, sizeof(dir));
	if (status != CLI_OK)
		return status;
	snprintf(path, sizeof(path), "%s/org-age.key", dir);
	if (stat(path, &st) != 0)
		return cli_fail("loading the organisation's age identity failed", "%s: %s%s", path,
				strerror(errno),
				errno == ENOENT ? " (coffer org keygen makes it)" : "");
	if (st.st_mode & 077)
		return cli_fail("loading the organisation's age identity failed",
				"%s is readable by others (chmod 600 it)", path);
	cf_buf_init(&text, IDENTITY_FILE_MAX, true);
	cf_err rc = cli_read_file(path, text.max, &text);
	if (rc == CF_OK)
		rc = cf_age_identities_parse((const char *)text.data, text.len, ids, n, &bad_line);
	if (rc != CF_OK)
		status = cli_fail("loading the organisation's age identity failed", "%s: %s", path,
				  rc == CF_ERR_IO ? strerror(errno) : cf_strerror(rc));
	cf_buf_free(&text);
	return status;
}

/* Counts what passes for the progress line. */
typedef struct progress_reader {
	cf_reader in;
	cli_progress *p;
	uint64_t n;
} progress_reader;

static cf_err progress_read(void *ctx, uint8_t *buf, size_t cap, size_t *got)
{
	progress_reader *r = ctx;
	cf_err rc = r->in.read(r->in.ctx, buf, cap, got);
	if (rc == CF_OK) {
		r->n += *got;
		cli_progress_update(r->p, r->n, 0);
	}
	return rc;
}

static bool age_error(cf_err rc)
{
	return rc == CF_ERR_AGE_HEADER || rc == CF_ERR_AGE_NO_MATCH || rc == CF_ERR_AGE_HMAC ||
	       rc == CF_ERR_AGE_PAYLOAD || rc == CF_ERR_AGE_TRUNCATED || rc == CF_ERR_AGE_TRAILING ||
	       rc == CF_ERR_AGE_ARMOR || rc == CF_ERR_AGE_IDENTITY || rc == CF_ERR_AGE_WORK_FACTOR ||
	       rc == CF_ERR_AGE_SCRYPT_MIXED || rc == CF_ERR_UNSUPPORTED;
}

static int task_result(int argc, char **argv)
{
	enum { O_FORCE = 256, O_RUN, O_CIPHER };
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, O_FORCE },
		{ "run", required_argument, NULL, O_RUN },
		{ "ciphertext", no_argument, NULL, O_CIPHER },
		{ NULL, 0, NULL, 0 },
	};
	const char *out_path = NULL, *run = NULL;
	bool force = false, raw = false;
	int c;
	while ((c = cli_getopt(argc, argv, "o:", opts)) != -1) {
		switch (c) {
		case 'o': out_path = optarg; break;
		case O_FORCE: force = true; break;
		case O_RUN: run = optarg; break;
		case O_CIPHER: raw = true; break;
		default: return cli_bad_option("task result", c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage("task result", "expected the task ID and the OUTPUT's name");
	const char *id = argv[optind], *name = argv[optind + 1];
	int status = cli_check_id("task result", id, "task");
	if (status != CLI_OK)
		return status;
	if (run && (status = cli_check_id("task result", run, "run")) != CLI_OK)
		return status;
	if (!out_path)
		return cli_usage("task result", "give the file to write with -o FILE");
	struct stat st;
	if (!force && lstat(out_path, &st) == 0)
		return cli_fail("fetching the result failed", "%s exists (add --force to replace it)",
				out_path);

	static const char what[] = "fetching the result failed";
	cf_age_identity *ids = NULL;
	size_t nids = 0;
	cf_cofferd_client *cc = NULL;
	cf_cofferd_stream *stream = NULL;
	cf_outfile of;
	bool of_open = false, found = false;
	uint64_t size = UINT64_MAX;
	uint8_t want[CF_SHA256_LEN], got[CF_SHA256_LEN], digest[CF_SHA256_LEN];
	char digest_hex[2 * CF_SHA256_LEN + 1];
	json_t *treply = NULL, *att = NULL;
	const json_t *task = NULL;
	cf_kms_output_origin origin;
	char seg[3 * 128 + 1], path[sizeof(seg) + 64]; /* names of up to 128 bytes, escaped */
	cli_progress prog;
	cf_err rc;
	if ((rc = cf_cofferd_path_segment(name, seg, sizeof(seg))) != CF_OK)
		return cli_usage("task result", "the OUTPUT name is empty or too long");
	snprintf(path, sizeof(path), "/v1/tasks/%s/outputs/%s", id, seg);
	if (!raw && (status = load_org_identity(&ids, &nids)) != CLI_OK)
		return status;
	/* The digest is computed here from the task cofferd serves, never taken from cofferd. */
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK ||
	    (status = fetch_task(cc, id, &treply, &task, digest_hex)) != CLI_OK ||
	    (status = output_meta(cc, treply, id, run, name, &size, want, &att, &found)) != CLI_OK)
		goto out;
	status = CLI_FAIL;
	if ((rc = cf_task_digest(task, digest)) != CF_OK) {
		cli_fail(what, "%s", cf_strerror(rc));
		goto out;
	}
	char known[2 * CF_SHA256_LEN + 1];
	if (known_digest(id, known) && strcmp(known, digest_hex) != 0) {
		cli_fail(what,
			 "this profile created or approved %s as task %s, but cofferd now serves "
			 "task %s under that id: not the task you agreed to",
			 id, known, digest_hex);
		goto out;
	}
	if (!found) {
		cli_fail(what, "cofferd lists no committed output %s%s", name,
			 run ? " in that run" : " in a run of the task that succeeded");
		goto out;
	}
	if ((status = verify_output(task, digest, name, want, att, &origin)) != CLI_OK)
		goto out;
	status = CLI_FAIL;
	if ((rc = cf_cofferd_stream_open(cc, path, size, true, &stream)) != CF_OK) {
		cli_cofferd_fail(what, cc, rc);
		goto out;
	}
	if ((rc = cf_outfile_open(&of, out_path, 0600)) != CF_OK) {
		cli_fail(what, "%s: %s", out_path, strerror(errno));
		goto out;
	}
	of_open = true;
	cli_progress_start(&prog, "fetching", found ? size : 0);
	progress_reader pr = { cf_cofferd_stream_reader(stream), &prog, 0 };
	cf_reader in = { progress_read, &pr };
	cf_writer w = cf_outfile_writer(&of);
	if (raw) {
		uint8_t chunk[64 * 1024];
		for (;;) {
			size_t n = 0;
			if ((rc = in.read(in.ctx, chunk, sizeof(chunk), &n)) != CF_OK || n == 0)
				break;
			if ((rc = w.write(w.ctx, chunk, n)) != CF_OK)
				break;
		}
	} else {
		rc = cf_age_decrypt(ids, nids, in, w);
	}
	cli_progress_end(&prog);
	if (rc == CF_ERR_AGE_NO_MATCH) {
		cli_fail(what, "output %s is not encrypted to this organisation's age identity "
			       "(org-age.key)", name);
		goto out;
	}
	if (rc != CF_OK) {
		if (age_error(rc))
			cli_fail(what, "decrypting output %s: %s", name, cf_strerror(rc));
		else if (cf_cofferd_client_error(cc)->message[0])
			cli_cofferd_fail(what, cc, rc);
		else
			cli_fail(what, "%s: %s", out_path, rc == CF_ERR_IO ? strerror(errno)
									   : cf_strerror(rc));
		goto out;
	}
	/* The decryption read to the end; the transfer's digest is final. */
	if ((rc = cf_cofferd_stream_sha256(stream, got)) != CF_OK) {
		cli_fail(what, "the transfer did not end");
		goto out;
	}
	cf_cofferd_expect e = { size, want };
	if ((rc = cf_cofferd_expect_check(&e, cf_cofferd_stream_count(stream), got)) != CF_OK) {
		cli_fail(what, "the output is not signed by an enclave the KMS released keys to for "
			 "this task: the ciphertext downloaded is not the one signed for output %s (%s)",
			 name, rc == CF_ERR_AUTH ? "another SHA-256" : "another size");
		goto out;
	}
	if ((rc = cf_outfile_commit(&of)) != CF_OK) {
		of_open = false;
		cli_fail(what, "%s: %s", out_path, strerror(errno));
		goto out;
	}
	of_open = false;
	char human[32], hex[2 * CF_SHA256_LEN + 1];
	cf_cofferd_format_size(cf_cofferd_stream_count(stream), human, sizeof(human));
	cf_hex_encode(got, sizeof(got), hex);
	char issued[40];
	cli_time(origin.issued, issued, sizeof(issued));
	fprintf(stderr, "wrote %s: output %s of %s, %s; %s of ciphertext, sha256 %s\n", out_path,
		name, id, raw ? "the age file as is" : "decrypted", human, hex);
	fprintf(stderr, "made by a ");
	cli_put_safe(stderr, origin.tee, 0);
	fprintf(stderr, " enclave, measurement ");
	cli_put_safe(stderr, origin.measurement, 0);
	fprintf(stderr, ",\n  for task digest %s: signed with the output key the KMS released "
			"with the task's keys at %s\n", digest_hex, issued);
	status = CLI_OK;
out:
	json_decref(att);
	json_decref(treply);
	if (of_open)
		cf_outfile_abort(&of);
	cf_cofferd_stream_free(stream);
	cf_cofferd_client_free(cc);
	cf_age_identities_free(ids, nids);
	return status;
}

int cmd_task(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{ "digest", task_digest, digest_usage },
		{ "approve", task_approve, approve_usage },
		{ "create", task_create, create_usage },
		{ "list", task_list, list_usage },
		{ "show", task_show, show_usage },
		{ "run", task_run, run_usage },
		{ "status", task_status, status_usage },
		{ "result", task_result, result_usage },
		{ "cancel", task_cancel, cancel_usage },
	};
	return cli_dispatch("task", task_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
