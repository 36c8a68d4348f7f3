/* spawn.h - starting another `portico` process (this binary, /proc/self/exe) from a process
 * that has threads, sockets and blocked signals: a background run of a script. */
#ifndef PT_SPAWN_H
#define PT_SPAWN_H

#include <sys/types.h>

/* Starts /proc/self/exe with argv (NULL-terminated, borrowed; argv[0] is its name) and the
 * environment of this process: stdin, stdout and stderr on /dev/null, every other descriptor
 * closed (the caller's sockets stay with it), no signal blocked and SIGPIPE, SIGINT, SIGTERM,
 * SIGHUP and SIGCHLD back to their defaults; with new_group, in a process group of its own
 * (its id is the pid). Any thread. Returns 0 with *pid (the caller reaps it), or an errno
 * value. */
int pt_spawn_self(char *const argv[], int new_group, pid_t *pid);

#endif
