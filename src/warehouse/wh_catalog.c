/* wh_catalog.c - the warehouse catalog (wh.h): schemas, tables and columns as pq's metadata
 * functions list them, the builders drivers fill it with, dropping schemas and tables, and the
 * UNION ALL query of generate_sql_union. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/err.h"
#include "warehouse/wh_int.h"
#include "warehouse/wh_sql.h"

/* Grows *arr (elements of size `size`) so that index n fits: capacities are powers of two, so
 * the array is reallocated only when n is one. Returns 0 or PT_ENOMEM. */
static int
grow(void **arr, size_t n, size_t size)
{
    void *p;

    if (n != 0 && (n & (n - 1)) != 0)
        return 0;
    p = realloc(*arr, (n == 0 ? 1 : 2 * n) * size);
    if (p == NULL)
        return PT_ENOMEM;
    *arr = p;
    return 0;
}

static int
nomem(pt_wh *wh)
{
    pt_wh_set_error(wh, "out of memory");
    return PT_ENOMEM;
}

int
pt_wh_catalog_add_schema(pt_wh *wh, pt_wh_catalog *cat, const char *name)
{
    pt_wh_schema_info *s;

    if (grow((void **)&cat->schemas, cat->nschemas, sizeof *cat->schemas) != 0)
        return nomem(wh);
    s = &cat->schemas[cat->nschemas];
    memset(s, 0, sizeof *s);
    if ((s->name = strdup(name)) == NULL)
        return nomem(wh);
    cat->nschemas++;
    return 0;
}

int
pt_wh_catalog_add_table(pt_wh *wh, pt_wh_catalog *cat, const char *name, int is_view)
{
    pt_wh_schema_info *s = cat->nschemas > 0 ? &cat->schemas[cat->nschemas - 1] : NULL;
    pt_wh_table_info *t;

    if (s == NULL)
        return PT_EINVAL;
    if (grow((void **)&s->tables, s->ntables, sizeof *s->tables) != 0)
        return nomem(wh);
    t = &s->tables[s->ntables];
    memset(t, 0, sizeof *t);
    if ((t->name = strdup(name)) == NULL)
        return nomem(wh);
    t->is_view = is_view;
    s->ntables++;
    return 0;
}

int
pt_wh_catalog_add_field(pt_wh *wh, pt_wh_catalog *cat, const char *name, const char *sql_type,
                        int pk, int notnull)
{
    pt_wh_schema_info *s = cat->nschemas > 0 ? &cat->schemas[cat->nschemas - 1] : NULL;
    pt_wh_table_info *t = s != NULL && s->ntables > 0 ? &s->tables[s->ntables - 1] : NULL;
    pt_wh_field *f;
    size_t i;

    if (t == NULL)
        return PT_EINVAL;
    if (grow((void **)&t->fields, t->nfields, sizeof *t->fields) != 0)
        return nomem(wh);
    f = &t->fields[t->nfields];
    memset(f, 0, sizeof *f);
    f->name = strdup(name);
    f->sql_type = strdup(sql_type != NULL ? sql_type : "");
    if (f->name == NULL || f->sql_type == NULL) {
        free(f->name);
        free(f->sql_type);
        return nomem(wh);
    }
    for (i = 0; f->sql_type[i] != '\0'; i++)
        f->sql_type[i] = (char)tolower((unsigned char)f->sql_type[i]);
    f->type = pt_wh_portable_type(f->sql_type);
    f->pk = pk;
    f->notnull = notnull;
    t->nfields++;
    return 0;
}

void
pt_wh_catalog_free(pt_wh_catalog *cat)
{
    size_t i, j, k;

    if (cat == NULL)
        return;
    for (i = 0; i < cat->nschemas; i++) {
        pt_wh_schema_info *s = &cat->schemas[i];
        for (j = 0; j < s->ntables; j++) {
            for (k = 0; k < s->tables[j].nfields; k++) {
                free(s->tables[j].fields[k].name);
                free(s->tables[j].fields[k].sql_type);
            }
            free(s->tables[j].fields);
            free(s->tables[j].name);
        }
        free(s->tables);
        free(s->name);
    }
    free(cat->schemas);
    free(cat->database);
    free(cat);
}

