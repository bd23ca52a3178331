/*
 * coffer org: an organisation's keys and its registration with the KMS
 * (docs/kms.md, "Trust set-up"), and the helpers every KMS client
 * command shares (cli.h): the profile, the pinned connection, the
 * organisation's signing key and signed requests.
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
#include "coffer/cofferd_client.h"
#include "coffer/enc.h"
#include "coffer/io.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"

#define PROFILE_FILE_MAX (64u * 1024)

static const char org_usage[] =
	"usage: coffer org COMMAND [OPTIONS]\n\n"
	"An organisation's keys and its registration with the KMS.\n\n"
	"commands:\n"
	"  keygen    make the organisation's signing key and age identity\n"
	"  register  register with the KMS using an enrollment token from the admin\n"
	"  show      print the organisation of this profile\n\n"
	"cofferd (after coffer login):\n"
	"  create    create an organisation in cofferd (admin)\n"
	"  list      list cofferd's organisations and their public keys\n"
	"  publish   send this profile's public keys to cofferd (org-admin)\n\n"
	"The keys live in the profile, $COFFER_HOME (default ~/.config/coffer).\n";

static const char keygen_usage[] =
	"usage: coffer org keygen --org NAME\n\n"
	"Makes the organisation's Ed25519 signing key (org.key) and age X25519\n"
	"identity (org-age.key, in age-keygen's format: results sent to the\n"
	"organisation decrypt with it) in the profile, mode 0600, and records their\n"
	"public parts in org.json. Existing keys are never overwritten. Prints\n"
	"{\"org\", \"sign_pub\", \"age_recipient\"}: give it to the platform admin for\n"
	"an enrollment token (coffer admin enroll-token --from FILE).\n\n"
	"  --org NAME   1 to 64 characters of [a-z0-9-]\n";

static const char register_usage[] =
	"usage: coffer org register --token FILE [--json] [--kms URL --cacert FILE]\n\n"
	"Registers this profile's organisation with the KMS (POST /v1/enroll) using\n"
	"the admin's enrollment token FILE ({\"token\", \"token_sig\"}, from coffer admin\n"
	"enroll-token). The token must name this profile's organisation and keys.\n\n"
	"  --token FILE  the enrollment token (\"-\" for standard input)\n"
	"  --json        print the KMS's answer\n"
	"  --kms URL     talk to this KMS instead of the one pinned by coffer attest\n"
	"  --cacert FILE trust this CA certificate (PEM) instead of the pinned one\n";

static const char show_usage[] =
	"usage: coffer org show [--json]\n\n"
	"Prints this profile's organisation: name, signing public key, age recipient,\n"
	"and the KMS it is pinned to. Checks that org.key matches org.json.\n";

static const char create_usage[] =
	"usage: coffer org create NAME [--from FILE] [--json]\n\n"
	"Creates organisation NAME in cofferd (POST /v1/orgs; the admin's role). Its\n"
	"public keys go along when known: sign_pub, which cofferd uses to catch a bad\n"
	"approval early, and age_recipient, which outputs are encrypted to. They come\n"
	"from FILE, or else from this profile if it holds the keys of an organisation\n"
	"of that name (coffer org keygen). Prints the organisation's id.\n\n"
	"  --from FILE  the organisation's public keys as coffer org keygen printed\n"
	"               them ({\"org\", \"sign_pub\", \"age_recipient\"}, the file given\n"
	"               to coffer admin enroll-token); \"org\" must be NAME\n"
	"  --json       print cofferd's answer {\"id\", \"name\"}\n";

static const char list_usage[] =
	"usage: coffer org list [--json]\n\n"
	"Lists cofferd's organisations with the public keys it holds for them\n"
	"(GET /v1/orgs). cofferd is not trusted with these: the KMS keeps the keys\n"
	"that count (coffer org register).\n";

static const char publish_usage[] =
	"usage: coffer org publish [--json]\n\n"
	"Sends this profile's organisation's public keys (org.json: sign_pub and\n"
	"age_recipient) to cofferd (PUT /v1/orgs/NAME/keys; org-admin of NAME).\n";

/* --- shared helpers (cli.h) --- */

bool cli_is_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

