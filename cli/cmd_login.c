/*
 * coffer login, logout, whoami: a session with cofferd (docs/api.md,
 * "Sessions"), kept in the profile: cofferd.json names the URL, the
 * pinned CA (cofferd-ca.pem) and the user; the session token lives in
 * cofferd.token, mode 0600, and is never printed. Several users of one
 * machine use separate COFFER_HOMEs.
 *
 * Also the helpers every cofferd command shares (cli.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/cofferd_client.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"

#define CA_FILE_MAX (256u * 1024)
#define PASSWORD_MAX 1024u

static const char login_usage[] =
	"usage: coffer login URL --user NAME [--password-file FILE] [--cacert PEM] [--json]\n\n"
	"Logs in to cofferd at URL (https://HOST[:PORT]) as NAME (POST /v1/login) and\n"
	"keeps the session in the profile, $COFFER_HOME (default ~/.config/coffer):\n"
	"cofferd.json {\"url\", \"ca\", \"user\", \"token_file\"}, the CA certificate\n"
	"cofferd-ca.pem and the session token cofferd.token (mode 0600; it expires\n"
	"after 12 hours). The connection trusts only that CA, never the system's.\n"
	"The password is read from the terminal with echo off unless --password-file\n"
	"is given. Another user on the same machine uses another COFFER_HOME.\n\n"
	"  --user NAME           the cofferd user (1 to 64 characters of [a-z0-9-])\n"
	"  --password-file FILE  read the password from the first line of FILE\n"
	"  --cacert PEM          the CA certificate cofferd's TLS certificate chains to;\n"
	"                        needed at the first login, then kept in the profile\n"
	"  --json                print {\"url\", \"user\", \"org\", \"role\", \"expires\"}\n";

static const char logout_usage[] =
	"usage: coffer logout\n\n"
	"Ends this profile's session: cofferd deletes the token (POST /v1/logout) and\n"
	"the token file is removed from the profile, even when cofferd cannot be\n"
	"reached (then the command fails, and the token stays valid on cofferd until\n"
	"it expires). cofferd.json and the CA stay for the next coffer login.\n";

static const char whoami_usage[] =
	"usage: coffer whoami [--json]\n\n"
	"Prints the cofferd user this profile is logged in as, its organisation and\n"
	"role (GET /v1/me), and the cofferd URL.\n";

/* --- shared helpers (cli.h) --- */

int cli_cofferd_connect(cf_cofferd_client **out)
{
	char dir[4096];
	cf_err rc = cf_cofferd_client_open_profile(NULL, NULL, true, out);
	switch (rc) {
	case CF_OK:
		return CLI_OK;
	case CF_ERR_NOT_FOUND:
		return cli_fail("connecting to cofferd failed",
				"not logged in: run coffer login URL --user NAME first");
	case CF_ERR_AUTH:
		if (cf_profile_dir(dir, sizeof(dir)) != CF_OK)
			snprintf(dir, sizeof(dir), "the profile");
		return cli_fail("connecting to cofferd failed",
				"%s/" CF_COFFERD_TOKEN_FILE " is readable by others: "
				"log in again (coffer logout; coffer login)",
				dir);
	case CF_ERR_PARSE:
		return cli_fail("connecting to cofferd failed",
				"cofferd.json, its CA or the token in the profile is malformed: "
				"log in again");
	case CF_ERR_IO:
		return cli_fail("connecting to cofferd failed", "reading the profile: %s",
				strerror(errno));
	default:
		return cli_fail("connecting to cofferd failed", "%s", cf_strerror(rc));
	}
}

int cli_cofferd_fail(const char *what, const cf_cofferd_client *c, cf_err rc)
{
	const cf_cofferd_error *e = c ? cf_cofferd_client_error(c) : NULL;
	/* An answer that came but is wrong (too big, not JSON): not a refusal. */
	if (e && e->status >= 200 && e->status < 300 && e->message[0])
		return cli_fail(what, "cofferd's answer: %s", e->message);
	if (e && e->status == 401)
		return cli_fail(what, "cofferd refused it (401 %s): %s; log in again with coffer login",
				e->code[0] ? e->code : "unauthenticated", e->message);
	if (e && e->status && e->code[0])
		return cli_fail(what, "cofferd refused it (%ld %s): %s", e->status, e->code,
				e->message);
	if (e && e->status)
		return cli_fail(what, "cofferd answered HTTP %ld: %s", e->status,
				e->message[0] ? e->message : cf_strerror(rc));
	if (e && e->message[0])
		return cli_fail(what, "%s", e->message);
	return cli_fail(what, "%s", cf_strerror(rc));
}

int cli_cofferd_call(cf_cofferd_client *c, const char *what, const char *method, const char *path,
		     const json_t *body, json_t **reply)
{
	cf_err rc = cf_cofferd_call(c, method, path, body, reply);
	return rc == CF_OK ? CLI_OK : cli_cofferd_fail(what, c, rc);
}