int
pt_wh_catalog_read(pt_wh *wh, const char *schema, const char *table, pt_wh_cat_level level,
                   pt_wh_catalog **out)
{
    pt_wh_catalog *cat = calloc(1, sizeof *cat);
    int rc;

    *out = NULL;
    if (cat == NULL)
        return nomem(wh);
    rc = wh->drv->catalog(wh, schema, table, level, cat);
    if (rc == 0 && cat->database == NULL && (cat->database = strdup(wh->name)) == NULL)
        rc = nomem(wh);
    if (rc != 0) {
        pt_wh_catalog_free(cat);
        return rc;
    }
    *out = cat;
    return 0;
}

/* Does the lower-case text s contain word? */
static int
has(const char *s, const char *word)
{
    return strstr(s, word) != NULL;
}

const char *
pt_wh_portable_type(const char *sql_type)
{
    char t[128];
    size_t i;

    for (i = 0; i + 1 < sizeof t && sql_type[i] != '\0'; i++)
        t[i] = (char)tolower((unsigned char)sql_type[i]);
    t[i] = '\0';
    /* Order matters: "interval" holds "int", "timestamp" holds "time", "datetime" "date". */
    if (has(t, "interval") || has(t, "point"))
        return "text";
    if (has(t, "json"))
        return "json";
    if (has(t, "bool"))
        return "bool";
    if (has(t, "timestamptz") || (has(t, "timestamp") && has(t, "with time zone")))
        return "timestamptz";
    if (has(t, "timestamp") || has(t, "datetime"))
        return "timestamp";
    if (has(t, "date"))
        return "date";
    if (has(t, "time"))
        return "time";
    if (has(t, "int"))
        return "int";
    if (has(t, "numeric") || has(t, "decimal"))
        return "numeric";
    if (has(t, "real") || has(t, "double") || has(t, "float"))
        return "float";
    if (has(t, "bytea") || has(t, "blob"))
        return "bytes";
    return "text";
}

int
pt_wh_drop_schema(pt_wh *wh, const char *schema)
{
    if (!pt_wh_ident_valid(schema)) {
        pt_wh_set_error(wh, "invalid schema name");
        return PT_EINVAL;
    }
    return wh->drv->drop_schema(wh, schema);
}

char *
pt_wh_qualified_name(const char *schema, const char *table)
{
    pt_buf b;
    int rc;

    pt_buf_init(&b, 0);
    rc = pt_wh_sql_quote(&b, schema);
    rc = rc != 0 ? rc : pt_buf_putc(&b, '.');
    rc = rc != 0 ? rc : pt_wh_sql_quote(&b, table);
    if (rc != 0) {
        pt_buf_free(&b);
        return NULL;
    }
    return pt_buf_steal(&b, NULL);
}

int
pt_wh_drop_table(pt_wh *wh, const char *schema, const char *table, int is_view, int cascade)
{
    pt_wh_cursor *cur = NULL;
    pt_buf sql;
    int rc;

    pt_buf_init(&sql, 0);
    rc = pt_wh_sql_drop_table(&sql, pt_wh_dialect_of(wh), schema, table, is_view, cascade);
    if (rc == PT_EINVAL) {
        pt_buf_free(&sql);
        pt_wh_set_error(wh, "a table name cannot be empty");
        return rc;
    }
    if (rc != 0) {
        pt_buf_free(&sql);
        return nomem(wh);
    }
    rc = pt_wh_exec(wh, pt_buf_cstr(&sql), NULL, 0, &cur);
    pt_wh_cursor_free(cur);
    pt_buf_free(&sql);
    return rc;
}

/* The field of t named name (regardless of case when nocase), or NULL. */
static const pt_wh_field *
field_named(const pt_wh_table_info *t, const char *name, int nocase)
{
    for (size_t i = 0; i < t->nfields; i++)
        if ((nocase ? strcasecmp(t->fields[i].name, name) : strcmp(t->fields[i].name, name)) == 0)
            return &t->fields[i];
    return NULL;
}

/* The SELECT of one table of the union: cols (the union's columns, first occurrence of each
 * name) with cast[k] set where types differ. Returns 0 or PT_ENOMEM. */
