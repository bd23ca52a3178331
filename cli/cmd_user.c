/*
 * coffer user: cofferd's users and their roles (docs/api.md, "Sessions,
 * users, organisations"). An admin manages everyone, an org-admin the
 * users of their own organisation; cofferd decides, this only asks.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "coffer/cofferd_client.h"
#include "coffer/json.h"
#include "coffer/kms_client.h"

#define PASSWORD_MIN 12u
#define PASSWORD_MAX 1024u

static const char user_usage[] =
	"usage: coffer user COMMAND [OPTIONS]\n\n"
	"Users of cofferd (needs coffer login as an admin or org-admin).\n\n"
	"commands:\n"
	"  create  add a user to an organisation with a role\n"
	"  list    list the users this login may see\n"
	"  delete  remove a user\n";

static const char create_usage[] =
	"usage: coffer user create NAME --org ORG --role ROLE [--password-file FILE] [--json]\n\n"
	"Creates user NAME in organisation ORG with ROLE (POST /v1/users): admin,\n"
	"operator, org-admin, analyst or auditor (docs/api.md, \"Roles\"). The\n"
	"password (12 to 1024 bytes) is read from the terminal, twice, with echo off,\n"
	"unless --password-file is given. Prints the new user's id.\n\n"
	"  --org ORG             the user's organisation\n"
	"  --role ROLE           what the user may do\n"
	"  --password-file FILE  read the password from the first line of FILE\n"
	"  --json                print cofferd's answer {\"id\"}\n";

static const char list_usage[] =
	"usage: coffer user list [--json]\n\n"
	"Lists cofferd's users (GET /v1/users): all of them for an admin or auditor,\n"
	"those of the own organisation for an org-admin.\n";

static const char delete_usage[] =
	"usage: coffer user delete NAME\n\n"
	"Deletes user NAME (DELETE /v1/users/NAME); their sessions end with it.\n";

static bool valid_role(const char *r)
{
	static const char *const roles[] = { "admin", "operator", "org-admin", "analyst", "auditor" };
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		if (strcmp(r, roles[i]) == 0)
			return true;
	}
	return false;
}

static int user_create(int argc, char **argv)
{
	enum { O_ORG = 256, O_ROLE, O_PASSFILE, O_JSON };
	static const struct option opts[] = {
		{ "org", required_argument, NULL, O_ORG },
		{ "role", required_argument, NULL, O_ROLE },
		{ "password-file", required_argument, NULL, O_PASSFILE },
		{ "json", no_argument, NULL, O_JSON },
		{ NULL, 0, NULL, 0 },
	};
	const char *org = NULL, *role = NULL, *passfile = NULL;
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case O_ORG: org = optarg; break;
		case O_ROLE: role = optarg; break;
		case O_PASSFILE: passfile = optarg; break;
		case O_JSON: json = true; break;
		default: return cli_bad_option("user create", c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage("user create", "expected the user's NAME");
	const char *name = argv[optind];
	if (!cf_kms_valid_name(name))
		return cli_usage("user create", "a user name is 1 to 64 characters of [a-z0-9-]");
	if (!org || !cf_kms_valid_name(org))
		return cli_usage("user create", "give the organisation with --org ORG ([a-z0-9-])");
	if (!role || !valid_role(role))
		return cli_usage("user create", "give --role admin, operator, org-admin, analyst or "
						"auditor");

	cf_cofferd_client *cc = NULL;
	cf_buf password;
	json_t *body = NULL, *reply = NULL;
	cf_buf_init(&password, PASSWORD_MAX + 1, true);
	int status = cli_cofferd_connect(&cc);
	if (status != CLI_OK)
		goto out;
	status = CLI_FAIL;
	char prompt[160];
	snprintf(prompt, sizeof(prompt), "Password for the new user %s: ", name);
	cf_err rc = cli_secret(passfile, prompt, passfile ? NULL : "Again: ", &password);
	if (rc != CF_OK) {
		cli_fail("reading the password failed", "%s",
			 rc == CF_ERR_AUTH	 ? "the two entries differ"
			 : rc == CF_ERR_ARG	 ? "empty password"
			 : rc == CF_ERR_TOO_BIG ? "over 1024 bytes"
			 : passfile		 ? strerror(errno)
						 : "no terminal (use --password-file FILE)");
		goto out;
	}
	if (password.len < PASSWORD_MIN) {
		cli_fail("creating the user failed", "a password has at least 12 bytes");
		goto out;
	}
	if (memchr(password.data, 0, password.len) ||
	    !(body = json_pack("{s:s, s:s%, s:s, s:s}", "username", name, "password",
			       (const char *)password.data, password.len, "org", org, "role",
			       role))) {
		cli_fail("creating the user failed", "the password is not UTF-8 text");
		goto out;
	}
	rc = cf_cofferd_call(cc, "POST", "/v1/users", body, &reply);
	/* The password's copy in the request object: wiped before it is freed. */
	json_t *pw = json_object_get(body, "password");
	cf_wipe((char *)json_string_value(pw), json_string_length(pw));
	if (rc != CF_OK) {
		cli_cofferd_fail("creating the user failed", cc, rc);
		goto out;
	}
	if (json) {
		status = cli_print_json(reply);
	} else {
		printf("user %s (", name);
		cli_put_safe(stdout, cli_str(reply, "id"), 0);
		printf(") in organisation %s, role %s\n", org, role);
		status = CLI_OK;
	}
