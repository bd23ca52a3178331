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

#endif
