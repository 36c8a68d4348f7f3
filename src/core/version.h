/* version.h - Portico's version, for `portico version` and the admin API's /health. */
#ifndef PT_VERSION_H
#define PT_VERSION_H

#define PT_VERSION "0.1.0"

#endif
