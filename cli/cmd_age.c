/*
 * coffer age: keygen, recipient, encrypt, decrypt. Compatible with the
 * stock age and age-keygen tools, in flags and in file formats.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/age.h"
#include "coffer/io.h"

#define KEY_FILE_MAX (1u << 20)
#define MAX_RECIPIENTS 256
/* Input is read ahead on a second thread, so the copy from the kernel overlaps the crypto. */
#define PREFETCH_BLOCK (1u << 20)
#define PREFETCH_BLOCKS 4

static const char age_usage[] =
	"usage: coffer age COMMAND [OPTIONS]\n\n"
	"Files in the age-encryption.org/v1 format, interoperable with age(1).\n\n"
	"commands:\n"
	"  keygen     generate an X25519 identity\n"
	"  recipient  print the recipients of an identity file\n"
	"  encrypt    encrypt to recipients or a passphrase\n"
	"  decrypt    decrypt with identities or a passphrase\n";

static const char keygen_usage[] =
	"usage: coffer age keygen [-o FILE] [--json]\n\n"
	"Generates an X25519 identity and writes it, in age-keygen's format, to\n"
	"FILE (created with mode 0600, never overwritten) or to standard output.\n"
	"The public key (recipient) is printed on standard error; with --json, a\n"
	"JSON object {\"recipient\", \"file\"} is printed on standard output instead\n"
	"(requires -o).\n";

static const char recipient_usage[] =
	"usage: coffer age recipient [--json] IDENTITY_FILE\n\n"
	"Prints the recipient (age1...) of each identity in IDENTITY_FILE\n"
	"(\"-\" for standard input), one per line, like age-keygen -y.\n";

static const char encrypt_usage[] =
	"usage: coffer age encrypt (-r RECIPIENT | -R FILE | -p)... [-a] [-o OUT] [IN]\n\n"
	"  -r, --recipient RECIPIENT  encrypt to an age1... recipient (repeatable)\n"
	"  -R, --recipients-file FILE encrypt to every recipient in FILE (repeatable)\n"
	"  -p, --passphrase           encrypt with a passphrase (alone: no other recipient)\n"
	"      --passphrase-file FILE read the passphrase from the first line of FILE\n"
	"      --work-factor N        scrypt work factor log2(N), default 18\n"
	"  -a, --armor                write PEM-style ASCII armor\n"
	"  -o, --output OUT           write to OUT instead of standard output\n\n"
	"IN defaults to standard input. Binary output is not written to a terminal.\n";

static const char decrypt_usage[] =
	"usage: coffer age decrypt (-i IDENTITY_FILE | -p)... [-o OUT] [IN]\n\n"
	"  -i, --identity FILE        an identity file (repeatable)\n"
	"  -p, --passphrase           decrypt a passphrase-encrypted file\n"
	"      --passphrase-file FILE read the passphrase from the first line of FILE\n"
	"      --max-work-factor N    refuse scrypt work factors above N (default 22)\n"
	"  -o, --output OUT           write to OUT instead of standard output\n\n"
	"Armored input is detected. With -o, OUT appears only when the whole file\n"
	"has decrypted and authenticated; on failure nothing is left behind.\n";

static bool is_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
		if (strcmp(argv[i], "--") == 0)
			break;
	}
	return false;
}

/*
 * getopt_long with our own error messages: a leading ':' makes a missing
 * value come back as ':' and an unknown option as '?'.
 */
static int next_opt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	char spec[32];
	snprintf(spec, sizeof(spec), ":%s", shortopts);
	opterr = 0;
	return getopt_long(argc, argv, spec, longopts, NULL);
}

static int bad_option(const char *cmd, int c, char **argv)
{
	const char *arg = argv[optind - 1];
	if (c == ':')
		return cli_usage(cmd, "option '%s' needs a value", arg);
	return cli_usage(cmd, "unknown option '%s'", arg);
}

static cf_err parse_unsigned(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *s == '\0' || *end || s[0] == '-' || v < lo || v > hi)
		return CF_ERR_ARG;
	*out = (unsigned)v;
	return CF_OK;
}

