/*
 * coffer: the command-line client for every role. This file dispatches
 * to the subcommands and holds the conventions they share (cli.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "coffer/cofferd_client.h"
#include "coffer/enc.h"

static const struct cli_command commands[] = {
	{ "admin", cmd_admin, "the platform admin's key and enrollment tokens" },
	{ "age", cmd_age, "encrypt and decrypt files in the age format" },
	{ "attest", cmd_attest, "verify a service's attested CA over TLS and pin it" },
	{ "audit", cmd_audit, "verify a hash-chained, signed audit log" },
	{ "dataset", cmd_dataset, "push encrypted datasets to cofferd, register them with the KMS" },
	{ "evidence", cmd_evidence, "verify attestation evidence (soft, sgx, tdx, snp, csv)" },
	{ "instance", cmd_instance, "TEE instances that cofferd runs tasks in" },
	{ "key", cmd_key, "create, import, rotate and retire dataset keys in the KMS" },
	{ "login", cmd_login, "log in to cofferd and keep the session in the profile" },
	{ "logout", cmd_logout, "end the cofferd session of this profile" },
	{ "org", cmd_org, "an organisation's keys, its KMS registration, cofferd's orgs" },
	{ "task", cmd_task, "create, review, approve and run tasks; fetch their results" },
	{ "tee", cmd_tee, "verify a soft TEE report" },
	{ "user", cmd_user, "cofferd's users and their roles" },
	{ "whoami", cmd_whoami, "the cofferd user this profile is logged in as" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

int cli_fail(const char *what, const char *fmt, ...)
{
	char why[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* One line, whatever the message holds. */
	for (char *p = why; *p; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	fprintf(stderr, "coffer: %s: %s\n", what, why);
	return CLI_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	char why[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(stderr, "coffer: %s (see 'coffer %s --help')\n", why, cmd);
	return CLI_USAGE;
}

cf_err cli_read_file(const char *path, size_t max, cf_buf *b)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? CF_ERR_NOT_FOUND : CF_ERR_IO;
	cf_err rc = CF_OK;
	uint8_t chunk[8192];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = CF_ERR_IO;
			break;
		}
		if (n == 0)
			break;
		if ((rc = cf_buf_append(b, chunk, (size_t)n)) != CF_OK)
			break;
	}
	cf_wipe(chunk, sizeof(chunk));
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc == CF_OK)
		rc = cf_buf_terminate(b);
	return rc;
}

static cf_err tty_read_line(int fd, const char *prompt, cf_buf *out)
{
	struct termios old, quiet;
	bool restore = tcgetattr(fd, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	cf_err rc = CF_OK;
	if (write(fd, prompt, strlen(prompt)) < 0)
		rc = CF_ERR_IO;
	for (;;) {
		char c;
		ssize_t n = rc == CF_OK ? read(fd, &c, 1) : -1;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = rc == CF_OK && out->len ? CF_OK : CF_ERR_IO;
			break;
		}
		if (c == '\n' || c == '\r')
			break;
		if ((rc = cf_buf_append_byte(out, (uint8_t)c)) != CF_OK)
			break;
	}
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0 && rc == CF_OK)
		rc = CF_ERR_IO;
	return rc;
}

cf_err cli_passphrase(const char *file, bool confirm, cf_buf *out)
{
	return cli_secret(file, "Enter passphrase: ", confirm ? "Confirm passphrase: " : NULL, out);
}

cf_err cli_secret(const char *file, const char *prompt, const char *confirm_prompt, cf_buf *out)
{
	cf_err rc;
	if (file) {
		cf_buf raw;
		cf_buf_init(&raw, 64 * 1024, true);
		rc = cli_read_file(file, raw.max, &raw);
		if (rc == CF_OK) {
			size_t len = 0;
			while (len < raw.len && raw.data[len] != '\n')
				len++;
			if (len && raw.data[len - 1] == '\r')
				len--;
			rc = cf_buf_append(out, raw.data, len);
		}
		cf_buf_free(&raw);
	} else {
		int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return CF_ERR_IO;
		rc = tty_read_line(fd, prompt, out);
		if (rc == CF_OK && confirm_prompt) {
			cf_buf again;
			cf_buf_init(&again, out->max, true);
			rc = tty_read_line(fd, confirm_prompt, &again);
			if (rc == CF_OK &&
			    (again.len != out->len || !cf_ct_equal(again.data, out->data, out->len)))
				rc = CF_ERR_AUTH;
			cf_buf_free(&again);
		}
		close(fd);
	}
	if (rc == CF_OK && out->len == 0)
		rc = CF_ERR_ARG;
	return rc;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

void cli_progress_start(cli_progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->on = isatty(STDERR_FILENO);
	p->label = label;
	p->total = total;
	p->last = -1;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
}

static void progress_draw(cli_progress *p, double t)
{
	char done[32], total[32], rate[32];
	cf_cofferd_format_size(p->done, done, sizeof(done));
	cf_cofferd_format_size(t > 0 ? (uint64_t)((double)p->done / t) : 0, rate, sizeof(rate));
	if (p->total) {
		cf_cofferd_format_size(p->total, total, sizeof(total));
		unsigned pct = (unsigned)(p->done >= p->total ? 100 : p->done * 100 / p->total);
		fprintf(stderr, "\r%-10s %10s / %-10s %3u%%  %10s/s   ", p->label, done, total, pct,
			rate);
	} else {
		fprintf(stderr, "\r%-10s %10s  %10s/s   ", p->label, done, rate);
	}
	fflush(stderr);
	p->drawn = true;
	p->last = t;
}

void cli_progress_update(void *arg, uint64_t done, uint64_t total)
{
	cli_progress *p = arg;
	if (!p->on)
		return;
	p->done = done;
	if (total)
		p->total = total;
	double t = seconds_since(&p->start);
	if (p->last >= 0 && t - p->last < 0.1)
		return;
	progress_draw(p, t);
}

void cli_progress_end(cli_progress *p)
{
	if (!p->on || !p->drawn)
		return;
	progress_draw(p, seconds_since(&p->start));
	fputc('\n', stderr);
	p->drawn = false;
}

void cli_put_safe(FILE *f, const char *s, int width)
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

static void usage(FILE *f)
{
	fprintf(f, "usage: coffer [--version] [--help] COMMAND [ARGS...]\n\n"
		   "coffer is the client of the coffer confidential computing platform.\n\n"
		   "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'coffer COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("coffer %s\n", COFFER_VERSION);
		return CLI_OK;
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "coffer: unknown command '%s' (see 'coffer --help')\n", argv[1]);
	return CLI_USAGE;
}
