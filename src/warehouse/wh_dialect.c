/* wh_dialect.c - translates the PostgreSQL statements Peliqan scripts run on their warehouse
 * into statements the embedded SQLite warehouse can run. */

/*
 * Design notes
 *
 * Scripts written for Peliqan run their SQL on a PostgreSQL warehouse. The embedded warehouse
 * is SQLite, which already speaks most of it (ON CONFLICT ... DO UPDATE with EXCLUDED,
 * RETURNING, CREATE TABLE IF NOT EXISTS with any type name, TRUE/FALSE, $1 parameters). What
 * it lacks falls in two groups:
 *
 *   1. Statements SQLite does not have, or has in another shape: TRUNCATE, CREATE SCHEMA,
 *      ALTER TABLE with IF [NOT] EXISTS or several actions, DROP TABLE a, b ... CASCADE,
 *      CREATE INDEX i ON s.t. These become a plan of steps (pt_whd_step): statements this
 *      file builds from validated, double-quoted identifiers, and steps that wh_sqlite.c
 *      carries out itself (attach a schema file, look a column up first).
 *   2. Expressions: `expr::type`, typed literals (date '2024-05-01'), now(),
 *      gen_random_uuid(), ILIKE, and serial / identity columns in CREATE TABLE. These are
 *      rewritten token by token inside the statement they came from; the text between the
 *      rewritten tokens (white space and comments included) is copied unchanged.
 *
 * The translation is lexical: a tokenizer that knows SQL's quotes, comments and parameters,
 * and a walk over the tokens that knows just enough grammar for the forms above. A cast needs
 * the extent of its operand: `::` binds tighter than any operator in PostgreSQL, so the operand
 * is the primary just before it: a literal, a parameter, a (qualified) column, a function call
 * or a parenthesised expression. The walk records where in the output the last primary began.
 *
 * Rules: (a) user text is never pasted into another statement: what a plan builds from names
 * uses validated identifiers only, and the column definitions of ALTER TABLE ... ADD stay in an
 * ALTER TABLE ... ADD; (b) when a form cannot be translated faithfully, the statement fails
 * with a message naming the form, rather than running with other semantics; (c) statements
 * that need no translation are left to SQLite as they are (CREATE TRIGGER bodies too).
 */
#include "warehouse/wh_dialect.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/err.h"
#include "warehouse/wh.h"

enum { T_SPACE, T_IDENT, T_QIDENT, T_STRING, T_NUMBER, T_PARAM, T_CAST, T_PUNCT };

typedef struct tok {
    int t;
    const char *p;
    size_t n;
} tok;

/* now() and its siblings: the time in UTC as PostgreSQL prints a timestamptz (milliseconds). */
#define NOW_SQL "(strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))"
/* A version 4 UUID from SQLite's own random source. */
#define UUID_SQL                                                                                   \
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "                   \
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) "   \
    "|| substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))"

#define MAX_DEPTH 64

/* ---- tokens ------------------------------------------------------------------------------- */

static int
ident_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* Length of the token at s (s < end), its type in *type. */
static size_t
lex(const char *s, const char *end, int *type)
{
    const char *p = s;
    unsigned char c = (unsigned char)*p;

    if (isspace(c)) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        *type = T_SPACE;
    } else if (c == '-' && p + 1 < end && p[1] == '-') {
        while (p < end && *p != '\n')
            p++;
        *type = T_SPACE;
    } else if (c == '/' && p + 1 < end && p[1] == '*') {
        p += 2;
        while (p + 1 < end && !(p[0] == '*' && p[1] == '/'))
            p++;
        p = p + 1 < end ? p + 2 : end;
        *type = T_SPACE;
    } else if (c == '\'' || c == '"' || c == '`') {
        for (p++; p < end; p++) {
            if (*p != (char)c)
                continue;
            if (p + 1 < end && p[1] == (char)c) {
                p++;
                continue;
            }
            p++;
            break;
        }
        *type = c == '\'' ? T_STRING : T_QIDENT;
    } else if (isalpha(c) || c == '_' || c >= 0x80) {
        while (p < end && ident_char((unsigned char)*p))
            p++;
        *type = T_IDENT;
    } else if (isdigit(c) || (c == '.' && p + 1 < end && isdigit((unsigned char)p[1]))) {
        while (p < end && (isdigit((unsigned char)*p) || *p == '.'))
            p++;
        if (p < end && (*p == 'e' || *p == 'E')) {
            const char *q = p + 1;
            if (q < end && (*q == '+' || *q == '-'))
                q++;
            if (q < end && isdigit((unsigned char)*q)) {
                p = q;
                while (p < end && isdigit((unsigned char)*p))
                    p++;
            }
        }
        *type = T_NUMBER;
    } else if (c == ':' && p + 1 < end && p[1] == ':') {
        p += 2;
        *type = T_CAST;
    } else if ((c == '$' && p + 1 < end && isdigit((unsigned char)p[1])) || c == '?') {
        for (p++; p < end && isdigit((unsigned char)*p); p++)
            ;
        *type = T_PARAM;
    } else if ((c == ':' || c == '@') && p + 1 < end &&
               (isalpha((unsigned char)p[1]) || p[1] == '_')) {
        for (p++; p < end && ident_char((unsigned char)*p); p++)
            ;
        *type = T_PARAM;
    } else {
        p++;
        *type = T_PUNCT;
    }
    return (size_t)(p - s);
}

size_t
pt_whd_stmt_len(const char *sql)
{
    const char *p = sql, *end = sql + strlen(sql);
    int type;

    while (p < end) {
        size_t n = lex(p, end, &type);
        p += n;
        if (type == T_PUNCT && p[-1] == ';')
            break;
    }
    return (size_t)(p - sql);
}

/* Splits sql[0..len) into tokens (white space and comments included). Returns 0 or PT_ENOMEM;
 * *out is freed by the caller. */
static int
tokenize(const char *sql, size_t len, tok **out, size_t *nout)
{
    const char *p = sql, *end = sql + len;
    size_t n = 0, cap = 32;
    tok *v = malloc(cap * sizeof *v);

    if (v == NULL)
        return PT_ENOMEM;
    while (p < end) {
        int type;
        size_t l = lex(p, end, &type);
        if (n + 1 == cap) {
            tok *nv = realloc(v, cap * 2 * sizeof *v);
            if (nv == NULL) {
                free(v);
                return PT_ENOMEM;
            }
            v = nv;
            cap *= 2;
        }
        v[n++] = (tok){type, p, l};
        p += l;
    }
    v[n] = (tok){T_SPACE, end, 0}; /* a sentinel: sig() stops at n */
    *out = v;
    *nout = n;
    return 0;
}

/* Index of the first significant token at or after i (n when none). */
static size_t
sig(const tok *t, size_t n, size_t i)
{
    while (i < n && t[i].t == T_SPACE)
        i++;
    return i;
}

