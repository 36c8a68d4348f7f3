/* worker_hook.c - webhook intake, loop side: the inbox token, the source, its signature and
 * delivery id, then the event into the durable inbox (inbox.h), answered once it is on disk.
 * Also the webhook part of a metadata snapshot (sources with their secrets) and the redaction
 * that keeps the token, a credential, out of stored events and the access log. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "server/metrics.h"
#include "server/worker_int.h"

/* Copies src (NULL: "") lower-cased into dst, cut to dstsz - 1 bytes. */
static void
lower_copy(char *dst, size_t dstsz, const char *src)
{
    size_t i = 0;
    for (; src != NULL && src[i] != '\0' && i + 1 < dstsz; i++)
        dst[i] = (char)((src[i] >= 'A' && src[i] <= 'Z') ? src[i] - 'A' + 'a' : src[i]);
    dst[i] = '\0';
}

int
pt_hook_load(worker *w, snapshot *s)
{
    int rc = pt_store_webhook_token(w->store, 1, &s->hook_token);
    if (rc != 0) {
        pt_log_error("cannot load the webhook token: %s", pt_store_errmsg(w->store));
        return PT_EDB;
    }
    if (pt_store_webhook_source_list(w->store, &s->hook_sources, &s->nhook_sources) != 0) {
        pt_log_error("cannot load webhook sources: %s", pt_store_errmsg(w->store));
        return PT_EDB;
    }
    s->hooks = calloc(s->nhook_sources ? s->nhook_sources : 1, sizeof(*s->hooks));
    if (s->hooks == NULL) {
        pt_log_error("cannot load webhook sources: out of memory");
        return PT_ENOMEM;
    }
    for (size_t i = 0; i < s->nhook_sources; i++) {
        struct hook_source *h = &s->hooks[i];
        const pt_webhook_source *src = &s->hook_sources[i];
        h->src = src;
        h->scheme = pt_hooksig_scheme_of(src->verify) < 0 ? PT_HOOKSIG_NONE
                                                          : pt_hooksig_scheme_of(src->verify);
        lower_copy(h->sig_header, sizeof(h->sig_header),
                   src->header != NULL ? src->header : pt_hooksig_default_header(h->scheme));
        const char *dedup = src->dedup_header;
        if (dedup == NULL && h->scheme == PT_HOOKSIG_GITHUB)
            dedup = "x-github-delivery";
        lower_copy(h->dedup_header, sizeof(h->dedup_header), dedup);
        if (h->scheme == PT_HOOKSIG_NONE || src->secret == NULL)
            continue;
        char err[256] = "";
        rc = w->secrets != NULL ? pt_secrets_get(w->secrets, w->store, src->secret, &h->secret,
                                                 &h->secret_len, err, sizeof(err))
                                : PT_ENOTFOUND;
        if (rc == PT_EINVAL || w->secrets == NULL) {
            /* Sealed under a key this worker has not loaded: the master key was rotated (or
             * created) since the worker started. Load the keys again and retry once. */
            pt_secrets *fresh = NULL;
            if (pt_secrets_open(w->cfg->datadir, &fresh, err, sizeof(err)) == 0) {
                pt_secrets_close(w->secrets);
                w->secrets = fresh;
                err[0] = '\0';
                rc = pt_secrets_get(w->secrets, w->store, src->secret, &h->secret, &h->secret_len,
                                    err, sizeof(err));
            }
        }
        if (rc != 0) {
            /* Requests to this source answer 503 until the secret is there. */
            h->secret = NULL;
            pt_log_error("webhook source %s: cannot read secret '%s'%s%s", src->name, src->secret,
                         err[0] ? ": " : "", err);
        }
    }
    return 0;
}

void
pt_hook_on_stored(pt_inbox_event *ev)
{
    job *j = ev->owner;
    if (ev->rc == 0) {
        j->resp.status = 200;
        j->resp.content_type = "application/json";
        pt_buf_printf(&j->resp.body, "{\"status\": \"received\", \"id\": %lld%s}",
                      (long long)ev->id, ev->duplicate ? ", \"duplicate\": true" : "");
    } else {
        /* Nothing was stored (the database is unreachable or failed): the sender's retry is
         * what keeps the event. */
        pt_response_error(&j->resp, 503,
                          ev->rc == PT_EUNAVAIL
                              ? "the event could not be stored: the database is unreachable; "
                                "retry later"
                              : "the event could not be stored; retry later",
                          j->req.id);
        pt_response_add_header(&j->resp, "Retry-After", 11, "5", 1);
    }
    if (ev->rc == 0)
        pt_metrics_event(pt_worker_self.cfg->metrics, pt_worker_self.index, ev->duplicate);
    if (ev->rc == 0 && !ev->duplicate && strcmp(ev->status, "pending") == 0)
        pt_processor_kick(pt_worker_self.processor);
    atomic_store(&j->state, JOB_DONE);
    h2o_multithread_send_message(&pt_worker_self.done_rx, &j->msg);
}

/* The first header named lname (lower case), or NULL. */
static const h2o_header_t *
find_header(const h2o_req_t *req, const char *lname)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, lname, strlen(lname), -1);
    return i >= 0 ? &req->headers.entries[i] : NULL;
}

/* Stripe's delivery id is the event object's "id". Caller frees. */
static char *
stripe_event_id(const h2o_req_t *req)
{
    json_error_t e;
    json_t *doc =
        json_loadb(req->entity.base != NULL ? req->entity.base : "", req->entity.len, 0, &e);
    const char *id = doc != NULL ? json_string_value(json_object_get(doc, "id")) : NULL;
    char *out = id != NULL ? strdup(id) : NULL;
    json_decref(doc);
    return out;
}