int cli_dispatch(const char *cmd, const char *usage, const struct cli_sub *subs, size_t n,
		 int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage, stdout);
		return CLI_OK;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(argv[1], subs[i].name) != 0)
			continue;
		if (cli_is_help(argc - 1, argv + 1)) {
			fputs(subs[i].usage, stdout);
			return CLI_OK;
		}
		optind = 1;
		return subs[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "coffer: unknown %s command '%s' (see 'coffer %s --help')\n", cmd, argv[1],
		cmd);
	return CLI_USAGE;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	char spec[32];
	snprintf(spec, sizeof(spec), ":%s", shortopts);
	opterr = 0;
	return getopt_long(argc, argv, spec, longopts, NULL);
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
	const char *arg = argv[optind - 1];
	if (c == ':')
		return cli_usage(cmd, "option '%s' needs a value", arg);
	return cli_usage(cmd, "unknown option '%s'", arg);
}

int cli_print_json(const json_t *v)
{
	char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	if (!s)
		return cli_fail("printing JSON failed", "out of memory");
	printf("%s\n", s);
	free(s);
	return fflush(stdout) == 0 ? CLI_OK : cli_fail("writing the output failed", "%s",
						      strerror(errno));
}

int cli_profile(bool create, char *dir, size_t cap)
{
	cf_err rc = create ? cf_profile_mkdir(dir, cap) : cf_profile_dir(dir, cap);
	if (rc == CF_ERR_NOT_FOUND)
		return cli_fail("finding the profile failed", "set COFFER_HOME or HOME");
	if (rc != CF_OK)
		return cli_fail("making the profile folder failed", "%s",
				rc == CF_ERR_IO ? strerror(errno) : cf_strerror(rc));
	return CLI_OK;
}

int cli_kms_connect(const char *url, const char *cacert, cf_kms_client **out)
{
	cf_err rc = cf_kms_client_open_profile(url, cacert, out);
	switch (rc) {
	case CF_OK:
		return CLI_OK;
	case CF_ERR_NOT_FOUND:
		if (cacert)
			return cli_fail("connecting to the KMS failed", "%s: %s", cacert,
					strerror(ENOENT));
		return cli_fail("connecting to the KMS failed",
				"not attested: run coffer attest URL first");
	case CF_ERR_AUTH:
		return cli_fail("connecting to the KMS failed",
				"the pinned CA certificate does not match ca_sha256 in kms.json: "
				"run coffer attest URL again");
	case CF_ERR_PARSE:
		return cli_fail("connecting to the KMS failed",
				"kms.json or the CA certificate in the profile is malformed");
	case CF_ERR_ARG:
		return cli_fail("connecting to the KMS failed",
				"the KMS URL must be https://HOST[:PORT] (no path)");
	default:
		return cli_fail("connecting to the KMS failed", "%s", cf_strerror(rc));
	}
}

int cli_kms_fail(const char *what, const cf_kms_client *c, cf_err rc)
{
	const cf_kms_error *e = c ? cf_kms_client_error(c) : NULL;
	if (e && e->check[0] && e->status)
		return cli_fail(what, "the KMS refused it (%ld %s): %s", e->status, e->check,
				e->message);
	if (e && e->check[0])
		return cli_fail(what, "%s: %s", e->check, e->message);
	if (e && e->status)
		return cli_fail(what, "the KMS answered HTTP %ld: %s", e->status,
				e->message[0] ? e->message : cf_strerror(rc));
	if (e && e->message[0])
		return cli_fail(what, "%s", e->message);
	return cli_fail(what, "%s", cf_strerror(rc));
}

/* Reads and parses a small JSON file of the profile. */
static cf_err read_json(const char *path, json_t **out)
{
	cf_buf b;
	cf_buf_init(&b, PROFILE_FILE_MAX, false);
	cf_err rc = cli_read_file(path, b.max, &b);
	if (rc == CF_OK)
		rc = cf_json_parse(b.data ? (const char *)b.data : "", b.len, NULL, out);
	cf_buf_free(&b);
	return rc;
}

void cli_org_wipe(cli_org *org)
{
	cf_wipe(org, sizeof(*org));
}

