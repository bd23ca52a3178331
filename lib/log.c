#include "coffer/log.h"

#include <stdarg.h>
#include <stdint.h>
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
	if (!s)
		return CF_ERR_ARG;
	for (int i = 0; i <= CF_LOG_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (cf_log_level)i;
			return CF_OK;
		}
	}
	return CF_ERR_ARG;
}

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* After truncation, drops a multi-byte character cut in half at the end. */
static void utf8_trim_partial(char *s)
{
	size_t len = strlen(s), i = len;
	while (i > 0 && len - i < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return;
	unsigned char lead = (unsigned char)s[i - 1];
	size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
	if (need > len - (i - 1))
		s[i - 1] = 0;
}

/*
 * Copies in to out (cap > 0) so that it is safe to log: bytes that are not
 * well-formed UTF-8 become '?' (jansson refuses them, which would lose the
 * whole line), and in text mode control characters are escaped so a message
 * cannot start a forged line or drive the terminal. Truncates on a whole
 * character.
 */
static void log_sanitize(const char *in, char *out, size_t cap, bool escape_controls)
{
	static const char hexdig[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;
	while (*p) {
		char tmp[4];
		size_t tn, adv = utf8_seq_len(p);
		if (adv == 0) {
			tmp[0] = '?';
			tn = 1;
			adv = 1;
		} else if (escape_controls && adv == 1 && (*p < 0x20 || *p == 0x7f) && *p != '\t') {
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hexdig[*p >> 4];
			tmp[3] = hexdig[*p & 15];
			tn = 4;
		} else {
			memcpy(tmp, p, adv);
			tn = adv;
		}
		if (o + tn >= cap)
			break;
		memcpy(out + o, tmp, tn);
		o += tn;
		p += adv;
	}
	out[o] = 0;
}

void cf_log_msg(cf_log_level level, const char *module, const char *fmt, ...)
{
	if (level > log_level || level < CF_LOG_ERROR || level > CF_LOG_DEBUG)
		return;
	if (!module)
		module = "coffer";
	FILE *out = log_stream ? log_stream : stderr;
	char raw[2048], msg[4 * sizeof(raw)], prog[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(raw))
		utf8_trim_partial(raw);
	log_sanitize(raw, msg, sizeof(msg), !log_json);
	log_sanitize(log_prog, prog, sizeof(prog), !log_json);

	if (!log_json) {
		fprintf(out, "%s: [%s] %s\n", prog, module, msg);
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
			      "prog", prog, "module", module, "msg", msg);
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