out:
	json_decref(reply);
	json_decref(body);
	cf_buf_free(&password);
	cf_cofferd_client_free(cc);
	return status;
}

static int user_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1) {
		if (c != 'j')
			return cli_bad_option("user list", c, argv);
		json = true;
	}
	if (optind != argc)
		return cli_usage("user list", "unexpected argument '%s'", argv[optind]);
	cf_cofferd_client *cc = NULL;
	json_t *reply = NULL;
	const json_t *items, *u;
	size_t i;
	int status = cli_cofferd_connect(&cc);
	if (status != CLI_OK)
		return status;
	if ((status = cli_cofferd_call(cc, "listing the users failed", "GET", "/v1/users", NULL,
				       &reply)) != CLI_OK ||
	    (status = cli_items("listing the users failed", reply, &items)) != CLI_OK)
		goto out;
	if (json) {
		status = cli_print_json(reply);
		goto out;
	}
	printf("%-22s %-24s %-16s %s\n", "ID", "USER", "ORG", "ROLE");
	json_array_foreach(items, i, u) {
		const char *name = cli_str(u, "username");
		if (strcmp(name, "-") == 0)
			name = cli_str(u, "name");
		cli_put_safe(stdout, cli_str(u, "id"), 22);
		putchar(' ');
		cli_put_safe(stdout, name, 24);
		putchar(' ');
		cli_put_safe(stdout, cli_str(u, "org"), 16);
		putchar(' ');
		cli_put_safe(stdout, cli_str(u, "role"), 0);
		putchar('\n');
	}
out:
	json_decref(reply);
	cf_cofferd_client_free(cc);
	return status;
}

static int user_delete(int argc, char **argv)
{
	static const struct option opts[] = { { NULL, 0, NULL, 0 } };
	int c;
	while ((c = cli_getopt(argc, argv, "", opts)) != -1)
		return cli_bad_option("user delete", c, argv);
	if (argc - optind != 1)
		return cli_usage("user delete", "expected the user's NAME");
	const char *name = argv[optind];
	if (!cf_kms_valid_name(name))
		return cli_usage("user delete", "a user name is 1 to 64 characters of [a-z0-9-]");
	char path[128];
	snprintf(path, sizeof(path), "/v1/users/%s", name);
	cf_cofferd_client *cc = NULL;
	int status = cli_cofferd_connect(&cc);
	if (status != CLI_OK)
		return status;
	status = cli_cofferd_call(cc, "deleting the user failed", "DELETE", path, NULL, NULL);
	if (status == CLI_OK)
		printf("deleted user %s\n", name);
	cf_cofferd_client_free(cc);
	return status;
}

int cmd_user(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
		{ "create", user_create, create_usage },
		{ "list", user_list, list_usage },
		{ "delete", user_delete, delete_usage },
	};
	return cli_dispatch("user", user_usage, subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