/* Index of the last significant token before i, or (size_t)-1. */
static size_t
sig_before(const tok *t, size_t i)
{
    while (i > 0) {
        i--;
        if (t[i].t != T_SPACE)
            return i;
    }
    return (size_t)-1;
}

static int
kw(const tok *t, size_t n, size_t i, const char *word)
{
    return i < n && t[i].t == T_IDENT && t[i].n == strlen(word) &&
           strncasecmp(t[i].p, word, t[i].n) == 0;
}

static int
punct(const tok *t, size_t n, size_t i, char c)
{
    return i < n && t[i].t == T_PUNCT && t[i].p[0] == c;
}

/* Is token i one of the words of list (NULL-terminated)? */
static int
kw_in(const tok *t, size_t n, size_t i, const char *const *list)
{
    for (; *list != NULL; list++)
        if (kw(t, n, i, *list))
            return 1;
    return 0;
}

/* The name token i stands for: an unquoted identifier folded to lower case (as PostgreSQL
 * does), or a quoted one unescaped. Returns 0 when it is a valid warehouse identifier, else
 * PT_EINVAL. */
static int
name_of(const tok *t, size_t n, size_t i, char *out)
{
    size_t k = 0, j;

    if (i >= n || (t[i].t != T_IDENT && t[i].t != T_QIDENT))
        return PT_EINVAL;
    if (t[i].t == T_IDENT) {
        if (t[i].n >= PT_WHD_NAME_MAX)
            return PT_EINVAL;
        for (j = 0; j < t[i].n; j++)
            out[k++] = (char)tolower((unsigned char)t[i].p[j]);
    } else {
        for (j = 1; j + 1 < t[i].n; j++) {
            if (k + 1 >= PT_WHD_NAME_MAX)
                return PT_EINVAL;
            out[k++] = t[i].p[j];
            if (t[i].p[j] == t[i].p[0])
                j++; /* a doubled quote */
        }
    }
    out[k] = '\0';
    return pt_wh_ident_valid(out) ? 0 : PT_EINVAL;
}

/* Parses [schema.]name at *i; advances *i past it. schema is "" when not given. Returns 0 or
 * PT_EINVAL. */
static int
qname(const tok *t, size_t n, size_t *i, char *schema, char *name)
{
    size_t a = sig(t, n, *i), dot = sig(t, n, a + 1);

    schema[0] = '\0';
    if (punct(t, n, dot, '.')) {
        size_t b = sig(t, n, dot + 1);
        if (name_of(t, n, a, schema) != 0 || name_of(t, n, b, name) != 0)
            return PT_EINVAL;
        *i = b + 1;
        return 0;
    }
    if (name_of(t, n, a, name) != 0)
        return PT_EINVAL;
    *i = a + 1;
    return 0;
}

/* Appends "schema"."name" (or "name"): both validated identifiers, so quoting is enough. */
static int
put_qname(pt_buf *b, const char *schema, const char *name)
{
    if (schema[0] != '\0')
        return pt_buf_printf(b, "\"%s\".\"%s\"", schema, name);
    return pt_buf_printf(b, "\"%s\"", name);
}

/* ---- plans -------------------------------------------------------------------------------- */

void
pt_whd_plan_clear(pt_whd_plan *plan)
{
    size_t i;

    for (i = 0; i < plan->n; i++)
        free(plan->steps[i].sql);
    free(plan->steps);
    plan->steps = NULL;
    plan->n = 0;
}

/* Appends a step; sql (may be NULL) moves into the plan, even on error. */
static int
add_step(pt_whd_plan *plan, pt_whd_op op, char *sql, pt_whd_step **out)
{
    pt_whd_step *v = realloc(plan->steps, (plan->n + 1) * sizeof *v);

    if (v == NULL) {
        free(sql);
        return PT_ENOMEM;
    }
    plan->steps = v;
    memset(&v[plan->n], 0, sizeof v[plan->n]);
    v[plan->n].op = op;
    v[plan->n].sql = sql;
    if (out != NULL)
        *out = &v[plan->n];
    plan->n++;
    return 0;
}

static int
syntax(char *err, size_t errsz, const char *what)
{
    snprintf(err, errsz,
             "cannot read this %s (the embedded SQLite warehouse translates it from "
             "PostgreSQL's syntax; names must be identifiers)",
             what);
    return PT_EINVAL;
}

/* ---- expressions -------------------------------------------------------------------------- */

enum { TY_INTEGER, TY_REAL, TY_TEXT, TY_BLOB, TY_DATE, TY_TIMESTAMP, TY_TIME, TY_JSON, TY_BOOL };

/* Parses the type name after `::` starting at token i: returns its kind and sets *after to the
 * token after it, or PT_EINVAL with err set. Lengths and precisions ("varchar(20)",
 * "numeric(12,2)") are read and ignored: SQLite does not enforce them. */
static int
cast_type(const tok *t, size_t n, size_t i, size_t *after, char *err, size_t errsz)
{
    static const struct {
        const char *name;
        int kind;
    } types[] = {
        {"int", TY_INTEGER},    {"integer", TY_INTEGER},     {"int2", TY_INTEGER},
        {"int4", TY_INTEGER},   {"int8", TY_INTEGER},        {"smallint", TY_INTEGER},
        {"bigint", TY_INTEGER}, {"numeric", TY_REAL},        {"decimal", TY_REAL},
        {"real", TY_REAL},      {"float", TY_REAL},          {"float4", TY_REAL},
        {"float8", TY_REAL},    {"double", TY_REAL},         {"money", TY_REAL},
        {"text", TY_TEXT},      {"varchar", TY_TEXT},        {"char", TY_TEXT},
        {"character", TY_TEXT}, {"bpchar", TY_TEXT},         {"name", TY_TEXT},
        {"uuid", TY_TEXT},      {"citext", TY_TEXT},         {"bytea", TY_BLOB},
        {"date", TY_DATE},      {"timestamp", TY_TIMESTAMP}, {"timestamptz", TY_TIMESTAMP},
        {"time", TY_TIME},      {"timetz", TY_TIME},         {"json", TY_JSON},
        {"jsonb", TY_JSON},     {"bool", TY_BOOL},           {"boolean", TY_BOOL},
    };
    char name[PT_WHD_NAME_MAX];
    size_t k;
    int kind = -1;

    i = sig(t, n, i);
    if (kw(t, n, i, "pg_catalog") && punct(t, n, sig(t, n, i + 1), '.'))
        i = sig(t, n, sig(t, n, i + 1) + 1);
    if (name_of(t, n, i, name) != 0) {
        snprintf(err, errsz, "cannot translate a '::' cast here: no type name after it");
        return PT_EINVAL;
    }
    for (k = 0; k < sizeof types / sizeof types[0]; k++)
        if (strcmp(types[k].name, name) == 0)
            kind = types[k].kind;
    if (kind < 0) {
        snprintf(err, errsz,
                 "the embedded SQLite warehouse cannot cast to %s (casts to integer, numeric, "
                 "text, date, timestamp, time, json, boolean and bytea types are translated)",
                 name);
        return PT_EINVAL;
    }
    /* *after is the token just after the type's last one: the white space after it stays. */
    *after = i + 1;
    i = sig(t, n, i + 1);
    /* The words of multi-word type names. */
    if ((strcmp(name, "double") == 0 && kw(t, n, i, "precision")) ||
        ((strcmp(name, "character") == 0 || strcmp(name, "char") == 0) && kw(t, n, i, "varying"))) {
        *after = i + 1;
        i = sig(t, n, i + 1);
    }
    if (punct(t, n, i, '(')) {
        while (i < n && !punct(t, n, i, ')'))
            i++;
        *after = i + 1;
        i = sig(t, n, i + 1);
    }
    if ((kind == TY_TIMESTAMP || kind == TY_TIME) &&
        (kw(t, n, i, "with") || kw(t, n, i, "without"))) {
        size_t a = sig(t, n, i + 1), b = sig(t, n, a + 1);
        if (kw(t, n, a, "time") && kw(t, n, b, "zone")) {
            *after = b + 1;
            i = sig(t, n, b + 1);
        }
    }
    if (punct(t, n, i, '[')) {
        snprintf(err, errsz, "the embedded SQLite warehouse has no array types (cast to %s[])",
                 name);
        return PT_EINVAL;
    }
    return kind;
}