int cli_check_id(const char *cmd, const char *s, const char *prefix)
{
	if (cf_cofferd_valid_id(s, prefix))
		return CLI_OK;
	return cli_usage(cmd, "'%.80s' is not a %s id (%s-16 hex digits)", s, prefix, prefix);
}

int cli_items(const char *what, const json_t *reply, const json_t **items)
{
	*items = json_object_get(reply, "items");
	if (!json_is_array(*items))
		return cli_fail(what, "cofferd's answer has no \"items\" array");
	return CLI_OK;
}

const char *cli_str(const json_t *obj, const char *key)
{
	const char *s;
	return cf_json_get_string(obj, key, &s) == CF_OK ? s : "-";
}

void cli_time(long long t, char *out, size_t cap)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (t <= 0 || t > 253402300799LL || !gmtime_r(&tt, &tm) ||
	    strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, cap, "-");
}

/* " (organisation O, role R)" as far as /v1/me says (an admin may have no organisation). */
static void put_me(const json_t *me)
{
	const char *org = cli_str(me, "org"), *role = cli_str(me, "role");
	bool has_org = strcmp(org, "-") != 0 && *org;
	if (!has_org && strcmp(role, "-") == 0)
		return;
	fputs(" (", stdout);
	if (has_org) {
		fputs("organisation ", stdout);
		cli_put_safe(stdout, org, 0);
		fputs(", ", stdout);
	}
	fputs("role ", stdout);
	cli_put_safe(stdout, role, 0);
	fputc(')', stdout);
}

/* --- login --- */

/* The CA for url: --cacert, else the one kept in the profile for the same URL. */
static int login_ca(const char *url, const char *cacert, cf_buf *pem)
{
	cf_cofferd_profile p;
	const char *path = cacert;
	if (!path) {
		cf_err rc = cf_cofferd_profile_load(&p);
		if (rc != CF_OK || strcmp(p.url, url) != 0)
			return cli_usage("login", "give the CA certificate of cofferd at %s with "
						  "--cacert PEM",
					 url);
		path = p.ca_path;
	}
	cf_err rc = cli_read_file(path, pem->max, pem);
	if (rc != CF_OK)
		return cli_fail("reading the CA certificate failed", "%s: %s", path,
				rc == CF_ERR_IO || rc == CF_ERR_NOT_FOUND ? strerror(errno)
				: rc == CF_ERR_TOO_BIG			  ? "over 256 KiB"
									  : cf_strerror(rc));
	return CLI_OK;
}

int cmd_login(int argc, char **argv)
{
	enum { O_USER = 256, O_PASSFILE, O_CACERT, O_JSON };
	static const struct option opts[] = {
		{ "user", required_argument, NULL, O_USER },
		{ "password-file", required_argument, NULL, O_PASSFILE },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ "json", no_argument, NULL, O_JSON },
		{ NULL, 0, NULL, 0 },
	};
	if (cli_is_help(argc, argv)) {
		fputs(login_usage, stdout);
		return CLI_OK;
	}
	const char *user = NULL, *passfile = NULL, *cacert = NULL;
	bool json = false;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_USER: user = optarg; break;
		case O_PASSFILE: passfile = optarg; break;
		case O_CACERT: cacert = optarg; break;
		case O_JSON: json = true; break;
		default: return cli_bad_option("login", c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage("login", "expected the cofferd URL (https://HOST[:PORT])");
	if (!user)
		return cli_usage("login", "give the user name with --user NAME");
	if (!cf_kms_valid_name(user))
		return cli_usage("login", "a user name is 1 to 64 characters of [a-z0-9-]");
	const char *url = argv[optind];

	cf_buf pem, password, token;
	cf_cofferd_client *cc = NULL;
	cf_cofferd_profile prof;
	json_t *me = NULL, *o = NULL;
	long long expires = 0;
	char prompt[200], when[40];
	int status;
	cf_buf_init(&pem, CA_FILE_MAX, false);
	cf_buf_init(&password, PASSWORD_MAX + 1, true);
	cf_buf_init(&token, CF_COFFERD_TOKEN_MAX + 1, true);
	if ((status = login_ca(url, cacert, &pem)) != CLI_OK)
		goto out;
	status = CLI_FAIL;
	cf_err rc = cf_cofferd_client_open_pem(url, pem.data, pem.len, &cc);
	if (rc == CF_ERR_ARG) {
		status = cli_usage("login", "the cofferd URL must be https://HOST[:PORT] (no path)");
		goto out;
	}
	if (rc != CF_OK) {
		cli_fail("connecting to cofferd failed", "%s", cf_strerror(rc));
		goto out;
	}
	snprintf(prompt, sizeof(prompt), "Password for %s: ", user);
	if ((rc = cli_secret(passfile, prompt, NULL, &password)) != CF_OK) {
		cli_fail("reading the password failed", "%s",
			 rc == CF_ERR_ARG	 ? "empty password"
			 : rc == CF_ERR_TOO_BIG ? "over 1024 bytes"
			 : passfile		 ? strerror(errno)
						 : "no terminal (use --password-file FILE)");
		goto out;
	}
	rc = cf_cofferd_login(cc, user, password.data, password.len, &token, &expires);
	cf_buf_free(&password);
	if (rc == CF_ERR_ARG && cf_cofferd_client_error(cc)->status == 0) {
		cli_fail("logging in failed", "the password is not UTF-8 text");
		goto out;
	}
	if (rc != CF_OK) {
		cli_cofferd_fail("logging in failed", cc, rc);
		goto out;
	}
	/* Only a session that works replaces the profile's. */
	if ((rc = cf_cofferd_profile_save(url, user, pem.data, pem.len, &prof)) != CF_OK ||
	    (rc = cf_cofferd_token_write(prof.token_path, (const char *)token.data)) != CF_OK) {
		cli_fail("saving the session failed", "%s",
			 rc == CF_ERR_IO ? strerror(errno)
			 : rc == CF_ERR_PARSE ? "the CA file holds no PEM certificate"
					      : cf_strerror(rc));
		goto out;
	}
	/* Who this is: best effort, the login itself has worked. */
	if (cf_cofferd_call(cc, "GET", "/v1/me", NULL, &me) != CF_OK)
		me = NULL;
	cli_time(expires, when, sizeof(when));
	if (json) {
		const json_t *org = json_object_get(me, "org"), *role = json_object_get(me, "role");
		o = json_pack("{s:s, s:s, s:O, s:O, s:I}", "url", prof.url, "user", user, "org",
			      json_is_string(org) ? org : json_null(), "role",
			      json_is_string(role) ? role : json_null(), "expires", (json_int_t)expires);
		status = o ? cli_print_json(o) : cli_fail("printing failed", "out of memory");
	} else {
		printf("logged in to %s as %s", prof.url, user);
		put_me(me);
		printf("\nsession until %s, kept in %s\n", when, prof.dir);
		status = CLI_OK;
	}
out:
	json_decref(o);
	json_decref(me);
	cf_cofferd_client_free(cc);
	cf_buf_free(&token);
	cf_buf_free(&password);
	cf_buf_free(&pem);
	return status;
}