int cli_org_load(cli_org *org)
{
	char dir[4096], path[4200];
	json_t *j = NULL;
	const char *name, *pub_b64, *rcpt;
	uint8_t pub[CF_ED25519_PUB_LEN];
	char derived[CF_KMS_PUB_B64_LEN + 1];
	int status = CLI_FAIL;
	memset(org, 0, sizeof(*org));
	if ((status = cli_profile(false, dir, sizeof(dir))) != CLI_OK)
		return status;
	status = CLI_FAIL;
	snprintf(path, sizeof(path), "%s/org.json", dir);
	cf_err rc = read_json(path, &j);
	if (rc == CF_ERR_NOT_FOUND) {
		cli_fail("loading the organisation failed",
			 "no organisation in %s: run coffer org keygen --org NAME first", dir);
		goto out;
	}
	if (rc != CF_OK || cf_json_get_string(j, "org", &name) != CF_OK ||
	    !cf_kms_valid_name(name) || cf_json_get_string(j, "sign_pub", &pub_b64) != CF_OK ||
	    strlen(pub_b64) != CF_KMS_PUB_B64_LEN ||
	    cf_json_get_string(j, "age_recipient", &rcpt) != CF_OK ||
	    strlen(rcpt) >= sizeof(org->age_recipient)) {
		cli_fail("loading the organisation failed", "%s: %s", path,
			 rc == CF_OK ? "not {\"org\", \"sign_pub\", \"age_recipient\"}"
				     : cf_strerror(rc));
		goto out;
	}
	snprintf(org->name, sizeof(org->name), "%s", name);
	snprintf(org->sign_pub, sizeof(org->sign_pub), "%s", pub_b64);
	snprintf(org->age_recipient, sizeof(org->age_recipient), "%s", rcpt);
	snprintf(path, sizeof(path), "%s/org.key", dir);
	rc = cf_sigkey_read(path, org->seed);
	if (rc != CF_OK) {
		cli_fail("loading the organisation's key failed", "%s: %s", path,
			 rc == CF_ERR_AUTH	  ? "readable by others (chmod 600 it)"
			 : rc == CF_ERR_PARSE	  ? "not a coffer signing key file"
			 : rc == CF_ERR_NOT_FOUND ? strerror(ENOENT)
						  : cf_strerror(rc));
		goto out;
	}
	if (cf_ed25519_public(org->seed, pub) != CF_OK) {
		cli_fail("loading the organisation's key failed", "%s", cf_strerror(CF_ERR_CRYPTO));
		goto out;
	}
	cf_b64_encode(pub, sizeof(pub), true, derived);
	if (strcmp(derived, org->sign_pub) != 0) {
		cli_fail("loading the organisation's key failed",
			 "%s does not match sign_pub in org.json", path);
		goto out;
	}
	status = CLI_OK;
out:
	if (status != CLI_OK)
		cli_org_wipe(org);
	json_decref(j);
	return status;
}

int cli_org_request(const char *what, const char *url, const char *cacert, const char *op,
		    const json_t *fields, json_t **reply)
{
	cli_org org;
	cf_kms_client *c = NULL;
	*reply = NULL;
	int status = cli_org_load(&org);
	if (status != CLI_OK)
		return status;
	if ((status = cli_kms_connect(url, cacert, &c)) != CLI_OK)
		goto out;
	cf_err rc = cf_kms_signed_request(c, org.name, org.seed, op, fields, reply);
	if (rc != CF_OK)
		status = cli_kms_fail(what, c, rc);
out:
	cf_kms_client_free(c);
	cli_org_wipe(&org);
	return status;
}

/* --- org keygen --- */