static void rfc3339_now(char *out, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int age_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *outpath = NULL;
	bool json = false;
	int c;
	while ((c = next_opt(argc, argv, "o:", opts)) != -1) {
		switch (c) {
		case 'o':
			outpath = optarg;
			break;
		case 'j':
			json = true;
			break;
		default:
			return bad_option("age keygen", c, argv);
		}
	}
	if (optind != argc)
		return cli_usage("age keygen", "unexpected argument '%s'", argv[optind]);
	if (json && !outpath)
		return cli_usage("age keygen", "--json needs -o FILE (the identity is secret)");

	cf_age_x25519_key key;
	char identity[CF_AGE_IDENTITY_STRLEN + 1], recipient[CF_AGE_RECIPIENT_STRLEN + 1];
	char created[32];
	cf_buf text;
	cf_buf_init(&text, 4096, true);
	int status = CLI_FAIL;
	int fd = -1;
	cf_err rc = cf_age_keygen(&key);
	if (rc == CF_OK)
		rc = cf_age_identity_format(&key, identity);
	if (rc == CF_OK)
		rc = cf_age_recipient_format(key.pub, recipient);
	if (rc != CF_OK) {
		cli_fail("generating a key failed", "%s", cf_strerror(rc));
		goto out;
	}
	rfc3339_now(created, sizeof(created));
	rc = cf_buf_printf(&text, "# created: %s\n# public key: %s\n%s\n", created, recipient,
			   identity);
	if (rc != CF_OK) {
		cli_fail("generating a key failed", "%s", cf_strerror(rc));
		goto out;
	}
	if (outpath) {
		fd = open(outpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			cli_fail("writing the identity file failed", "%s: %s", outpath,
				 errno == EEXIST ? "file exists (not overwritten)" : strerror(errno));
			goto out;
		}
	}
	cf_fd_io io = { outpath ? fd : STDOUT_FILENO };
	cf_writer w = cf_fd_writer(&io);
	rc = w.write(w.ctx, text.data, text.len);
	if (rc == CF_OK && fd >= 0 && fsync(fd) != 0)
		rc = CF_ERR_IO;
	if (rc != CF_OK) {
		cli_fail("writing the identity failed", "%s", strerror(errno));
		if (outpath)
			unlink(outpath);
		goto out;
	}
	if (json) {
		json_t *o = json_pack("{s:s, s:s}", "recipient", recipient, "file", outpath);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		fprintf(stderr, "Public key: %s\n", recipient);
	}
	status = CLI_OK;
out:
	if (fd >= 0)
		close(fd);
	cf_age_key_wipe(&key);
	cf_wipe(identity, sizeof(identity));
	cf_buf_free(&text);
	return status;
}

static int load_identities(const char *path, cf_age_identity **ids, size_t *n)
{
	cf_buf text;
	cf_buf_init(&text, KEY_FILE_MAX, true);
	size_t bad_line = 0;
	cf_err rc = cli_read_file(path, text.max, &text);
	if (rc != CF_OK) {
		cf_buf_free(&text);
		return cli_fail("reading identity file failed", "%s: %s", path,
				rc == CF_ERR_IO || rc == CF_ERR_NOT_FOUND ? strerror(errno)
									 : cf_strerror(rc));
	}
	rc = cf_age_identities_parse((const char *)text.data, text.len, ids, n, &bad_line);
	cf_buf_free(&text);
	if (rc == CF_ERR_NOT_FOUND)
		return cli_fail("reading identity file failed", "%s: no identity in the file", path);
	if (rc == CF_ERR_UNSUPPORTED)
		return cli_fail("reading identity file failed",
				"%s:%zu: unsupported identity type (ML-KEM hybrid and plugin "
				"identities are not supported)",
				path, bad_line);
	if (rc != CF_OK)
		return cli_fail("reading identity file failed", "%s:%zu: %s", path, bad_line,
				cf_strerror(rc));
	return CLI_OK;
}

static int age_recipient(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	while ((c = next_opt(argc, argv, "", opts)) != -1) {
			if (c != 'j')
			return bad_option("age recipient", c, argv);
		json = true;
	}
	if (optind != argc - 1)
		return cli_usage("age recipient", "expected one IDENTITY_FILE");
	cf_age_identity *ids = NULL;
	size_t n = 0;
	int status = load_identities(argv[optind], &ids, &n);
	if (status != CLI_OK)
		return status;
	json_t *arr = json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		char r[CF_AGE_RECIPIENT_STRLEN + 1];
		if (cf_age_recipient_format(ids[i].key.pub, r) != CF_OK) {
			status = cli_fail("formatting recipient failed", "internal error");
			break;
		}
		if (arr)
			json_array_append_new(arr, json_string(r));
		else
			printf("%s\n", r);
	}
	if (arr && status == CLI_OK) {
		json_t *o = json_pack("{s:o}", "recipients", arr);
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	} else {
		json_decref(arr);
	}
	cf_age_identities_free(ids, n);
	return status;
}

