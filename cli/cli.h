/*
 * cli: conventions shared by every `coffer` subcommand.
 *
 * Exit status 0 on success, 1 on failure, 2 on a usage error. Errors go
 * to stderr as one line, "coffer: <what failed>: <why>". Help goes to
 * stdout. Input files are read with a size cap.
 */
#ifndef COFFER_CLI_H
#define COFFER_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "coffer/buf.h"
#include "coffer/err.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Prints "coffer: what: why" and returns CLI_FAIL. */
int cli_fail(const char *what, const char *fmt, ...) CF_PRINTF(2, 3);
/* Prints "coffer: why" plus a hint to --help, returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) CF_PRINTF(2, 3);

/* Reads a whole file ("-" is stdin) of at most max bytes into b. */
cf_err cli_read_file(const char *path, size_t max, cf_buf *b) CF_WUR;

/*
 * Gets a passphrase: from the first line of `file` if given, else from
 * the terminal with echo off (asked twice when confirm is set).
 */
cf_err cli_passphrase(const char *file, bool confirm, cf_buf *out) CF_WUR;
/* The same with other prompts; confirm_prompt NULL asks once. */
cf_err cli_secret(const char *file, const char *prompt, const char *confirm_prompt,
		  cf_buf *out) CF_WUR;

/*
 * A progress line on stderr (bytes, percent, rate), drawn only when
 * stderr is a terminal and at most ten times a second.
 * cli_progress_update has the shape of cf_cofferd_progress_fn.
 */
typedef struct cli_progress {
	bool on, drawn;
	const char *label;
	uint64_t total, done;
	struct timespec start;
	double last;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, uint64_t total);
void cli_progress_update(void *p, uint64_t done, uint64_t total);
/* Draws the final state and ends the line (if anything was drawn). */
void cli_progress_end(cli_progress *p);

/*
 * Prints a string that came from elsewhere (cofferd, a task file) with
 * control characters, backslashes and non-ASCII bytes escaped as \xNN,
 * so that none can rewrite the terminal, padded with spaces to width.
 */
void cli_put_safe(FILE *f, const char *s, int width);

int cmd_age(int argc, char **argv);
int cmd_tee(int argc, char **argv);
int cmd_evidence(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_attest(int argc, char **argv);
int cmd_admin(int argc, char **argv);
int cmd_org(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_dataset(int argc, char **argv);
int cmd_task(int argc, char **argv);
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
int cmd_whoami(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_instance(int argc, char **argv);

/*
 * Shared by the KMS client commands (admin, org, key, dataset, task);
 * defined in cli/cmd_org.c. Profile files live in $COFFER_HOME (default
 * ~/.config/coffer): kms.json and kms-ca.pem (coffer attest), admin.key,
 * org.json, org.key and org-age.key.
 */
struct option;
struct json_t;
struct cf_kms_client;

/* True if an argument before "--" is --help or -h. */
bool cli_is_help(int argc, char **argv);

/* A command's subcommands: "coffer CMD SUB ...". */
struct cli_sub {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};
/*
 * Runs argv[1] among subs (argv[0] is the command), printing usage for
 * --help at either level and a usage error for anything unknown.
 */
int cli_dispatch(const char *cmd, const char *usage, const struct cli_sub *subs, size_t n,
		 int argc, char **argv);
/* getopt_long from the start of argv with our own messages (see cli_bad_option). */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
/* The usage error for what cli_getopt returned (':' missing value, '?' unknown). */
int cli_bad_option(const char *cmd, int c, char **argv);
/* Prints v on stdout (indented, sorted keys) and a newline; CLI_FAIL if it cannot. */
int cli_print_json(const struct json_t *v);

/* The profile folder, created (0700) if create is set. Prints the failure. */
int cli_profile(bool create, char *dir, size_t cap);
/*
 * A client for the KMS pinned in the profile; url and cacert (either may
 * be NULL) override it (--kms, --cacert). Prints the failure.
 */
int cli_kms_connect(const char *url, const char *cacert, struct cf_kms_client **out);
/* Prints "coffer: what: <the KMS's refusal or the transport error>"; returns CLI_FAIL. */
int cli_kms_fail(const char *what, const struct cf_kms_client *c, cf_err rc);

/* The organisation of this profile: its name and signing seed (secret). */
typedef struct cli_org {
	char name[72];
	uint8_t seed[32];
	char sign_pub[48];   /* base64 */
	char age_recipient[72];
} cli_org;
/* Loads org.json and org.key; prints the failure. */
int cli_org_load(cli_org *org);
void cli_org_wipe(cli_org *org);
/*
 * Connects, signs op with fields (may be NULL) as the profile's org and
 * posts it; *reply is the KMS's answer. Prints the failure as "what".
 */
int cli_org_request(const char *what, const char *url, const char *cacert, const char *op,
		    const struct json_t *fields, struct json_t **reply);

/*
 * Shared by the cofferd client commands (login, org, user, dataset,
 * task, instance, audit); defined in cli/cmd_login.c. The profile gains
 * cofferd.json, cofferd-ca.pem and the session token cofferd.token
 * (mode 0600), written by coffer login.
 */
struct cf_cofferd_client;
/* A client for the profile's cofferd with the session token. Prints the failure. */
int cli_cofferd_connect(struct cf_cofferd_client **out);
/* Prints "coffer: what: <cofferd's refusal or the transport error>"; returns CLI_FAIL. */
int cli_cofferd_fail(const char *what, const struct cf_cofferd_client *c, cf_err rc);
/* cf_cofferd_call printing the failure as what; reply may be NULL. */
int cli_cofferd_call(struct cf_cofferd_client *c, const char *what, const char *method,
		     const char *path, const struct json_t *body, struct json_t **reply);
/* A usage error unless s is an id with this prefix (docs/api.md: PREFIX-16 hex). */
int cli_check_id(const char *cmd, const char *s, const char *prefix);
/* The "items" array of a list answer, or a failure printed as what. */
int cli_items(const char *what, const struct json_t *reply, const struct json_t **items);
/* A member of a cofferd answer for printing: the string, or "-" if absent or not one. */
const char *cli_str(const struct json_t *obj, const char *key);
/* Unix seconds as "2024-05-01 12:00:00 UTC" (UTC), "-" for 0 or out of range. */
void cli_time(long long t, char *out, size_t cap);

#endif
