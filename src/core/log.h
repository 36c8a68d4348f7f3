/* log.h - one-line log records to stderr, written with a single write(2) so lines from
 * several processes and threads never interleave. */
#ifndef PT_LOG_H
#define PT_LOG_H

#include <stdarg.h>

enum pt_log_level { PT_LOG_DEBUG, PT_LOG_INFO, PT_LOG_WARN, PT_LOG_ERROR };

/* Sets the tag printed on every line ("master", "worker 3", "cli"); tag is copied. */
void pt_log_init(const char *tag);
/* Lines below level are dropped (default PT_LOG_INFO; PORTICO_LOG=debug lowers it). */
void pt_log_set_level(enum pt_log_level level);

/* Format: "2026-11-29T02:43:49.123Z LEVEL [tag] message\n". Never fails visibly. */
void pt_log(enum pt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pt_logv(enum pt_log_level level, const char *fmt, va_list ap);

#define pt_log_debug(...) pt_log(PT_LOG_DEBUG, __VA_ARGS__)
#define pt_log_info(...) pt_log(PT_LOG_INFO, __VA_ARGS__)
#define pt_log_warn(...) pt_log(PT_LOG_WARN, __VA_ARGS__)
#define pt_log_error(...) pt_log(PT_LOG_ERROR, __VA_ARGS__)

#endif