void
pt_hook_redact_token(pt_str *s)
{
    char *p = (char *)s->p;
    char *at = memmem(p, s->n, "/webhook/", 9);
    if (at == NULL)
        return;
    char *tok = at + 9;
    while (tok < p + s->n && *tok == '/')
        tok++; /* "/webhook//<token>": the token is the first non-empty segment */
    char *end = tok;
    while (end < p + s->n && *end != '/' && *end != '?')
        end++;
    if (end == p + s->n)
        end = NULL;
    size_t tail = end != NULL ? s->n - (size_t)(end - p) : 0;
    static const char mark[] = "{token}";
    size_t toklen = end != NULL ? (size_t)(end - tok) : s->n - (size_t)(tok - p);
    if (toklen < sizeof(mark) - 1)
        return;
    memcpy(tok, mark, sizeof(mark) - 1);
    memmove(tok + sizeof(mark) - 1, end != NULL ? end : tok + toklen, tail);
    s->n = (size_t)(tok - p) + sizeof(mark) - 1 + tail;
    p[s->n] = '\0';
}

const char *
pt_hook_log_path(const char *path, size_t *plen, char *buf, size_t bufsz)
{
    if (memmem(path, *plen, "/webhook/", 9) == NULL)
        return path;
    if (*plen >= bufsz) {
        *plen = strlen("/webhook/{token}...");
        return "/webhook/{token}...";
    }
    pt_str copy = {buf, *plen};
    memcpy(buf, path, *plen);
    buf[*plen] = '\0';
    pt_hook_redact_token(&copy);
    *plen = copy.n;
    return buf;
}

void
pt_hook_intake(worker *w, h2o_req_t *req, const char *rest, size_t n)
{
    pt_worker_refresh(w);
    snapshot *snap = w->snap;
    const char *slash = memchr(rest, '/', n);
    size_t tlen = slash != NULL ? (size_t)(slash - rest) : n;
    if (snap == NULL || snap->hook_token == NULL || tlen != strlen(snap->hook_token) ||
        sodium_memcmp(rest, snap->hook_token, tlen) != 0) {
        pt_send_error(w, req, 404, "not found");
        return;
    }
    const struct hook_source *hs = NULL;
    if (slash != NULL) {
        const char *name = slash + 1;
        size_t nlen = n - tlen - 1;
        for (size_t i = 0; i < snap->nhook_sources && hs == NULL; i++)
            if (strlen(snap->hooks[i].src->name) == nlen &&
                memcmp(snap->hooks[i].src->name, name, nlen) == 0)
                hs = &snap->hooks[i];
        if (hs == NULL) {
            pt_send_error(w, req, 404, "unknown webhook source");
            return;
        }
    }
    unsigned m = pt_http_method_bit(req->method.base, req->method.len);
    if ((m & (PT_M_POST | PT_M_PUT | PT_M_PATCH)) == 0) {
        pt_send_simple(w, req, NULL, 405, NULL, NULL, "webhooks accept POST, PUT and PATCH",
                       "allow", "POST, PUT, PATCH");
        return;
    }
    if (hs != NULL && hs->scheme != PT_HOOKSIG_NONE) {
        if (hs->secret == NULL) {
            pt_send_error(w, req, 503, "webhook source is misconfigured: its secret is unreadable");
            return;
        }
        const h2o_header_t *sig = find_header(req, hs->sig_header);
        char why[128], msg[160];
        int64_t now = (int64_t)time(NULL);
        if (pt_hooksig_verify(hs->scheme, (const unsigned char *)hs->secret, hs->secret_len,
                              sig != NULL ? sig->value.base : NULL,
                              sig != NULL ? sig->value.len : 0,
                              req->entity.base != NULL ? req->entity.base : "", req->entity.len,
                              now, why, sizeof(why)) != 0) {
            snprintf(msg, sizeof(msg), "invalid webhook signature: %s", why);
            pt_send_error(w, req, 401, msg);
            return;
        }
    }
    char *dedup = NULL;
    if (hs != NULL && hs->dedup_header[0] != '\0') {
        const h2o_header_t *d = find_header(req, hs->dedup_header);
        if (d != NULL && d->value.len > 0)
            dedup = strndup(d->value.base, d->value.len);
    } else if (hs != NULL && hs->scheme == PT_HOOKSIG_STRIPE) {
        dedup = stripe_event_id(req);
    }
    pt_route_match none;
    memset(&none, 0, sizeof(none));
    pt_caller nobody = {0};
    job *j = w->inbox != NULL ? pt_job_new(req, snap, NULL, &none, &nobody) : NULL;
    if (j == NULL) {
        free(dedup);
        pt_send_error(w, req, 503, "the webhook inbox is unavailable");
        return;
    }
    j->label = "webhook";
    pt_hook_redact_token(&j->req.path);
    pt_hook_redact_token(&j->req.url);
    j->dedup_key = dedup;
    j->hook.req = &j->req;
    j->hook.source = hs != NULL ? hs->src->name : "";
    j->hook.dedup_key = dedup;
    j->hook.status = hs != NULL && hs->src->script != NULL ? "pending" : "received";
    j->hook.owner = j;
    j->start = now_sec();
    atomic_store(&j->state, JOB_RUNNING);
    w->inflight++;
    pt_inbox_submit(w->inbox, &j->hook);
}
