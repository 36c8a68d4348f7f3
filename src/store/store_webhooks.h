/* store_webhooks.h - webhook metadata in the store: the install's inbox token and the named
 * sources (signature scheme, secret, deduplication header, processing script). */
#ifndef PT_STORE_WEBHOOKS_H
#define PT_STORE_WEBHOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The inbox token (43 characters of base64url, 256 random bits). With create, one is made
 * the first time; without, PT_ENOTFOUND until then. Caller frees *token. */
int pt_store_webhook_token(pt_store *st, int create, char **token);
/* Replaces the token (the old URL stops working). Caller frees *token. */
int pt_store_webhook_rotate(pt_store *st, char **token);

typedef struct pt_webhook_source {
    char *name;
    char *verify;       /* "none", "github", "stripe" or "hmac-sha256" */
    char *secret;       /* secret store name, NULL with "none" */
    char *header;       /* signature header (hmac-sha256), NULL for the default */
    char *dedup_header; /* header holding a delivery id, NULL for the scheme's default */
    char *script;       /* script whose handler(event) processes events, NULL for none */
    int64_t created;
} pt_webhook_source;

/* Adds a source. PT_EEXIST (name taken), PT_ENOTFOUND (unknown script), PT_EINVAL (bad name
 * or scheme; reason in pt_store_errmsg). */
int pt_store_webhook_source_add(pt_store *st, const pt_webhook_source *s);
/* Replaces every field of source s->name but its name and creation time with s's (s borrowed).
 * PT_ENOTFOUND (no such source, or an unknown script: the message says which), PT_EINVAL (bad
 * scheme or a scheme without a secret; reason in pt_store_errmsg). */
int pt_store_webhook_source_update(pt_store *st, const pt_webhook_source *s);
int pt_store_webhook_source_rm(pt_store *st, const char *name);
/* Every source, by name. Caller frees with pt_store_webhook_sources_free. */
int pt_store_webhook_source_list(pt_store *st, pt_webhook_source **out, size_t *n);
void pt_store_webhook_sources_free(pt_webhook_source *list, size_t n);

#endif