struct io_setup {
	cf_fd_io in_io;
	cf_fd_io out_io;
	cf_outfile outfile;
	bool use_outfile;
};

static int open_io(struct io_setup *s, const char *what, const char *inpath, const char *outpath,
		   unsigned mode)
{
	s->in_io.fd = STDIN_FILENO;
	s->out_io.fd = STDOUT_FILENO;
	s->use_outfile = false;
	if (inpath && strcmp(inpath, "-") != 0) {
		s->in_io.fd = open(inpath, O_RDONLY | O_CLOEXEC);
		if (s->in_io.fd < 0)
			return cli_fail(what, "%s: %s", inpath, strerror(errno));
	}
	if (outpath && strcmp(outpath, "-") != 0) {
		if (cf_outfile_open(&s->outfile, outpath, mode) != CF_OK) {
			int saved = errno;
			if (s->in_io.fd != STDIN_FILENO)
				close(s->in_io.fd);
			return cli_fail(what, "%s: %s", outpath, strerror(saved));
		}
		s->use_outfile = true;
	}
	return CLI_OK;
}

static cf_writer io_writer(struct io_setup *s)
{
	return s->use_outfile ? cf_outfile_writer(&s->outfile) : cf_fd_writer(&s->out_io);
}

/* Commits the output on success, removes it on failure. */
static int close_io(struct io_setup *s, const char *what, cf_err rc)
{
	if (s->in_io.fd != STDIN_FILENO)
		close(s->in_io.fd);
	if (!s->use_outfile)
		return rc == CF_OK ? CLI_OK : CLI_FAIL;
	if (rc != CF_OK) {
		cf_outfile_abort(&s->outfile);
		return CLI_FAIL;
	}
	if (cf_outfile_commit(&s->outfile) != CF_OK)
		return cli_fail(what, "writing the output file: %s", strerror(errno));
	return CLI_OK;
}

static const char *age_error_text(cf_err rc)
{
	if (rc == CF_ERR_IO)
		return errno ? strerror(errno) : cf_strerror(rc);
	return cf_strerror(rc);
}

static unsigned creation_mode(void)
{
	mode_t old = umask(0);
	umask(old);
	return 0666 & ~old;
}

