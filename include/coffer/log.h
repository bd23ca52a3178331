/*
 * log: one logger for every coffer program.
 *
 * Levels are chosen at run time; each source file names its module by
 * defining CF_LOG_MODULE before including this header. Output goes to
 * stderr as "prog: [module] message" or, with JSON lines on, as one
 * object per line {"ts","level","prog","module","msg"}. A message is
 * always exactly one line: in text mode control characters are printed
 * as \xNN, and bytes that are not UTF-8 become '?' in both modes (so a
 * hostile string can neither forge a line nor a field). Secrets never
 * reach the log: pass them through cf_log_secret() (or print a cf_buf
 * with cf_buf_display), which yields "(hidden)".
 */
#ifndef COFFER_LOG_H
#define COFFER_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include "coffer/err.h"

typedef enum cf_log_level {
	CF_LOG_ERROR = 0,
	CF_LOG_WARN = 1,
	CF_LOG_INFO = 2,
	CF_LOG_DEBUG = 3,
} cf_log_level;

void cf_log_init(const char *progname, cf_log_level level, bool json_lines);
void cf_log_set_level(cf_log_level level);
cf_log_level cf_log_get_level(void);
/* Parses "error", "warn", "info", "debug". */
cf_err cf_log_level_parse(const char *s, cf_log_level *out) CF_WUR;
/* Redirects output (tests); NULL restores stderr. */
void cf_log_set_stream(FILE *f);

void cf_log_msg(cf_log_level level, const char *module, const char *fmt, ...) CF_PRINTF(3, 4);

/* What to print in place of a secret value. */
static inline const char *cf_log_secret(const void *secret)
{
	(void)secret;
	return "(hidden)";
}

#ifndef CF_LOG_MODULE
#define CF_LOG_MODULE "coffer"
#endif

#define log_error(...) cf_log_msg(CF_LOG_ERROR, CF_LOG_MODULE, __VA_ARGS__)
#define log_warn(...) cf_log_msg(CF_LOG_WARN, CF_LOG_MODULE, __VA_ARGS__)
#define log_info(...) cf_log_msg(CF_LOG_INFO, CF_LOG_MODULE, __VA_ARGS__)
#define log_debug(...) cf_log_msg(CF_LOG_DEBUG, CF_LOG_MODULE, __VA_ARGS__)

#endif
