/*
 * The daemon's API from the CLI (daemon_client.h): libcurl over the Unix
 * socket, one easy handle per request.
 */
#include <curl/curl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "cli.h"
#include "daemon_client.h"

#define REPLY_MAX (256u << 20) /* a reply past this is refused */

struct buf {
    char *p;
    size_t n;
    int over;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ctx)
{
    struct buf *b = ctx;
    size_t len = size * nmemb;
    char *p;

    if (b->n + len > REPLY_MAX || (p = realloc(b->p, b->n + len + 1)) == NULL) {
        b->over = 1;
        return 0;
    }
    memcpy(p + b->n, ptr, len);
    b->p = p;
    b->n += len;
    b->p[b->n] = '\0';
    return len;
}

static int sock_path(const ds_config_t *cfg, char *buf, size_t len)
{
    return (size_t)snprintf(buf, len, "%s/distsync.sock", cfg->state) < len &&
                   strlen(buf) < sizeof(((struct sockaddr_un *)0)->sun_path)
               ? 0
               : -1;
}

/* The request; quiet: no message when nobody answers. */
static long call(const ds_config_t *cfg, const char *method, const char *path, const char *body,
                 json_t **out, char **raw, int quiet)
{
    char sock[PATH_MAX], url[2048], errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = NULL;
    struct buf b = {0};
    long status = 0;
    CURL *h = NULL;
    CURLcode cc;

    *out = NULL;
    if (sock_path(cfg, sock, sizeof(sock)) < 0 || (h = curl_easy_init()) == NULL)
        goto out;
    snprintf(url, sizeof(url), "http://localhost%s", path);
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body != NULL) {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        if (!quiet)
            cli_err("daemon at %s: %s", cli_esc(sock),
                    b.over      ? "reply too large"
                    : errbuf[0] ? errbuf
                                : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (b.p != NULL)
        *out = json_loadb(b.p, b.n, 0, NULL);
    if (raw != NULL) {
        *raw = b.p ? b.p : strdup("");
        b.p = NULL;
    }
out:
    curl_slist_free_all(hdr);
    if (h != NULL)
        curl_easy_cleanup(h);
    free(b.p);
    return status;
}

int cli_daemon_up(const ds_config_t *cfg)
{
    char sock[PATH_MAX];
    json_t *r = NULL;
    struct stat st;
    long status;

    if (sock_path(cfg, sock, sizeof(sock)) < 0 || stat(sock, &st) < 0 || !S_ISSOCK(st.st_mode))
        return 0;
    status = call(cfg, "GET", "/v1/runs?live=1", NULL, &r, NULL, 1);
    json_decref(r);
    return status == 200;
}

long cli_daemon_call(const ds_config_t *cfg, const char *method, const char *path, const char *body,
                     json_t **out)
{
    return call(cfg, method, path, body, out, NULL, 0);
}

long cli_daemon_get_raw(const ds_config_t *cfg, const char *path, json_t **out, char **raw)
{
    *raw = NULL;
    return call(cfg, "GET", path, NULL, out, raw, 0);
}

const char *cli_daemon_error(const json_t *reply, long status)
{
    static char buf[64];
    const char *e = json_string_value(json_object_get(reply, "error"));

    if (e != NULL)
        return e;
    snprintf(buf, sizeof(buf), "the daemon answered HTTP %ld", status);
    return buf;
}

char *cli_daemon_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *out = e ? strdup(e) : NULL;

    curl_free(e);
    return out;
}