static void rfc3339_now(char *out, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Writes a new file (never over an existing one) with mode 0600. */
static cf_err write_new(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? CF_ERR_ARG : CF_ERR_IO;
	cf_fd_io io = { fd };
	cf_writer w = cf_fd_writer(&io);
	cf_err rc = w.write(w.ctx, data, len);
	if (rc == CF_OK && fsync(fd) != 0)
		rc = CF_ERR_IO;
	if (close(fd) != 0 && rc == CF_OK)
		rc = CF_ERR_IO;
	if (rc != CF_OK)
		unlink(path);
	return rc;
}

static int org_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "org", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c != 'o')
			return cli_bad_option("org keygen", c, argv);
		name = optarg;
	}
	if (optind != argc)
		return cli_usage("org keygen", "unexpected argument '%s'", argv[optind]);
	if (!name)
		return cli_usage("org keygen", "give the organisation's name with --org NAME");
	if (!cf_kms_valid_name(name))
		return cli_usage("org keygen", "an organisation name is 1 to 64 characters of [a-z0-9-]");

	char dir[4096], p_json[4200], p_key[4200], p_age[4200], comment[160], created[32];
	uint8_t seed[CF_ED25519_SEED_LEN], pub[CF_ED25519_PUB_LEN];
	char pub_b64[CF_KMS_PUB_B64_LEN + 1];
	char identity[CF_AGE_IDENTITY_STRLEN + 1], recipient[CF_AGE_RECIPIENT_STRLEN + 1];
	cf_age_x25519_key key;
	cf_buf text;
	json_t *pubs = NULL;
	char *pubs_text = NULL;
	bool wrote_key = false, wrote_age = false;
	int status;
	memset(&key, 0, sizeof(key));
	cf_buf_init(&text, 4096, true);
	if ((status = cli_profile(true, dir, sizeof(dir))) != CLI_OK)
		goto out;
	status = CLI_FAIL;
	snprintf(p_json, sizeof(p_json), "%s/org.json", dir);
	snprintf(p_key, sizeof(p_key), "%s/org.key", dir);
	snprintf(p_age, sizeof(p_age), "%s/org-age.key", dir);
	const char *const paths[] = { p_json, p_key, p_age };
	for (size_t i = 0; i < 3; i++) {
		struct stat st;
		if (lstat(paths[i], &st) == 0) {
			cli_fail("making the organisation's keys failed",
				 "%s exists (keys are never overwritten; use another COFFER_HOME)",
				 paths[i]);
			goto out;
		}
	}

	cf_err rc = cf_ed25519_keygen(seed, pub);
	if (rc == CF_OK)
		rc = cf_age_keygen(&key);
	if (rc == CF_OK)
		rc = cf_age_identity_format(&key, identity);
	if (rc == CF_OK)
		rc = cf_age_recipient_format(key.pub, recipient);
	if (rc != CF_OK) {
		cli_fail("making the organisation's keys failed", "%s", cf_strerror(rc));
		goto out;
	}
	cf_b64_encode(pub, sizeof(pub), true, pub_b64);

	snprintf(comment, sizeof(comment), "coffer signing key (Ed25519) of organisation %s", name);
	if ((rc = cf_sigkey_write(p_key, seed, comment)) != CF_OK) {
		cli_fail("writing the signing key failed", "%s: %s", p_key,
			 rc == CF_ERR_IO ? strerror(errno) : "file exists");
		goto out;
	}
	wrote_key = true;
	rfc3339_now(created, sizeof(created));
	if ((rc = cf_buf_printf(&text, "# created: %s\n# public key: %s\n%s\n", created, recipient,
				identity)) != CF_OK ||
	    (rc = write_new(p_age, text.data, text.len)) != CF_OK) {
		cli_fail("writing the age identity failed", "%s: %s", p_age,
			 rc == CF_ERR_IO ? strerror(errno) : cf_strerror(rc));
		goto out;
	}
	wrote_age = true;
	pubs = json_pack("{s:s, s:s, s:s}", "org", name, "sign_pub", pub_b64, "age_recipient",
			 recipient);
	pubs_text = pubs ? json_dumps(pubs, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	cf_buf_reset(&text);
	if (!pubs_text || cf_buf_printf(&text, "%s\n", pubs_text) != CF_OK) {
		cli_fail("making the organisation's keys failed", "out of memory");
		goto out;
	}
	if ((rc = write_new(p_json, text.data, text.len)) != CF_OK) {
		cli_fail("writing org.json failed", "%s: %s", p_json,
			 rc == CF_ERR_IO ? strerror(errno) : cf_strerror(rc));
		goto out;
	}
	status = cli_print_json(pubs);
out:
	if (status != CLI_OK) {
		if (wrote_key)
			unlink(p_key);
		if (wrote_age)
			unlink(p_age);
	}
	free(pubs_text);
	json_decref(pubs);
	cf_wipe(seed, sizeof(seed));
	cf_wipe(identity, sizeof(identity));
	cf_age_key_wipe(&key);
	cf_buf_free(&text);
	return status;
}