/* Writes the SQLite form of casting expr (len bytes) to a type of kind. */
static int
put_cast(pt_buf *b, int kind, const char *expr, size_t len)
{
    static const char *const fn[] = {
        [TY_DATE] = "date", [TY_TIMESTAMP] = "datetime", [TY_TIME] = "time", [TY_JSON] = "json"};
    static const char *const as[] = {
        [TY_INTEGER] = "INTEGER", [TY_REAL] = "REAL", [TY_TEXT] = "TEXT", [TY_BLOB] = "BLOB"};
    int rc = 0;

    switch (kind) {
    case TY_DATE:
    case TY_TIMESTAMP:
    case TY_TIME:
    case TY_JSON:
        rc |= pt_buf_printf(b, "%s(", fn[kind]);
        rc |= pt_buf_append(b, expr, len);
        rc |= pt_buf_putc(b, ')');
        break;
    case TY_BOOL:
        /* PostgreSQL's spellings of true; NULL stays NULL. */
        rc |= pt_buf_puts(b, "(lower(CAST(");
        rc |= pt_buf_append(b, expr, len);
        rc |= pt_buf_puts(b, " AS TEXT)) IN ('t', 'true', 'y', 'yes', 'on', '1'))");
        break;
    case TY_INTEGER:
        /* PostgreSQL rounds a fraction (12.5::int is 13), SQLite's CAST truncates it: round
         * REAL values. The operand is written twice, so not when it holds a `?` parameter
         * (a second `?` would be another parameter). */
        if (memchr(expr, '?', len) == NULL) {
            rc |= pt_buf_puts(b, "(CASE WHEN typeof(");
            rc |= pt_buf_append(b, expr, len);
            rc |= pt_buf_puts(b, ") = 'real' THEN CAST(round(");
            rc |= pt_buf_append(b, expr, len);
            rc |= pt_buf_puts(b, ") AS INTEGER) ELSE CAST(");
            rc |= pt_buf_append(b, expr, len);
            rc |= pt_buf_puts(b, " AS INTEGER) END)");
            break;
        }
        /* fall through */
    default:
        rc |= pt_buf_puts(b, "CAST(");
        rc |= pt_buf_append(b, expr, len);
        rc |= pt_buf_printf(b, " AS %s)", as[kind]);
        break;
    }
    return rc != 0 ? PT_ENOMEM : 0;
}

/* Words that may stand before '(' without being a function name. */
static const char *const not_functions[] = {
    "in",   "values", "as",    "on",         "and",   "or",     "not",      "where",   "select",
    "from", "join",   "using", "over",       "when",  "then",   "else",     "by",      "set",
    "into", "exists", "table", "returning",  "with",  "case",   "is",       "like",    "between",
    "any",  "all",    "key",   "references", "check", "unique", "conflict", "default", NULL};
/* Words after which a primary starts a select-list item. */
static const char *const item_leads[] = {"select", "distinct", "all", NULL};
/* Words that end a select list. */
static const char *const list_ends[] = {"from",   "into",      "where",  "group",     "order",
                                        "limit",  "union",     "except", "intersect", "having",
                                        "window", "returning", "on",     NULL};

typedef struct level {
    size_t func_out;   /* output offset of the call or group this '(' belongs to */
    int in_select;     /* between SELECT and FROM at this depth */
    int coldefs;       /* the column list of a CREATE TABLE */
    int colpos;        /* significant tokens in the current column definition */
    size_t type_start; /* output range of the current column's type */
    size_t type_end;
} level;

typedef struct walk {
    const tok *t;
    size_t n;
    pt_buf *out;
    char *err;
    size_t errsz;
    int changed;
    level lv[MAX_DEPTH];
    int depth;
    /* The last complete primary: where it starts in the output, and what PostgreSQL names a
     * select-list item made of it. */
    int prim_ok;
    size_t prim;
    char alias[PT_WHD_NAME_MAX + 2];
    int prim_lead;      /* it started a select-list item */
    int prim_rewritten; /* it was rewritten (only then does it need an alias) */
} walk;

/* Replaces out[start..end) with text. */
static int
splice(pt_buf *b, size_t start, size_t end, const char *text)
{
    size_t tl = strlen(text), tail = b->len - end;

    if (pt_buf_reserve(b, tl + 1) != 0)
        return PT_ENOMEM;
    memmove(b->data + start + tl, b->data + end, tail);
    memcpy(b->data + start, text, tl);
    b->len = start + tl + tail;
    b->data[b->len] = '\0';
    return 0;
}

/* A primary starts at output offset `at` with token i (i indexes the input). */
static void
start_primary(walk *w, size_t i, size_t at)
{
    size_t before = sig_before(w->t, i);

    w->prim_ok = 1;
    w->prim = at;
    w->prim_rewritten = 0;
    w->alias[0] = '\0';
    w->prim_lead = before != (size_t)-1 &&
                   (punct(w->t, w->n, before, ',') || kw_in(w->t, w->n, before, item_leads));
}

/* What PostgreSQL names a select-list item whose primary is token i (a column or a function
 * name): the name as written, folded to lower case unless quoted. */
