/* store_audit.h - the audit log in the metadata store: who changed what, and when, through
 * the admin API or the CLI. Entries are only ever added; writing one does not bump the change
 * counter. */
#ifndef PT_STORE_AUDIT_H
#define PT_STORE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct pt_audit_entry {
    int64_t id;
    int64_t time; /* unix milliseconds */
    char *actor;  /* "alice", "token:ci-deploy", "cli:root" */
    char *action; /* "user.add", "POST /scripts/{name}/versions", ... */
    char *object; /* what it acted on ("alice", "hello"), "" when nothing in particular */
    char *detail; /* a JSON object as text */
} pt_audit_entry;

/* Appends an entry stamped now (all strings borrowed; detail must be JSON text, NULL: "{}").
 * Returns 0 or a pt_err. */
int pt_store_audit_add(pt_store *st, const char *actor, const char *action, const char *object,
                       const char *detail);
/* Entries newest first: at or after since (unix ms; 0: any), by actor (NULL: any), at most
 * limit. Caller frees with pt_store_audit_free. */
int pt_store_audit_list(pt_store *st, int64_t since, const char *actor, int64_t limit,
                        pt_audit_entry **out, size_t *n);
void pt_store_audit_free(pt_audit_entry *list, size_t n);

#endif