/* --- org register --- */

static int org_register(int argc, char **argv)
{
	enum { O_TOKEN = 256, O_JSON, O_KMS, O_CACERT };
	static const struct option opts[] = {
		{ "token", required_argument, NULL, O_TOKEN },
		{ "json", no_argument, NULL, O_JSON },
		{ "kms", required_argument, NULL, O_KMS },
		{ "cacert", required_argument, NULL, O_CACERT },
		{ NULL, 0, NULL, 0 },
	};
	const char *token_path = NULL, *url = NULL, *cacert = NULL;
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_TOKEN: token_path = optarg; break;
		case O_JSON: json = true; break;
		case O_KMS: url = optarg; break;
		case O_CACERT: cacert = optarg; break;
		default: return cli_bad_option("org register", c, argv);
		}
	}
	if (optind != argc)
		return cli_usage("org register", "unexpected argument '%s'", argv[optind]);
	if (!token_path)
		return cli_usage("org register", "give the enrollment token with --token FILE");

	cli_org org;
	json_t *file = NULL, *body = NULL, *reply = NULL;
	cf_kms_client *kc = NULL;
	const json_t *token;
	const char *t_org, *t_pub, *t_rcpt, *sig;
	long long expires;
	int status = cli_org_load(&org);
	if (status != CLI_OK)
		return status;
	status = CLI_FAIL;
	cf_err rc = read_json(token_path, &file);
	if (rc != CF_OK) {
		cli_fail("reading the enrollment token failed", "%s: %s", token_path,
			 rc == CF_ERR_NOT_FOUND || rc == CF_ERR_IO ? strerror(errno)
								     : "not JSON");
		goto out;
	}
	token = json_object_get(file, "token");
	if (!json_is_object(token) || cf_json_get_string(token, "org", &t_org) != CF_OK ||
	    cf_json_get_string(token, "sign_pub", &t_pub) != CF_OK ||
	    cf_json_get_string(token, "age_recipient", &t_rcpt) != CF_OK ||
	    cf_json_get_int(token, "expires", &expires) != CF_OK ||
	    cf_json_get_string(file, "token_sig", &sig) != CF_OK) {
		cli_fail("reading the enrollment token failed",
			 "%s: not {\"token\": {\"org\", \"sign_pub\", \"age_recipient\", "
			 "\"expires\"}, \"token_sig\"}",
			 token_path);
		goto out;
	}
	if (strcmp(t_org, org.name) != 0 || strcmp(t_pub, org.sign_pub) != 0 ||
	    strcmp(t_rcpt, org.age_recipient) != 0) {
		cli_fail("registering failed",
			 "the token is for organisation %.64s with other keys than this profile's "
			 "(%s)",
			 t_org, org.name);
		goto out;
	}
	if (expires < (long long)time(NULL)) {
		cli_fail("registering failed", "the enrollment token has expired: ask the admin "
					       "for a new one");
		goto out;
	}
	body = json_pack("{s:O, s:s}", "token", token, "token_sig", sig);
	if (!body) {
		cli_fail("registering failed", "out of memory");
		goto out;
	}
	if ((status = cli_kms_connect(url, cacert, &kc)) != CLI_OK)
		goto out;
	rc = cf_kms_call(kc, "/v1/enroll", body, &reply);
	if (rc != CF_OK) {
		status = cli_kms_fail("registering failed", kc, rc);
		goto out;
	}
	if (json)
		status = cli_print_json(reply);
	else
		printf("registered organisation %s with %s\n", org.name, cf_kms_client_url(kc));
out:
	json_decref(reply);
	json_decref(body);
	json_decref(file);
	cf_kms_client_free(kc);
	cli_org_wipe(&org);
	return status;
}

/* --- org show --- */