static void
set_alias(walk *w, size_t i)
{
    const tok *t = &w->t[i];
    size_t j;

    w->alias[0] = '\0';
    if (t->t == T_IDENT && t->n < PT_WHD_NAME_MAX) {
        snprintf(w->alias, sizeof w->alias, "\"%.*s\"", (int)t->n, t->p);
        for (j = 1; w->alias[j + 1] != '\0'; j++)
            w->alias[j] = (char)tolower((unsigned char)w->alias[j]);
    } else if (t->t == T_QIDENT && t->p[0] == '"' && t->n < sizeof w->alias) {
        snprintf(w->alias, sizeof w->alias, "%.*s", (int)t->n, t->p);
    }
}

/* Before a token that ends a select-list item: name a rewritten item the way PostgreSQL
 * would ("SELECT id::text" gives a column "id", "SELECT now()" one named "now"). */
static int
name_item(walk *w)
{
    if (!w->prim_ok || !w->prim_rewritten || !w->prim_lead || w->alias[0] == '\0' ||
        !w->lv[w->depth].in_select || w->prim > w->out->len)
        return 0;
    char as[sizeof w->alias + 8];
    size_t end = w->out->len;

    w->prim_ok = 0;
    /* right after the item, before the white space that follows it */
    while (end > w->prim && isspace((unsigned char)w->out->data[end - 1]))
        end--;
    snprintf(as, sizeof as, " AS %s", w->alias);
    return splice(w->out, end, end, as);
}

static int
emit(walk *w, size_t i)
{
    return pt_buf_append(w->out, w->t[i].p, w->t[i].n) != 0 ? PT_ENOMEM : 0;
}

/* `::type` at token i: rewrites the primary before it. Returns the next token index via *next. */
static int
do_cast(walk *w, size_t i, size_t *next)
{
    char *expr = NULL;
    size_t len, after = 0;
    int kind, rc;

    if (!w->prim_ok || w->prim > w->out->len) {
        snprintf(w->err, w->errsz, "cannot translate a '::' cast here (write CAST(x AS type))");
        return PT_EINVAL;
    }
    kind = cast_type(w->t, w->n, i + 1, &after, w->err, w->errsz);
    if (kind < 0)
        return PT_EINVAL;
    len = w->out->len - w->prim;
    while (len > 0 && isspace((unsigned char)w->out->data[w->prim + len - 1]))
        len--;
    expr = malloc(len + 1);
    if (expr == NULL)
        return PT_ENOMEM;
    memcpy(expr, w->out->data + w->prim, len);
    w->out->len = w->prim;
    rc = put_cast(w->out, kind, expr, len);
    free(expr);
    w->prim_rewritten = 1;
    w->changed = 1;
    *next = after;
    return rc;
}

/* Rewrites the expressions of tokens [0, n) into w->out. coldef_paren: index of the '(' that
 * opens a CREATE TABLE's column list, or n; skip: index of a token to drop, or n. */
static int
rewrite(walk *w, size_t coldef_paren, size_t skip)
{
    const tok *t = w->t;
    size_t n = w->n, i = 0;
    int rc = 0;

    while (i < n && rc == 0) {
        level *lv = &w->lv[w->depth];
        size_t at = w->out->len;

        if (i == skip) {
            i = sig(t, n, i + 1);
            w->changed = 1;
            continue;
        }
        switch (t[i].t) {
        case T_SPACE:
            rc = emit(w, i);
            i++;
            continue;
        case T_CAST:
            rc = do_cast(w, i, &i);
            continue;
        case T_PUNCT:
            if (t[i].p[0] == '(') {
                size_t before = sig_before(t, i);
                if (w->depth + 1 >= MAX_DEPTH) {
                    snprintf(w->err, w->errsz, "statement nested too deeply");
                    return PT_EINVAL;
                }
                /* A call: the primary is the function name (qualified or not) and its
                 * arguments; a group: the parenthesised expression. */
                w->depth++;
                memset(&w->lv[w->depth], 0, sizeof w->lv[w->depth]);
                w->lv[w->depth].func_out =
                    w->prim_ok && before != (size_t)-1 &&
                            (t[before].t == T_QIDENT ||
                             (t[before].t == T_IDENT && !kw_in(t, n, before, not_functions)))
                        ? w->prim
                        : at;
                w->lv[w->depth].coldefs = i == coldef_paren;
                rc = emit(w, i);
                w->prim_ok = 0;
            } else if (t[i].p[0] == ')') {
                rc = name_item(w);
                if (rc == 0)
                    rc = emit(w, i);
                if (w->depth > 0) {
                    size_t from = w->lv[w->depth].func_out, k = i, head;
                    int d = 1;
                    w->depth--;
                    /* The primary is the call (named after its function) or the group. */
                    while (k > 0 && d > 0) {
                        k--;
                        if (punct(t, n, k, ')'))
                            d++;
                        else if (punct(t, n, k, '('))
                            d--;
                    }
                    head = sig_before(t, k);
                    if (head != (size_t)-1 && t[head].t == T_IDENT &&
                        !kw_in(t, n, head, not_functions)) {
                        start_primary(w, head, from);
                        set_alias(w, head);
                    } else {
                        start_primary(w, k, from);
                    }
                } else {
                    w->prim_ok = 0;
                }
            } else if (t[i].p[0] == '.') {
                rc = emit(w, i); /* a qualified name goes on: prim stays where it began */
                i++;
                continue;
            } else {
                if (t[i].p[0] == ',' || t[i].p[0] == ';') {
                    rc = name_item(w);
                    if (lv->coldefs)
                        lv->colpos = 0;
                }
                if (rc == 0)
                    rc = emit(w, i);
                w->prim_ok = 0;
            }
            i++;
            continue;
        default:
            break;
        }
        /* Identifiers, strings, numbers, parameters. */
        size_t nx = sig(t, n, i + 1), before = sig_before(t, i);
        int after_dot = before != (size_t)-1 && punct(t, n, before, '.');

        if (t[i].t == T_IDENT && kw_in(t, n, i, list_ends)) {
            rc = name_item(w);
            lv->in_select = 0;
        }
        if (rc != 0)
            break;
        if (t[i].t == T_IDENT && !after_dot && punct(t, n, nx, '(') &&
            punct(t, n, sig(t, n, nx + 1), ')') &&
            (kw(t, n, i, "now") || kw(t, n, i, "transaction_timestamp") ||
             kw(t, n, i, "statement_timestamp") || kw(t, n, i, "clock_timestamp") ||
             kw(t, n, i, "gen_random_uuid") || kw(t, n, i, "uuid_generate_v4"))) {
            start_primary(w, i, at);
            set_alias(w, i);
            rc = pt_buf_puts(w->out,
                             kw(t, n, i, "gen_random_uuid") || kw(t, n, i, "uuid_generate_v4")
                                 ? UUID_SQL
                                 : NOW_SQL) != 0
                     ? PT_ENOMEM
                     : 0;
            w->prim_rewritten = 1;
            w->changed = 1;
            i = sig(t, n, nx + 1) + 1;
            continue;
        }
        if (t[i].t == T_IDENT && !after_dot && nx < n && t[nx].t == T_STRING &&
            (kw(t, n, i, "date") || kw(t, n, i, "timestamp") || kw(t, n, i, "timestamptz") ||
             kw(t, n, i, "time") || kw(t, n, i, "interval"))) {
            /* A typed literal: date '2024-05-01'. */
            if (kw(t, n, i, "interval")) {
                snprintf(w->err, w->errsz,
                         "the embedded SQLite warehouse has no interval type (write "
                         "datetime(x, '+1 day') instead of x + interval '1 day')");
                return PT_EINVAL;
            }
            start_primary(w, i, at);
            rc = put_cast(w->out,
                          kw(t, n, i, "date")   ? TY_DATE
                          : kw(t, n, i, "time") ? TY_TIME
                                                : TY_TIMESTAMP,
                          t[nx].p, t[nx].n);
            w->changed = 1;
            i = nx + 1;
            continue;
        }
        if (kw(t, n, i, "ilike")) {
            rc = pt_buf_puts(w->out, "LIKE") != 0 ? PT_ENOMEM : 0;
            w->changed = 1;
            w->prim_ok = 0;
            i++;
            continue;
        }
        if (kw(t, n, i, "select")) {
            lv->in_select = 1;
            rc = emit(w, i);
            w->prim_ok = 0;
            i++;
            continue;
        }
        if (lv->coldefs && t[i].t != T_STRING) {
            lv->colpos++;
            if (lv->colpos == 2) {
                static const char *const serials[] = {
                    "serial", "serial2", "serial4", "serial8", "smallserial", "bigserial", NULL};
                lv->type_start = at;
                if (kw_in(t, n, i, serials)) {
                    rc = pt_buf_puts(w->out, "INTEGER") != 0 ? PT_ENOMEM : 0;
                    w->changed = 1;
                } else {
                    rc = emit(w, i);
                }
                lv->type_end = w->out->len;
                w->prim_ok = 0;
                i++;
                continue;
            }
            if (lv->colpos > 2 && kw(t, n, i, "generated")) {
                /* GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY [(options)]: SQLite numbers an
                 * INTEGER PRIMARY KEY itself. */
                size_t k = sig(t, n, i + 1);
                if (kw(t, n, k, "by"))
                    k = sig(t, n, sig(t, n, k + 1) + 1);
                else
                    k = sig(t, n, k + 1);
                if (kw(t, n, k, "as") && kw(t, n, sig(t, n, k + 1), "identity")) {
                    size_t opt;
                    k = sig(t, n, k + 1) + 1;
                    opt = sig(t, n, k);
                    if (punct(t, n, opt, '(')) {
                        while (opt < n && !punct(t, n, opt, ')'))
                            opt++;
                        k = opt + 1;
                    }
                    if (lv->type_end > lv->type_start &&
                        splice(w->out, lv->type_start, lv->type_end, "INTEGER") != 0)
                        return PT_ENOMEM;
                    while (w->out->len > 0 && isspace((unsigned char)w->out->data[w->out->len - 1]))
                        w->out->len--; /* the space before GENERATED: the next token's stays */
                    w->out->data[w->out->len] = '\0';
                    w->changed = 1;
                    i = k;
                    continue;
                }
            }
        }
        if (after_dot)
            w->prim_ok = 1; /* a qualified name goes on: the primary began at its first part */
        else
            start_primary(w, i, at);
        set_alias(w, i);
        rc = emit(w, i);
        i++;
    }
    if (rc == 0)
        rc = name_item(w);
    return rc;
}

