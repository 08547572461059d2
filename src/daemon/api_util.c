/*
 * The API's small pieces: JSON replies written through the JSON writer
 * into memory, error replies, query strings and path segments.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"

int ds__api_begin(struct api_out *o)
{
    o->buf = NULL;
    o->len = 0;
    o->f = open_memstream(&o->buf, &o->len);
    if (o->f == NULL)
        return DS_ENOMEM;
    ds_json_init(&o->j, o->f);
    return 0;
}

void ds__api_end(struct api_out *o, struct api_res *rs, int status)
{
    ds_json_end(&o->j);
    if (fclose(o->f) != 0 || o->buf == NULL) {
        free(o->buf);
        ds__api_error(rs, 500, "out of memory");
        return;
    }
    free(rs->body);
    rs->status = status;
    rs->body = o->buf;
    rs->len = o->len;
}

void ds__api_error(struct api_res *rs, int status, const char *fmt, ...)
{
    static char oom[] = "{\"error\":\"out of memory\"}\n";
    struct api_out o;
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    free(rs->body);
    rs->body = NULL;
    if (ds__api_begin(&o) < 0)
        goto oom;
    ds_json_obj_begin(&o.j);
    ds_json_kstr(&o.j, "error", msg);
    ds_json_obj_end(&o.j);
    ds_json_end(&o.j);
    if (fclose(o.f) != 0 || o.buf == NULL) {
        free(o.buf);
        goto oom;
    }
    rs->status = status;
    rs->body = o.buf;
    rs->len = o.len;
    return;
oom:
    rs->status = 500;
    rs->body = strdup(oom);
    rs->len = rs->body ? strlen(oom) : 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int ds__api_decode(const char *s, size_t n, int plus, char *buf, size_t len)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];

        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = i + 2 < n ? hexval(s[i + 2]) : -1;

            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == '\0' || k + 1 >= len)
            return -1;
        buf[k++] = (char)c;
    }
    buf[k] = '\0';
    return 0;
}

int ds__api_query(const char *path, size_t path_len, const char *name, char *buf, size_t len)
{
    const char *q = memchr(path, '?', path_len), *end = path + path_len;
    size_t nl = strlen(name);

    if (q == NULL)
        return 0;
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));

        if ((size_t)((eq ? eq : e) - p) == nl && memcmp(p, name, nl) == 0) {
            if (eq == NULL) {
                if (len == 0)
                    return -1;
                buf[0] = '\0';
                return 1;
            }
            return ds__api_decode(eq + 1, (size_t)(e - eq - 1), 1, buf, len) < 0 ? -1 : 1;
        }
        p = e + 1;
    }
    return 0;
}

/* Parses the body into an object whose keys are all in allowed (an empty
 * body is {}). Returns it, or NULL after replying 400. */
json_t *ds__api_body_object(const struct api_req *rq, const char *const *allowed,
                            struct api_res *rs)
{
    json_error_t e;
    json_t *o;
    const char *key;
    json_t *v;

    if (rq->body_len == 0)
        return json_object();
    o = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &e);
    if (o == NULL) {
        ds__api_error(rs, 400, "the body is not JSON: %s (line %d, column %d)", e.text, e.line,
                      e.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        ds__api_error(rs, 400, "the body must be a JSON object");
        json_decref(o);
        return NULL;
    }
    json_object_foreach(o, key, v)
    {
        size_t i = 0;

        while (allowed[i] != NULL && strcmp(allowed[i], key) != 0)
            i++;
        if (allowed[i] == NULL) {
            ds__api_error(rs, 400, "unknown field '%s'", key);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int ds__api_names(const struct api_req *rq, char *list, size_t len, const char **names, size_t max,
                  size_t *n, struct api_res *rs)
{
    int q = ds__api_query(rq->path, rq->path_len, "servers", list, len);
    char *save = NULL;

    *n = 0;
    if (q < 0) {
        ds__api_error(rs, 400, "servers: expected names separated by commas");
        return -1;
    }
    for (char *t = q == 1 ? strtok_r(list, ",", &save) : NULL; t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (*n == max) {
            ds__api_error(rs, 400, "servers: at most %zu", max);
            return -1;
        }
        names[(*n)++] = t;
    }
    return 0;
}

/* Whether name[0, n) is host (ASCII case ignored). */
static int same_host(const char *name, size_t n, const char *host, size_t hl)
{
    return n == hl && strncasecmp(name, host, n) == 0;
}

int ds__api_host_local(const char *host, size_t len, const char *listen)
{
    static const char *const local[] = {"localhost", "127.0.0.1", "[::1]"};
    const char *lc = listen ? strrchr(listen, ':') : NULL;
    size_t n = len;

    if (len == 0)
        return 1;
    if (host[0] == '[') { /* [::1]:8750 */
        const char *e = memchr(host, ']', len);

        n = e ? (size_t)(e - host) + 1 : len + 1;
    } else {
        const char *c = memchr(host, ':', len);

        n = c ? (size_t)(c - host) : len;
    }
    if (n > len || (n < len && host[n] != ':'))
        return 0;
    for (size_t i = n + 1; i < len; i++)
        if (host[i] < '0' || host[i] > '9')
            return 0;
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (same_host(host, n, local[i], strlen(local[i])))
            return 1;
    return lc != NULL && lc > listen && same_host(host, n, listen, (size_t)(lc - listen));
}