static int org_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c != 'j')
			return cli_bad_option("org show", c, argv);
		json = true;
	}
	if (optind != argc)
		return cli_usage("org show", "unexpected argument '%s'", argv[optind]);

	char dir[4096], path[4200];
	cli_org org;
	json_t *kms = NULL, *o = NULL;
	const char *url = NULL;
	int status = cli_org_load(&org);
	if (status != CLI_OK)
		return status;
	if ((status = cli_profile(false, dir, sizeof(dir))) != CLI_OK)
		goto out;
	snprintf(path, sizeof(path), "%s/kms.json", dir);
	if (read_json(path, &kms) != CF_OK || cf_json_get_string(kms, "url", &url) != CF_OK)
		url = NULL;
	if (json) {
		o = json_pack("{s:s, s:s, s:s, s:s, s:o}", "org", org.name, "sign_pub", org.sign_pub,
			      "age_recipient", org.age_recipient, "profile", dir, "kms",
			      url ? json_string(url) : json_null());
		status = o ? cli_print_json(o) : cli_fail("printing failed", "out of memory");
	} else {
		printf("organisation   %s\n"
		       "signing key    %s\n"
		       "age recipient  %s\n"
		       "profile        %s\n"
		       "kms            %s\n",
		       org.name, org.sign_pub, org.age_recipient, dir,
		       url ? url : "(not attested: run coffer attest URL)");
	}
out:
	json_decref(o);
	json_decref(kms);
	cli_org_wipe(&org);
	return status;
}

/* --- cofferd: org create, list, publish --- */

/* --json as the only option and npos arguments. */
static int json_flag(const char *cmd, int argc, char **argv, int npos, const char *expected,
		     bool *json)
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
	if (argc - optind != npos)
		return npos ? cli_usage(cmd, "expected %s", expected)
			    : cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
	return CLI_OK;
}

/* This profile's organisation's public keys, if org.json names org (NULL keys otherwise). */
static void profile_pubs(const char *org, char *sign_pub, size_t sp_cap, char *rcpt, size_t r_cap)
{
	char dir[4096], path[4200];
	json_t *j = NULL;
	const char *name, *pub, *r;
	sign_pub[0] = rcpt[0] = '\0';
	if (cf_profile_dir(dir, sizeof(dir)) != CF_OK)
		return;
	snprintf(path, sizeof(path), "%s/org.json", dir);
	if (read_json(path, &j) == CF_OK && cf_json_get_string(j, "org", &name) == CF_OK &&
	    strcmp(name, org) == 0 && cf_json_get_string(j, "sign_pub", &pub) == CF_OK &&
	    cf_json_get_string(j, "age_recipient", &r) == CF_OK) {
		snprintf(sign_pub, sp_cap, "%s", pub);
		snprintf(rcpt, r_cap, "%s", r);
	}
	json_decref(j);
}

/* The public keys in a coffer org keygen output, which must name org. */
static int file_pubs(const char *path, const char *org, char *sign_pub, size_t sp_cap, char *rcpt,
		     size_t r_cap)
{
	json_t *j = NULL;
	const char *name, *pub, *r;
	uint8_t raw[32];
	int status = CLI_FAIL;
	cf_err rc = read_json(path, &j);
	if (rc != CF_OK) {
		cli_fail("reading the public keys failed", "%s: %s", path,
			 rc == CF_ERR_NOT_FOUND || rc == CF_ERR_IO ? strerror(errno) : "not JSON");
	} else if (cf_json_get_string(j, "org", &name) != CF_OK ||
		   cf_json_get_string(j, "sign_pub", &pub) != CF_OK ||
		   cf_json_get_string(j, "age_recipient", &r) != CF_OK) {
		cli_fail("reading the public keys failed",
			 "%s: not {\"org\", \"sign_pub\", \"age_recipient\"}", path);
	} else if (strcmp(name, org) != 0) {
		cli_fail("reading the public keys failed", "%s is for organisation %.64s, not %s",
			 path, name, org);
	} else if (strlen(pub) != CF_KMS_PUB_B64_LEN || strlen(r) >= r_cap ||
		   cf_age_recipient_parse(r, raw) != CF_OK) {
		cli_fail("reading the public keys failed", "%s: malformed sign_pub or age_recipient",
			 path);
	} else {
		snprintf(sign_pub, sp_cap, "%s", pub);
		snprintf(rcpt, r_cap, "%s", r);
		status = CLI_OK;
	}
	json_decref(j);
	return status;
}

