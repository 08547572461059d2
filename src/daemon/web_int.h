/* The web status page (web.c; its files in web/, compiled in by
 * web/embed.cmake into the generated web_assets.c). */
#ifndef DS_WEB_INT_H
#define DS_WEB_INT_H

#include <stddef.h>

/* One file of the page: served at path with Content-Type type. */
struct ds_web_asset {
    const char *path; /* "/" or "/ui/NAME" */
    const char *type;
    const unsigned char *data; /* static */
    size_t len;
};

extern const struct ds_web_asset ds__web_assets[];
extern const size_t ds__web_nassets;

/* The file of the page at path[0, len) (any query string ignored), or
 * NULL when path is not one of the page's. */
const struct ds_web_asset *ds__web_find(const char *path, size_t len);

struct st_h2o_req_t;

/* Answers req when it asks for one of the page's files: GET or HEAD gets
 * the file with its Content-Type and a Content-Security-Policy that lets
 * it load scripts, styles and API calls from this origin only; another
 * method gets 405. The files hold no data, so no token is needed (every
 * /v1/ call the page makes needs one over TCP). Returns 1 when it
 * answered, 0 when req is not for the page. */
int ds__web_serve(struct st_h2o_req_t *req);

#endif