/* Rewrites the expressions of sql[0..len) into a new string (*out, caller frees), or sets *out
 * to NULL when nothing changed. */
static int
rewrite_text(const char *sql, size_t len, char **out, char *err, size_t errsz)
{
    static const char *const tables[] = {"table", NULL};
    tok *t = NULL;
    size_t n = 0, i, coldef = 0, skip = 0;
    pt_buf b;
    walk *w = NULL;
    int rc;

    *out = NULL;
    pt_buf_init(&b, 0);
    rc = tokenize(sql, len, &t, &n);
    if (rc != 0)
        return rc;
    coldef = skip = n;
    /* CREATE [GLOBAL | LOCAL] [TEMP | TEMPORARY | UNLOGGED] TABLE [IF NOT EXISTS] name ( */
    i = sig(t, n, 0);
    if (kw(t, n, i, "create")) {
        i = sig(t, n, i + 1);
        if (kw(t, n, i, "global") || kw(t, n, i, "local"))
            i = sig(t, n, i + 1);
        if (kw(t, n, i, "unlogged")) {
            skip = i;
            i = sig(t, n, i + 1);
        } else if (kw(t, n, i, "temp") || kw(t, n, i, "temporary")) {
            i = sig(t, n, i + 1);
        }
        if (kw_in(t, n, i, tables)) {
            char s[PT_WHD_NAME_MAX], nm[PT_WHD_NAME_MAX];
            i = sig(t, n, i + 1);
            if (kw(t, n, i, "if"))
                i = sig(t, n, sig(t, n, sig(t, n, i + 1) + 1) + 1);
            if (qname(t, n, &i, s, nm) == 0 && punct(t, n, sig(t, n, i), '('))
                coldef = sig(t, n, i);
        } else {
            skip = n;
        }
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        free(t);
        return PT_ENOMEM;
    }
    w->t = t;
    w->n = n;
    w->out = &b;
    w->err = err;
    w->errsz = errsz;
    rc = rewrite(w, coldef, skip);
    if (rc == 0 && w->changed) {
        if (pt_buf_cstr(&b) == NULL)
            rc = PT_ENOMEM;
        else
            *out = pt_buf_steal(&b, NULL);
    }
    pt_buf_free(&b);
    free(w);
    free(t);
    return rc;
}

/* ---- statements --------------------------------------------------------------------------- */

/* TRUNCATE [TABLE] [ONLY] name [*] [, ...] [RESTART IDENTITY | CONTINUE IDENTITY]
 * [CASCADE | RESTRICT]: one DELETE per table (SQLite empties a table it deletes from without
 * a WHERE in one step). CASCADE is accepted and does nothing more: the embedded warehouse has
 * no foreign keys between tables of different schema files, and does not enforce others. */