static int age_encrypt(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "recipient", required_argument, NULL, 'r' },
		{ "recipients-file", required_argument, NULL, 'R' },
		{ "passphrase", no_argument, NULL, 'p' },
		{ "passphrase-file", required_argument, NULL, 'P' },
		{ "work-factor", required_argument, NULL, 'w' },
		{ "armor", no_argument, NULL, 'a' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *what = "encrypt failed";
	cf_age_recipient rcpts[MAX_RECIPIENTS];
	size_t n = 0;
	bool passphrase = false, armor = false;
	const char *passfile = NULL, *outpath = NULL;
	unsigned work_factor = 0;
	int c, status = CLI_OK;
	cf_err rc;
	cf_buf pass;
	cf_buf_init(&pass, 64 * 1024, true);

	memset(rcpts, 0, sizeof(rcpts));
	while (status == CLI_OK && (c = next_opt(argc, argv, "r:R:pao:", opts)) != -1) {
		switch (c) {
		case 'r':
			if (n == MAX_RECIPIENTS) {
				status = cli_usage("age encrypt", "too many recipients");
				break;
			}
			rc = cf_age_recipient_parse(optarg, rcpts[n].pub);
			if (rc != CF_OK) {
				status = cli_fail(what, "recipient '%.80s': %s", optarg,
						  rc == CF_ERR_UNSUPPORTED
							  ? "unsupported recipient type (ML-KEM "
							    "hybrid and plugin recipients are not "
							    "supported)"
							  : cf_strerror(rc));
				break;
			}
			rcpts[n++].kind = CF_AGE_X25519;
			break;
		case 'R': {
			cf_buf text;
			cf_buf_init(&text, KEY_FILE_MAX, false);
			cf_age_recipient *list = NULL;
			size_t m = 0, bad_line = 0;
			rc = cli_read_file(optarg, text.max, &text);
			if (rc != CF_OK) {
				cf_buf_free(&text);
				status = cli_fail(what, "%s: %s", optarg, age_error_text(rc));
				break;
			}
			rc = cf_age_recipients_parse((const char *)text.data, text.len, &list, &m,
						     &bad_line);
			cf_buf_free(&text);
			if (rc != CF_OK) {
				status = cli_fail(what, "%s:%zu: %s", optarg, bad_line,
						  rc == CF_ERR_NOT_FOUND ? "no recipient in the file"
									 : cf_strerror(rc));
				break;
			}
			if (n + m > MAX_RECIPIENTS) {
				free(list);
				status = cli_usage("age encrypt", "too many recipients");
				break;
			}
			memcpy(rcpts + n, list, m * sizeof(*list));
			n += m;
			free(list);
			break;
		}
		case 'p':
			passphrase = true;
			break;
		case 'P':
			passphrase = true;
			passfile = optarg;
			break;
		case 'w':
			if (parse_unsigned(optarg, 1, 30, &work_factor) != CF_OK)
				status = cli_usage("age encrypt", "--work-factor must be 1..30");
			break;
		case 'a':
			armor = true;
			break;
		case 'o':
			outpath = optarg;
			break;
		default:
			status = bad_option("age encrypt", c, argv);
		}
	}
	if (status != CLI_OK)
		goto out;
	if (optind < argc - 1) {
		status = cli_usage("age encrypt", "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (passphrase && n > 0) {
		status = cli_usage("age encrypt", "a passphrase cannot be combined with recipients");
		goto out;
	}
	if (!passphrase && n == 0) {
		status = cli_usage("age encrypt", "no recipient: give -r, -R or -p");
		goto out;
	}
	if (!armor && !outpath && isatty(STDOUT_FILENO)) {
		status = cli_fail(what, "refusing to write binary ciphertext to a terminal (use -a or -o)");
		goto out;
	}
	if (passphrase) {
		rc = cli_passphrase(passfile, true, &pass);
		if (rc != CF_OK) {
			status = cli_fail(what, "reading the passphrase: %s",
					  rc == CF_ERR_AUTH  ? "passphrases do not match"
					  : rc == CF_ERR_ARG ? "empty passphrase"
					  : passfile	     ? strerror(errno)
							     : "no terminal (use --passphrase-file)");
			goto out;
		}
		rcpts[0].kind = CF_AGE_SCRYPT;
		rcpts[0].passphrase = pass.data;
		rcpts[0].passlen = pass.len;
		rcpts[0].work_factor = work_factor;
		n = 1;
	}

	struct io_setup io;
	status = open_io(&io, what, optind < argc ? argv[optind] : NULL, outpath, creation_mode());
	if (status != CLI_OK)
		goto out;
	cf_age_encrypt_opts eopts = { .armor = armor };
	cf_prefetch *pf = NULL;
	errno = 0;
	rc = cf_prefetch_new(cf_fd_reader(&io.in_io), PREFETCH_BLOCK, PREFETCH_BLOCKS, &pf);
	if (rc == CF_OK)
		rc = cf_age_encrypt(rcpts, n, &eopts, cf_prefetch_reader(pf), io_writer(&io));
	cf_prefetch_free(pf);
	if (rc != CF_OK)
		cli_fail(what, "%s", age_error_text(rc));
	status = close_io(&io, what, rc);
out:
	cf_buf_free(&pass);
	return status;
}

static int age_decrypt(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "identity", required_argument, NULL, 'i' },
		{ "passphrase", no_argument, NULL, 'p' },
		{ "passphrase-file", required_argument, NULL, 'P' },
		{ "max-work-factor", required_argument, NULL, 'w' },
		{ "output", required_argument, NULL, 'o' },
		{ "decrypt", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *what = "decrypt failed";
	cf_age_identity *ids = NULL;
	size_t n = 0;
	bool passphrase = false;
	const char *passfile = NULL, *outpath = NULL;
	unsigned max_wf = CF_AGE_MAX_WORK_FACTOR;
	int c, status = CLI_OK;
	cf_buf pass;
	cf_buf_init(&pass, 64 * 1024, true);

	while (status == CLI_OK && (c = next_opt(argc, argv, "i:po:d", opts)) != -1) {
		switch (c) {
		case 'i': {
			cf_age_identity *more = NULL;
			size_t m = 0;
			status = load_identities(optarg, &more, &m);
			if (status != CLI_OK)
				break;
			cf_age_identity *all = calloc(n + m + 1, sizeof(*all));
			if (!all) {
				cf_age_identities_free(more, m);
				status = cli_fail(what, "out of memory");
				break;
			}
			if (n)
				memcpy(all, ids, n * sizeof(*ids));
			memcpy(all + n, more, m * sizeof(*more));
			cf_age_identities_free(ids, n);
			cf_age_identities_free(more, m);
			ids = all;
			n += m;
			break;
		}
		case 'p':
			passphrase = true;
			break;
		case 'P':
			passphrase = true;
			passfile = optarg;
			break;
		case 'w':
			if (parse_unsigned(optarg, 1, 30, &max_wf) != CF_OK)
				status = cli_usage("age decrypt", "--max-work-factor must be 1..30");
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'd':
			break; /* accepted for symmetry with age -d */
		default:
			status = bad_option("age decrypt", c, argv);
		}
	}
	if (status != CLI_OK)
		goto out;
	if (optind < argc - 1) {
		status = cli_usage("age decrypt", "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (!passphrase && n == 0) {
		status = cli_usage("age decrypt", "no identity: give -i FILE or -p");
		goto out;
	}
	if (passphrase) {
		cf_err rc = cli_passphrase(passfile, false, &pass);
		if (rc != CF_OK) {
			status = cli_fail(what, "reading the passphrase: %s",
					  rc == CF_ERR_ARG ? "empty passphrase"
					  : passfile	   ? strerror(errno)
							   : "no terminal (use --passphrase-file)");
			goto out;
		}
		cf_age_identity *all = calloc(n + 1, sizeof(*all));
		if (!all) {
			status = cli_fail(what, "out of memory");
			goto out;
		}
		if (n)
			memcpy(all, ids, n * sizeof(*ids));
		cf_age_identities_free(ids, n);
		ids = all;
		ids[n].kind = CF_AGE_SCRYPT;
		ids[n].passphrase = pass.data;
		ids[n].passlen = pass.len;
		ids[n].max_work_factor = max_wf;
		n++;
	}

	struct io_setup io;
	status = open_io(&io, what, optind < argc ? argv[optind] : NULL, outpath, 0600);
	if (status != CLI_OK)
		goto out;
	cf_prefetch *pf = NULL;
	errno = 0;
	cf_err rc = cf_prefetch_new(cf_fd_reader(&io.in_io), PREFETCH_BLOCK, PREFETCH_BLOCKS, &pf);
	if (rc == CF_OK)
		rc = cf_age_decrypt(ids, n, cf_prefetch_reader(pf), io_writer(&io));
	cf_prefetch_free(pf);
	if (rc == CF_ERR_AGE_NO_MATCH)
		cli_fail(what, "%s%s", cf_strerror(rc),
			 passphrase ? " (wrong passphrase?)" : "");
	else if (rc == CF_ERR_AGE_WORK_FACTOR)
		cli_fail(what, "%s (raise it with --max-work-factor)", cf_strerror(rc));
	else if (rc != CF_OK)
		cli_fail(what, "%s", age_error_text(rc));
	status = close_io(&io, what, rc);
out:
	cf_age_identities_free(ids, n);
	cf_buf_free(&pass);
	return status;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
} age_commands[] = {
	{ "keygen", age_keygen, keygen_usage },
	{ "recipient", age_recipient, recipient_usage },
	{ "encrypt", age_encrypt, encrypt_usage },
	{ "decrypt", age_decrypt, decrypt_usage },
};

int cmd_age(int argc, char **argv)
{
	if (argc < 2) {
		fputs(age_usage, stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(age_usage, stdout);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof(age_commands) / sizeof(age_commands[0]); i++) {
		if (strcmp(argv[1], age_commands[i].name) != 0)
			continue;
		if (is_help(argc - 1, argv + 1)) {
			fputs(age_commands[i].usage, stdout);
			return CLI_OK;
		}
		optind = 1;
		return age_commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "coffer: unknown age command '%s' (see 'coffer age --help')\n", argv[1]);
	return CLI_USAGE;
}