static int org_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *from = NULL;
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'f': from = optarg; break;
		case 'j': json = true; break;
		default: return cli_bad_option("org create", c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage("org create", "expected the organisation's NAME");
	const char *name = argv[optind];
	if (!cf_kms_valid_name(name))
		return cli_usage("org create", "an organisation name is 1 to 64 characters of [a-z0-9-]");
	char sign_pub[64], rcpt[128];
	cf_cofferd_client *cc = NULL;
	json_t *body = NULL, *reply = NULL;
	int status;
	if (from) {
		if ((status = file_pubs(from, name, sign_pub, sizeof(sign_pub), rcpt, sizeof(rcpt))) !=
		    CLI_OK)
			return status;
	} else {
		profile_pubs(name, sign_pub, sizeof(sign_pub), rcpt, sizeof(rcpt));
	}
	body = json_pack("{s:s}", "name", name);
	if (!body || (sign_pub[0] && (json_object_set_new(body, "sign_pub", json_string(sign_pub)) ||
				      json_object_set_new(body, "age_recipient", json_string(rcpt))))) {
		status = cli_fail("creating the organisation failed", "out of memory");
		goto out;
	}
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		goto out;
	if ((status = cli_cofferd_call(cc, "creating the organisation failed", "POST", "/v1/orgs",
				       body, &reply)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(reply);
	} else {
		printf("organisation %s (", name);
		cli_put_safe(stdout, cli_str(reply, "id"), 0);
		printf(")%s\n", !sign_pub[0] ? ""
				 : from     ? " with the public keys in the file"
					    : " with this profile's public keys");
	}
out:
	json_decref(reply);
	json_decref(body);
	cf_cofferd_client_free(cc);
	return status;
}

static int org_list(int argc, char **argv)
{
	bool json;
	int status = json_flag("org list", argc, argv, 0, NULL, &json);
	if (status != CLI_OK)
		return status;
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL;
	const json_t *items, *o;
	size_t i;
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		return status;
	if ((status = cli_cofferd_call(cc, "listing the organisations failed", "GET", "/v1/orgs",
				       NULL, &reply)) != CLI_OK ||
	    (status = cli_items("listing the organisations failed", reply, &items)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(reply);
		goto out;
	}
	printf("%-22s %-20s %-45s %s\n", "ID", "NAME", "SIGN_PUB", "AGE_RECIPIENT");
	json_array_foreach(items, i, o) {
		cli_put_safe(stdout, cli_str(o, "id"), 22);
		putchar(' ');
		cli_put_safe(stdout, cli_str(o, "name"), 20);
		putchar(' ');
		cli_put_safe(stdout, cli_str(o, "sign_pub"), 45);
		putchar(' ');
		cli_put_safe(stdout, cli_str(o, "age_recipient"), 0);
		putchar('\n');
	}
out:
	json_decref(reply);
	cf_cofferd_client_free(cc);
	return status;
}

static int org_publish(int argc, char **argv)
{
	bool json;
	int status = json_flag("org publish", argc, argv, 0, NULL, &json);
	if (status != CLI_OK)
		return status;
	cli_org org;
	cf_cofferd_client *cc = NULL;
	json_t *body = NULL, *reply = NULL;
	char path[128];
	if ((status = cli_org_load(&org)) != CLI_OK)
		return status;
	snprintf(path, sizeof(path), "/v1/orgs/%s/keys", org.name);
	body = json_pack("{s:s, s:s}", "sign_pub", org.sign_pub, "age_recipient", org.age_recipient);
	if (!body) {
		status = cli_fail("publishing the keys failed", "out of memory");
		goto out;
	}
	if ((status = cli_cofferd_connect(&cc)) != CLI_OK)
		goto out;
	if ((status = cli_cofferd_call(cc, "publishing the keys failed", "PUT", path, body,
				       &reply)) != CLI_OK)
		goto out;
	if (json)
		status = cli_print_json(reply);
	else
		printf("published the public keys of organisation %s to %s\n", org.name,
		       cf_cofferd_client_url(cc));
out:
	json_decref(reply);
	json_decref(body);
	cf_cofferd_client_free(cc);
	cli_org_wipe(&org);
	return status;
}

int cmd_org(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{ "keygen", org_keygen, keygen_usage },
		{ "register", org_register, register_usage },
		{ "show", org_show, show_usage },
		{ "create", org_create, create_usage },
		{ "list", org_list, list_usage },
		{ "publish", org_publish, publish_usage },
	};
	return cli_dispatch("org", org_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
