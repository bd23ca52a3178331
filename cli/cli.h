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

#endif
