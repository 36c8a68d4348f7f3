/* config.h - parsing of the settings users type: data directory, listen address, durations
 * and sizes. Pure functions, no global state. */
#ifndef PT_CONFIG_H
#define PT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* The host used when a listen address names only a port. */
#define PT_CONFIG_DEFAULT_HOST "127.0.0.1"
/* The data directory when neither an option nor $PORTICO_DATA names one. */
#define PT_CONFIG_DEFAULT_DATADIR "./portico-data"

/* Returns the data directory: opt when non-empty, else $PORTICO_DATA when non-empty, else
 * "./portico-data". Caller frees with free(); NULL only when out of memory. */
char *pt_config_datadir(const char *opt);

/* Parses "HOST:PORT", "[IPV6]:PORT", ":PORT" or "PORT" (host then PT_CONFIG_DEFAULT_HOST).
 * PORT is 0..65535 (0: any free port). host receives the host without brackets, NUL-terminated
 * (size hostsz). Returns 0 or PT_EINVAL; on error host and port are unchanged. */
int pt_config_parse_listen(const char *s, char *host, size_t hostsz, int *port);

/* Parses a duration: a whole number with an optional unit s, m, h, d or w ("90s", "15m",
 * "12h", "30d"; no unit means seconds), or "never", which yields -1. Returns 0 or PT_EINVAL
 * (also on overflow); *secs is unchanged on error. */
int pt_config_parse_duration(const char *s, int64_t *secs);

/* Parses a size in bytes: a whole number with an optional binary unit K, M, G or T (any case,
 * optionally followed by "B" or "iB": "64K", "512M", "1GiB"); a plain number is bytes.
 * Returns 0 or PT_EINVAL (also on overflow); *bytes is unchanged on error. */
int pt_config_parse_size(const char *s, size_t *bytes);

/* Like pt_config_parse_size, but a plain number counts MiB ("512" is 512 MiB), as memory
 * limits are usually given. The result is in bytes. */
int pt_config_parse_mib(const char *s, size_t *bytes);

#endif
