#include "coffer/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

static const char *log_prog = "coffer";
static cf_log_level log_level = CF_LOG_WARN;
static bool log_json;
static FILE *log_stream;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void cf_log_init(const char *progname, cf_log_level level, bool json_lines)
{
	if (progname) {
		const char *slash = strrchr(progname, '/');
		log_prog = slash ? slash + 1 : progname;
	}
	log_level = level;
	log_json = json_lines;
}

void cf_log_set_level(cf_log_level level)
{
	log_level = level;
}

cf_log_level cf_log_get_level(void)
{
	return log_level;
}

void cf_log_set_stream(FILE *f)
{
	log_stream = f;
}

cf_err cf_log_level_parse(const char *s, cf_log_level *out)
{
	for (int i = 0; i <= CF_LOG_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (cf_log_level)i;
			return CF_OK;
		}
	}
	return CF_ERR_ARG;
}

void cf_log_msg(cf_log_level level, const char *module, const char *fmt, ...)
{
	if (level > log_level || level < CF_LOG_ERROR)
		return;
	FILE *out = log_stream ? log_stream : stderr;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (!log_json) {
		fprintf(out, "%s: [%s] %s\n", log_prog, module, msg);
		fflush(out);
		return;
	}
	char ts[32];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* jansson does the escaping, so a hostile message cannot forge fields. */
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "ts", ts, "level", level_names[level],
			      "prog", log_prog, "module", module, "msg", msg);
	char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (line) {
		fprintf(out, "%s\n", line);
		free(line);
	} else {
		fprintf(out, "{\"level\":\"error\",\"msg\":\"log encoding failed\"}\n");
	}
	json_decref(o);
	fflush(out);
}