static int
plan_truncate(const tok *t, size_t n, size_t i, pt_whd_plan *plan, char *err, size_t errsz)
{
    int restart = 0, rc;

    i = sig(t, n, i);
    if (kw(t, n, i, "table"))
        i++;
    for (;;) {
        char schema[PT_WHD_NAME_MAX], table[PT_WHD_NAME_MAX];
        pt_buf b;
        i = sig(t, n, i);
        if (kw(t, n, i, "only"))
            i++;
        if (qname(t, n, &i, schema, table) != 0)
            return syntax(err, errsz, "TRUNCATE (TRUNCATE [TABLE] schema.table [, ...])");
        i = sig(t, n, i);
        if (punct(t, n, i, '*'))
            i = sig(t, n, i + 1);
        pt_buf_init(&b, 0);
        if (pt_buf_puts(&b, "DELETE FROM ") != 0 || put_qname(&b, schema, table) != 0 ||
            pt_buf_cstr(&b) == NULL) {
            pt_buf_free(&b);
            return PT_ENOMEM;
        }
        pt_whd_step *st = NULL;
        rc = add_step(plan, PT_WHD_SQL, pt_buf_steal(&b, NULL), &st);
        if (rc != 0)
            return rc;
        snprintf(st->schema, sizeof st->schema, "%s", schema);
        snprintf(st->table, sizeof st->table, "%s", table);
        if (!punct(t, n, i, ','))
            break;
        i++;
    }
    if (kw(t, n, i, "restart") || kw(t, n, i, "continue")) {
        restart = kw(t, n, i, "restart");
        i = sig(t, n, i + 1);
        if (!kw(t, n, i, "identity"))
            return syntax(err, errsz, "TRUNCATE (RESTART IDENTITY or CONTINUE IDENTITY)");
        i = sig(t, n, i + 1);
    }
    if (kw(t, n, i, "cascade") || kw(t, n, i, "restrict"))
        i = sig(t, n, i + 1);
    if (punct(t, n, i, ';'))
        i = sig(t, n, i + 1);
    if (i < n)
        return syntax(err, errsz, "TRUNCATE (unexpected words after the table names)");
    if (restart) {
        size_t k, ntables = plan->n;
        for (k = 0; k < ntables; k++) {
            pt_whd_step *st = NULL;
            rc = add_step(plan, PT_WHD_RESET_IDENTITY, NULL, &st);
            if (rc != 0)
                return rc;
            snprintf(st->schema, sizeof st->schema, "%s", plan->steps[k].schema);
            snprintf(st->table, sizeof st->table, "%s", plan->steps[k].table);
        }
    }
    return 0;
}

/* CREATE SCHEMA [IF NOT EXISTS] name [AUTHORIZATION role]: a schema file of the warehouse. */
static int
plan_create_schema(const tok *t, size_t n, size_t i, pt_whd_plan *plan, char *err, size_t errsz)
{
    char name[PT_WHD_NAME_MAX];
    pt_whd_step *st = NULL;
    int ine = 0, rc;

    i = sig(t, n, i);
    if (kw(t, n, i, "if")) {
        size_t a = sig(t, n, i + 1), b = sig(t, n, a + 1);
        if (!kw(t, n, a, "not") || !kw(t, n, b, "exists"))
            return syntax(err, errsz, "CREATE SCHEMA (CREATE SCHEMA [IF NOT EXISTS] name)");
        ine = 1;
        i = sig(t, n, b + 1);
    }
    if (kw(t, n, i, "authorization") || name_of(t, n, i, name) != 0)
        return syntax(err, errsz, "CREATE SCHEMA (CREATE SCHEMA [IF NOT EXISTS] name)");
    i = sig(t, n, i + 1);
    if (kw(t, n, i, "authorization")) /* roles do not exist in the embedded warehouse */
        i = sig(t, n, sig(t, n, i + 1) + 1);
    if (punct(t, n, i, ';'))
        i = sig(t, n, i + 1);
    if (i < n)
        return syntax(err, errsz,
                      "CREATE SCHEMA (CREATE SCHEMA [IF NOT EXISTS] name; elements created "
                      "inside it are not supported, create them with their own statements)");
    rc = add_step(plan, PT_WHD_CREATE_SCHEMA, NULL, &st);
    if (rc != 0)
        return rc;
    snprintf(st->schema, sizeof st->schema, "%s", name);
    st->flag = ine;
    return 0;
}

/* Copies tokens [a, b) of the statement (their text as written) to buf. */
static int
put_tokens(pt_buf *buf, const tok *t, size_t a, size_t b)
{
    if (a >= b)
        return 0;
    return pt_buf_append(buf, t[a].p, (size_t)(t[b - 1].p + t[b - 1].n - t[a].p)) != 0 ? PT_ENOMEM
                                                                                       : 0;
}

/* Ends of the comma-separated items from token i: the index of each top-level ',' (or of the
 * end: n or a final ';'). Returns how many items, at most max. */
static size_t
split_items(const tok *t, size_t n, size_t i, size_t *ends, size_t max)
{
    size_t k = 0;
    int depth = 0;

    for (; i < n && k < max; i++) {
        if (punct(t, n, i, '('))
            depth++;
        else if (punct(t, n, i, ')'))
            depth--;
        else if (depth == 0 && (punct(t, n, i, ',') || punct(t, n, i, ';')))
            ends[k++] = i;
    }
    if (k < max && (k == 0 || !punct(t, n, ends[k - 1], ';')))
        ends[k++] = n;
    return k;
}

#define MAX_ITEMS 64

/* ALTER TABLE [IF EXISTS] [ONLY] name action [, ...] where every action is ADD [COLUMN]
 * [IF NOT EXISTS] name definition or DROP [COLUMN] [IF EXISTS] name [CASCADE | RESTRICT]:
 * one step per action, since SQLite's ALTER TABLE takes one action and no IF. Returns 1 when
 * the statement is not of this form (SQLite runs it, or says what it lacks). */