/* --- logout --- */

int cmd_logout(int argc, char **argv)
{
	if (cli_is_help(argc, argv)) {
		fputs(logout_usage, stdout);
		return CLI_OK;
	}
	if (argc > 1)
		return cli_usage("logout", "unexpected argument '%s'", argv[1]);
	cf_cofferd_profile p;
	cf_cofferd_client *cc = NULL;
	cf_err rc = cf_cofferd_profile_load(&p);
	if (rc == CF_ERR_NOT_FOUND) {
		printf("not logged in\n");
		return CLI_OK;
	}
	if (rc != CF_OK)
		return cli_fail("logging out failed", "cofferd.json in the profile is malformed");
	if (access(p.token_path, F_OK) != 0) {
		printf("not logged in to %s\n", p.url);
		return CLI_OK;
	}
	int status = CLI_OK;
	rc = cf_cofferd_client_open_profile(NULL, NULL, true, &cc);
	if (rc == CF_OK)
		rc = cf_cofferd_call(cc, "POST", "/v1/logout", NULL, NULL);
	/* 401: the session had already ended; that is what logging out wants. */
	if (rc != CF_OK && !(cc && cf_cofferd_client_error(cc)->status == 401)) {
		if (cc)
			cli_cofferd_fail("telling cofferd failed (the token stays valid until it expires)",
					 cc, rc);
		else
			cli_fail("telling cofferd failed", "%s", cf_strerror(rc));
		status = CLI_FAIL;
	}
	if (unlink(p.token_path) != 0 && errno != ENOENT)
		status = cli_fail("removing the token failed", "%s: %s", p.token_path,
				  strerror(errno));
	else if (status == CLI_OK)
		printf("logged out of %s\n", p.url);
	cf_cofferd_client_free(cc);
	return status;
}

/* --- whoami --- */

int cmd_whoami(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	if (cli_is_help(argc, argv)) {
		fputs(whoami_usage, stdout);
		return CLI_OK;
	}
	bool json = false;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c != 'j')
			return cli_bad_option("whoami", c, argv);
		json = true;
	}
	if (optind != argc)
		return cli_usage("whoami", "unexpected argument '%s'", argv[optind]);
	cf_cofferd_client *cc = NULL;
	json_t *me = NULL;
	int status = cli_cofferd_connect(&cc);
	if (status != CLI_OK)
		return status;
	if ((status = cli_cofferd_call(cc, "asking cofferd who this is failed", "GET", "/v1/me",
				       NULL, &me)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(me);
	} else {
		cli_put_safe(stdout, cli_str(me, "user"), 0);
		put_me(me);
		printf(" at %s\n", cf_cofferd_client_url(cc));
	}
out:
	json_decref(me);
	cf_cofferd_client_free(cc);
	return status;
}