static int
union_select(pt_buf *b, const pt_wh_schema_info *s, const char *label,
             const pt_wh_field *const *cols, const char *cast, size_t ncols, int nocase)
{
    const pt_wh_table_info *t = &s->tables[0];
    int rc = pt_buf_puts(b, "SELECT "), first = 1;

    if (rc == 0 && label != NULL) {
        rc = pt_wh_sql_literal(b, label);
        rc = rc != 0 ? rc : pt_buf_puts(b, " AS \"source\"");
        first = 0;
    }
    for (size_t k = 0; rc == 0 && k < ncols; k++) {
        const pt_wh_field *f = field_named(t, cols[k]->name, nocase);
        if (!first)
            rc = pt_buf_puts(b, ", ");
        first = 0;
        if (rc == 0 && f == NULL)
            rc = pt_buf_puts(b, "NULL");
        else if (rc == 0 && cast[k])
            rc = pt_buf_puts(b, "CAST(");
        if (rc == 0 && f != NULL)
            rc = pt_wh_sql_quote(b, f->name);
        if (rc == 0 && f != NULL && cast[k])
            rc = pt_buf_puts(b, " AS TEXT)");
        /* An alias wherever the output name would differ from the union's column name. */
        if (rc == 0 && (f == NULL || cast[k] || strcmp(f->name, cols[k]->name) != 0)) {
            rc = pt_buf_puts(b, " AS ");
            rc = rc != 0 ? rc : pt_wh_sql_quote(b, cols[k]->name);
        }
    }
    rc = rc != 0 ? rc : pt_buf_puts(b, " FROM ");
    rc = rc != 0 ? rc : pt_wh_sql_quote(b, s->name);
    rc = rc != 0 ? rc : pt_buf_putc(b, '.');
    return rc != 0 ? rc : pt_wh_sql_quote(b, t->name);
}

int
pt_wh_union_sql(pt_wh *wh, const pt_wh_catalog *const *cats, size_t n, const char *const *labels,
                char **sql)
{
    const pt_wh_field **cols = NULL;
    char *cast = NULL;
    size_t ncols = 0, i, j, k;
    int nocase = strcmp(wh->drv->kind, "sqlite") == 0, rc = 0;
    pt_buf b;

    *sql = NULL;
    if (n == 0) {
        pt_wh_set_error(wh, "no tables to unite");
        return PT_EINVAL;
    }
    for (i = 0; i < n; i++)
        if (cats[i]->nschemas != 1 || cats[i]->schemas[0].ntables != 1) {
            pt_wh_set_error(wh, "each catalog must hold exactly one table");
            return PT_EINVAL;
        }
    for (i = 0; rc == 0 && i < n; i++) {
        const pt_wh_table_info *t = &cats[i]->schemas[0].tables[0];
        for (j = 0; rc == 0 && j < t->nfields; j++) {
            for (k = 0; k < ncols; k++)
                if ((nocase ? strcasecmp(cols[k]->name, t->fields[j].name)
                            : strcmp(cols[k]->name, t->fields[j].name)) == 0)
                    break;
            if (k < ncols) {
                if (strcmp(cols[k]->type, t->fields[j].type) != 0)
                    cast[k] = 1;
                continue;
            }
            if (grow((void **)&cols, ncols, sizeof *cols) != 0 ||
                grow((void **)&cast, ncols, sizeof *cast) != 0) {
                rc = PT_ENOMEM;
                break;
            }
            cols[ncols] = &t->fields[j];
            cast[ncols++] = 0;
        }
    }
    pt_buf_init(&b, 0);
    for (i = 0; rc == 0 && i < n; i++) {
        if (i > 0)
            rc = pt_buf_puts(&b, " UNION ALL ");
        if (rc == 0)
            rc = union_select(&b, &cats[i]->schemas[0], labels != NULL ? labels[i] : NULL, cols,
                              cast, ncols, nocase);
    }
    if (rc == 0)
        *sql = pt_buf_steal(&b, NULL);
    if (rc == 0 && *sql == NULL)
        rc = PT_ENOMEM;
    if (rc != 0)
        nomem(wh);
    pt_buf_free(&b);
    free(cols);
    free(cast);
    return rc;
}