static int
plan_alter(const tok *t, size_t n, size_t i, pt_whd_plan *plan, char *err, size_t errsz)
{
    char schema[PT_WHD_NAME_MAX], table[PT_WHD_NAME_MAX];
    size_t ends[MAX_ITEMS], nitems, k, from;
    int if_table = 0, needed = 0, rc;

    i = sig(t, n, i);
    if (kw(t, n, i, "if") && kw(t, n, sig(t, n, i + 1), "exists")) {
        if_table = needed = 1;
        i = sig(t, n, sig(t, n, i + 1) + 1);
    }
    if (kw(t, n, i, "only"))
        i = sig(t, n, i + 1);
    if (qname(t, n, &i, schema, table) != 0)
        return 1;
    from = sig(t, n, i);
    nitems = split_items(t, n, from, ends, MAX_ITEMS);
    if (nitems > 1)
        needed = 1;
    for (k = 0; k < nitems; k++) {
        size_t a = sig(t, n, k == 0 ? from : ends[k - 1] + 1);
        if (kw(t, n, a, "alter")) {
            snprintf(err, errsz,
                     "the embedded SQLite warehouse cannot ALTER COLUMN (change a "
                     "column's type or default by creating a new table)");
            return PT_EINVAL;
        }
        if (!kw(t, n, a, "add") && !kw(t, n, a, "drop"))
            return needed ? syntax(err, errsz,
                                   "ALTER TABLE (one action at a time, except ADD "
                                   "and DROP COLUMN)")
                          : 1;
        size_t c = sig(t, n, a + 1);
        if (kw(t, n, c, "column"))
            c = sig(t, n, c + 1);
        if (kw(t, n, c, "if"))
            needed = 1;
        if (kw(t, n, a, "drop") &&
            (kw(t, n, sig(t, n, c + 1), "cascade") || kw(t, n, sig(t, n, c + 1), "restrict")))
            needed = 1;
        if (kw(t, n, a, "add") &&
            (kw(t, n, c, "constraint") || kw(t, n, c, "primary") || kw(t, n, c, "unique") ||
             kw(t, n, c, "foreign") || kw(t, n, c, "check"))) {
            snprintf(err, errsz,
                     "the embedded SQLite warehouse cannot add constraints to a "
                     "table (declare them in CREATE TABLE)");
            return PT_EINVAL;
        }
    }
    if (!needed)
        return 1;
    for (k = 0; k < nitems; k++) {
        size_t a = sig(t, n, k == 0 ? from : ends[k - 1] + 1), c, e = ends[k];
        int add = kw(t, n, a, "add"), flag = 0;
        char col[PT_WHD_NAME_MAX], *sql = NULL;
        pt_whd_step *st = NULL;
        pt_buf b;

        c = sig(t, n, a + 1);
        if (kw(t, n, c, "column"))
            c = sig(t, n, c + 1);
        if (kw(t, n, c, "if")) {
            size_t x = sig(t, n, c + 1);
            if (add && kw(t, n, x, "not"))
                x = sig(t, n, x + 1);
            if (!kw(t, n, x, "exists"))
                return syntax(err, errsz,
                              "ALTER TABLE (ADD COLUMN IF NOT EXISTS, DROP COLUMN "
                              "IF EXISTS)");
            flag = 1;
            c = sig(t, n, x + 1);
        }
        if (name_of(t, n, c, col) != 0)
            return syntax(err, errsz, "ALTER TABLE (a column name)");
        pt_buf_init(&b, 0);
        rc = pt_buf_puts(&b, "ALTER TABLE ") != 0 || put_qname(&b, schema, table) != 0 ||
                     pt_buf_printf(&b, add ? " ADD COLUMN \"%s\"" : " DROP COLUMN \"%s\"", col) != 0
                 ? PT_ENOMEM
                 : 0;
        /* The column's definition, as written, stays in an ADD COLUMN. */
        if (rc == 0 && add) {
            size_t d = c + 1;
            while (d < e && t[d].t == T_SPACE)
                d++;
            if (d < e && (pt_buf_putc(&b, ' ') != 0 || put_tokens(&b, t, d, e) != 0))
                rc = PT_ENOMEM;
        }
        if (rc == 0 && pt_buf_cstr(&b) == NULL)
            rc = PT_ENOMEM;
        if (rc != 0) {
            pt_buf_free(&b);
            return rc;
        }
        sql = pt_buf_steal(&b, NULL);
        if (add) {
            /* the definition may use now(), casts, serial: translate it too */
            char *tr = NULL;
            rc = rewrite_text(sql, strlen(sql), &tr, err, errsz);
            if (rc != 0) {
                free(sql);
                return rc;
            }
            if (tr != NULL) {
                free(sql);
                sql = tr;
            }
        }
        rc = add_step(plan, add ? PT_WHD_ADD_COLUMN : PT_WHD_DROP_COLUMN, sql, &st);
        if (rc != 0)
            return rc;
        snprintf(st->schema, sizeof st->schema, "%s", schema);
        snprintf(st->table, sizeof st->table, "%s", table);
        snprintf(st->column, sizeof st->column, "%s", col);
        st->flag = flag;
        st->if_table = if_table;
    }
    return 0;
}

/* DROP TABLE | VIEW | INDEX [IF EXISTS] name [, ...] [CASCADE | RESTRICT]: SQLite drops one
 * object per statement and knows neither CASCADE nor RESTRICT. Returns 1 when the statement
 * needs no change. */
static int
plan_drop(const tok *t, size_t n, size_t i, pt_whd_plan *plan, char *err, size_t errsz)
{
    static const char *const kinds[] = {"table", "view", "index", NULL};
    char schema[PT_WHD_NAME_MAX], name[PT_WHD_NAME_MAX];
    size_t kind = sig(t, n, i), k, first;
    int ifexists = 0, rc;

    if (!kw_in(t, n, kind, kinds))
        return 1;
    i = sig(t, n, kind + 1);
    if (kw(t, n, i, "if") && kw(t, n, sig(t, n, i + 1), "exists")) {
        ifexists = 1;
        i = sig(t, n, sig(t, n, i + 1) + 1);
    }
    first = i;
    /* Is there anything to change: a second name, or CASCADE / RESTRICT? */
    for (k = i; k < n; k++)
        if (punct(t, n, k, ',') || kw(t, n, k, "cascade") || kw(t, n, k, "restrict"))
            break;
    if (k == n)
        return 1;
    i = first;
    for (;;) {
        pt_buf b;
        if (qname(t, n, &i, schema, name) != 0)
            return syntax(err, errsz, "DROP (DROP TABLE [IF EXISTS] schema.table [, ...])");
        pt_buf_init(&b, 0);
        if (pt_buf_printf(&b, "DROP %.*s %s", (int)t[kind].n, t[kind].p,
                          ifexists ? "IF EXISTS " : "") != 0 ||
            put_qname(&b, schema, name) != 0 || pt_buf_cstr(&b) == NULL) {
            pt_buf_free(&b);
            return PT_ENOMEM;
        }
        rc = add_step(plan, PT_WHD_SQL, pt_buf_steal(&b, NULL), NULL);
        if (rc != 0)
            return rc;
        i = sig(t, n, i);
        if (!punct(t, n, i, ','))
            break;
        i++;
    }
    if (kw(t, n, i, "cascade") || kw(t, n, i, "restrict"))
        i = sig(t, n, i + 1);
    if (punct(t, n, i, ';'))
        i = sig(t, n, i + 1);
    if (i < n)
        return syntax(err, errsz, "DROP (unexpected words after the names)");
    return 0;
}

/* CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON [ONLY] schema.table
 * [USING method] (...) ...: SQLite names the index's schema on the index, not the table
 * ("CREATE INDEX s.i ON t (...)"), and has one index method. Returns 1 when the statement
 * needs no change. */
static int
plan_index(const tok *t, size_t n, size_t i, int unique, pt_whd_plan *plan, char *err, size_t errsz)
{
    char schema[PT_WHD_NAME_MAX], table[PT_WHD_NAME_MAX], iname[PT_WHD_NAME_MAX],
        ischema[PT_WHD_NAME_MAX];
    int ine = 0, changed = 0, rc;
    size_t rest;
    char *sql = NULL, *tr = NULL;
    pt_buf b;

    i = sig(t, n, i);
    if (kw(t, n, i, "concurrently")) {
        changed = 1;
        i = sig(t, n, i + 1);
    }
    if (kw(t, n, i, "if")) {
        ine = 1;
        i = sig(t, n, sig(t, n, sig(t, n, i + 1) + 1) + 1);
    }
    if (kw(t, n, i, "on")) {
        snprintf(err, errsz, "CREATE INDEX needs a name in the embedded SQLite warehouse");
        return PT_EINVAL;
    }
    if (qname(t, n, &i, ischema, iname) != 0)
        return 1;
    i = sig(t, n, i);
    if (!kw(t, n, i, "on"))
        return 1;
    i = sig(t, n, i + 1);
    if (kw(t, n, i, "only")) {
        changed = 1;
        i = sig(t, n, i + 1);
    }
    if (qname(t, n, &i, schema, table) != 0)
        return 1;
    if (schema[0] != '\0')
        changed = 1;
    i = sig(t, n, i);
    if (kw(t, n, i, "using")) {
        changed = 1;
        i = sig(t, n, sig(t, n, i + 1) + 1);
    }
    rest = i;
    if (!changed)
        return 1;
    if (ischema[0] != '\0' && schema[0] != '\0' && strcmp(ischema, schema) != 0)
        return syntax(err, errsz, "CREATE INDEX (the index is in its table's schema)");
    pt_buf_init(&b, 0);
    rc = pt_buf_printf(&b, "CREATE %sINDEX %s", unique ? "UNIQUE " : "",
                       ine ? "IF NOT EXISTS " : "") != 0 ||
                 put_qname(&b, schema[0] != '\0' ? schema : ischema, iname) != 0 ||
                 pt_buf_printf(&b, " ON \"%s\" ", table) != 0 || put_tokens(&b, t, rest, n) != 0 ||
                 pt_buf_cstr(&b) == NULL
             ? PT_ENOMEM
             : 0;
    if (rc != 0) {
        pt_buf_free(&b);
        return rc;
    }
    sql = pt_buf_steal(&b, NULL);
    rc = rewrite_text(sql, strlen(sql), &tr, err, errsz);
    if (rc != 0) {
        free(sql);
        return rc;
    }
    if (tr != NULL) {
        free(sql);
        sql = tr;
    }
    return add_step(plan, PT_WHD_SQL, sql, NULL);
}

/* Could the statement need translating at all? One pass over its words: pq's own SELECT and
 * INSERT statements, the most frequent by far, never reach the token walk. A word inside a
 * string or a quoted name may say yes when the answer is no: the walk then changes nothing. */
static int
may_need(const char *sql, size_t len)
{
    static const char *const words[] = {"now",
                                        "ilike",
                                        "gen_random_uuid",
                                        "uuid_generate_v4",
                                        "date",
                                        "time",
                                        "timestamp",
                                        "timestamptz",
                                        "interval",
                                        "truncate",
                                        "schema",
                                        "alter",
                                        "drop",
                                        "serial",
                                        "serial2",
                                        "serial4",
                                        "serial8",
                                        "smallserial",
                                        "bigserial",
                                        "generated",
                                        "index",
                                        "unlogged",
                                        "clock_timestamp",
                                        "statement_timestamp",
                                        "transaction_timestamp",
                                        NULL};
    const char *p = sql, *end = sql + len;
    const char *const *w;

    while (p < end) {
        char word[24];
        size_t n = 0;
        if (p[0] == ':' && p + 1 < end && p[1] == ':')
            return 1;
        if (!isalpha((unsigned char)*p) && *p != '_') {
            p++;
            continue;
        }
        for (; p < end && ident_char((unsigned char)*p); p++)
            if (n < sizeof word - 1)
                word[n++] = (char)tolower((unsigned char)*p);
        word[n] = '\0';
        for (w = words; *w != NULL; w++)
            if (strcmp(word, *w) == 0)
                return 1;
    }
    return 0;
}

int
pt_whd_translate(const char *sql, size_t len, pt_whd_plan *plan, char *err, size_t errsz)
{
    tok *t = NULL;
    size_t n = 0, i, j;
    char *text = NULL;
    int rc;

    plan->steps = NULL;
    plan->n = 0;
    if (!may_need(sql, len))
        return 0;
    rc = tokenize(sql, len, &t, &n);
    if (rc != 0)
        return rc;
    i = sig(t, n, 0);
    j = sig(t, n, i + 1);
    if (kw(t, n, i, "truncate")) {
        rc = plan_truncate(t, n, i + 1, plan, err, errsz);
        goto done;
    }
    if (kw(t, n, i, "create") && kw(t, n, j, "schema")) {
        rc = plan_create_schema(t, n, j + 1, plan, err, errsz);
        goto done;
    }
    if (kw(t, n, i, "drop") && kw(t, n, j, "schema")) {
        snprintf(err, errsz,
                 "DROP SCHEMA is not supported by the embedded SQLite warehouse "
                 "(drop its tables; an empty schema is harmless)");
        rc = PT_EINVAL;
        goto done;
    }
    if (kw(t, n, i, "create") &&
        (kw(t, n, j, "trigger") || ((kw(t, n, j, "temp") || kw(t, n, j, "temporary")) &&
                                    kw(t, n, sig(t, n, j + 1), "trigger"))))
        goto done; /* its body holds statements: SQLite reads it as it is */
    rc = 1;
    if (kw(t, n, i, "alter") && kw(t, n, j, "table"))
        rc = plan_alter(t, n, j + 1, plan, err, errsz);
    else if (kw(t, n, i, "drop"))
        rc = plan_drop(t, n, j, plan, err, errsz);
    else if (kw(t, n, i, "create") && kw(t, n, j, "index"))
        rc = plan_index(t, n, j + 1, 0, plan, err, errsz);
    else if (kw(t, n, i, "create") && kw(t, n, j, "unique") && kw(t, n, sig(t, n, j + 1), "index"))
        rc = plan_index(t, n, sig(t, n, j + 1) + 1, 1, plan, err, errsz);
    if (rc != 1)
        goto done;
    /* Everything else: expressions only. */
    rc = rewrite_text(sql, len, &text, err, errsz);
    if (rc == 0 && text != NULL)
        rc = add_step(plan, PT_WHD_SQL, text, NULL);
done:
    free(t);
    if (rc != 0 && rc != PT_ENOMEM && rc != PT_EINVAL)
        rc = PT_EINVAL;
    if (rc == PT_ENOMEM)
        snprintf(err, errsz, "out of memory");
    return rc;
}
