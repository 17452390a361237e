/* twin_client: one libcurl easy handle, reused under a mutex so calls share one connection,
 * plus a factory of easy handles set up the same way for the stream and T2 threads. Failures
 * become errnos through twin_error_from_transfer, like the stream's and T2's. */
#include "twin_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_cache.h"
#include "twin_transfer.h"

/* Bounds on what the twin may send us in one answer (the asset list is the biggest). */
#define MAX_ANSWER_BYTES   ((size_t)256 * 1024 * 1024)
#define CONNECT_TIMEOUT_MS 10000L

struct twin_client {
    char *url; /* without a trailing '/' */
    char *auth_header;
    char *ca_file;
    long timeout_ms;
    pthread_mutex_t lock;
    CURL *easy;
    struct curl_slist *headers;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* http or https, a host, no query, fragment or credentials: anything else is a typo, and
 * a URL with credentials would put a secret where it gets logged. */
static int check_url(const char *url)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL, *part = NULL;
    int r = -EINVAL;

    if (!url || !*url || has_ctl(url))
        return -EINVAL;
    u = curl_url();
    if (!u)
        return -ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
        goto out;
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        goto out;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        goto out;
    if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK)
        goto out;
    /* curl adds a scheme to a bare host; we want it written out. */
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        goto out;
    r = 0;
out:
    curl_free(part);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return r;
}

int twin_client_new(const struct twin_client_config *cfg, struct twin_client **ret)
{
    struct twin_client *c;
    int r;

    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return -ENOMEM;
    if (!cfg)
        return -EINVAL;
    r = check_url(cfg->url);
    if (r < 0)
        return r;
    if (cfg->token && (has_ctl(cfg->token) || !*cfg->token))
        return -EINVAL;

    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->url = strdup(cfg->url);
    if (!c->url)
        goto fail;
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    if (cfg->token) {
        size_t len = strlen(cfg->token) + sizeof("Authorization: Bearer ");
        c->auth_header = malloc(len);
        if (!c->auth_header)
            goto fail;
        snprintf(c->auth_header, len, "Authorization: Bearer %s", cfg->token);
    }
    if (cfg->ca_file) {
        c->ca_file = strdup(cfg->ca_file);
        if (!c->ca_file)
            goto fail;
    }
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    pthread_mutex_init(&c->lock, NULL);
    *ret = c;
    return 0;

fail:
    free(c->ca_file);
    free(c->auth_header);
    free(c->url);
    free(c);
    return -ENOMEM;
}

void twin_client_free(struct twin_client *c)
{
    if (!c)
        return;
    if (c->easy)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    pthread_mutex_destroy(&c->lock);
    if (c->auth_header) {
        /* The token should not linger in freed memory. */
        memset(c->auth_header, 0, strlen(c->auth_header));
        free(c->auth_header);
    }
    free(c->ca_file);
    free(c->url);
    free(c);
}

const char *twin_client_url(const struct twin_client *c)
{
    return c->url;
}

/* Limits h to http and https. A libcurl before 7.85 does not know the string form and gets
 * the bit mask; one that takes neither cannot be limited, and is not used: -EPROTONOSUPPORT. */
static int restrict_protocols(CURL *h)
{
    if (curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK)
        return 0;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    if (curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) ==
        CURLE_OK)
        return 0;
#pragma GCC diagnostic pop
    return -EPROTONOSUPPORT;
}

/* Sets the options every handle shares; *headers gets the header list to free. */
static int setup_handle(struct twin_client *c, CURL *h, struct curl_slist **headers)
{
    struct curl_slist *list = NULL, *tmp;
    int r = restrict_protocols(h);

    if (r < 0)
        return r;

    if (c->auth_header) {
        list = curl_slist_append(NULL, c->auth_header);
        if (!list)
            return -ENOMEM;
    }
    tmp = curl_slist_append(list, "Accept: application/json, application/x-ndjson, */*");
    if (!tmp) {
        curl_slist_free_all(list);
        return -ENOMEM;
    }
    list = tmp;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    *headers = list;
    return 0;
}

void *twin_client_new_handle(struct twin_client *c, const char *path,
                             struct curl_slist **ret_headers)
{
    CURL *h;
    char *url;
    size_t len;

    if (!path || strncmp(path, "/v1/", 4) != 0)
        return NULL;
    h = curl_easy_init();
    if (!h)
        return NULL;
    len = strlen(c->url) + strlen(path) + 1;
    url = malloc(len);
    if (!url)
        goto fail;
    snprintf(url, len, "%s%s", c->url, path);
    /* curl copies the URL string. */
    CURLcode rc = curl_easy_setopt(h, CURLOPT_URL, url);
    free(url);
    if (rc != CURLE_OK)
        goto fail;
    if (setup_handle(c, h, ret_headers) < 0)
        goto fail;
    return h;

fail:
    curl_easy_cleanup(h);
    return NULL;
}

struct answer {
    char *data;
    size_t len, cap;
    size_t max; /* the most bytes kept; past it the transfer stops */
    bool too_big;
};

static size_t answer_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct answer *a = userdata;
    size_t n = size * nmemb;
    if (n > a->max - a->len) {
        a->too_big = true;
        return 0;
    }
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->len + n + 1)
            cap *= 2;
        char *p = realloc(a->data, cap);
        if (!p)
            return 0;
        a->data = p;
        a->cap = cap;
    }
    memcpy(a->data + a->len, ptr, n);
    a->len += n;
    a->data[a->len] = '\0';
    return n;
}

/* GET base+path on the shared handle, reading at most max bytes of answer (-EFBIG past them).
 * On 0, *ret_body is NUL-terminated (caller frees). *ret_status is the answer's HTTP status (0
 * if none came), also on failure. */
static int client_get(struct twin_client *c, const char *path, size_t max, char **ret_body,
                      size_t *ret_len, long *ret_status)
{
    struct answer a = {.max = max};
    char *url;
    size_t len = strlen(c->url) + strlen(path) + 1;
    long status = 0;
    int r;

    *ret_status = 0;
    url = malloc(len);
    if (!url)
        return -ENOMEM;
    snprintf(url, len, "%s%s", c->url, path);

    pthread_mutex_lock(&c->lock);
    if (!c->easy) {
        c->easy = curl_easy_init();
        if (!c->easy) {
            r = -ENOMEM;
            goto out_unlock;
        }
        r = setup_handle(c, c->easy, &c->headers);
        if (r < 0) {
            curl_easy_cleanup(c->easy);
            c->easy = NULL;
            goto out_unlock;
        }
    }
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, answer_write);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &a);
    CURLcode rc = curl_easy_perform(c->easy);
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    /* Nothing of this call's stack may stay reachable from the shared handle. */
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, NULL);
    *ret_status = status;
    /* The GET calls classify by status alone: their error bodies carry nothing T2's do. */
    r = a.too_big ? -EFBIG : -twin_error_errno(twin_error_from_transfer(rc, status, NULL, NULL));
out_unlock:
    pthread_mutex_unlock(&c->lock);
    free(url);
    if (r < 0) {
        free(a.data);
        return r;
    }
    if (!a.data) {
        a.data = strdup("");
        if (!a.data)
            return -ENOMEM;
    }
    *ret_body = a.data;
    *ret_len = a.len;
    return 0;
}

int twin_client_get_assets(struct twin_client *c, json_t **ret)
{
    char *body;
    size_t len;
    json_t *root, *head, *assets;
    long status;
    int r = client_get(c, "/v1/assets", MAX_ANSWER_BYTES, &body, &len, &status);
    if (r < 0)
        return r == -EFBIG ? -EPROTO : r; /* no twin's snapshot is that large */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    free(body);
    if (!root)
        return -EPROTO;
    head = json_object_get(root, "head");
    assets = json_object_get(root, "assets");
    if (!json_is_integer(head) || json_integer_value(head) < 0 || !json_is_array(assets)) {
        json_decref(root);
        return -EPROTO;
    }
    *ret = root;
    return 0;
}

int twin_client_get_schema(struct twin_client *c, const char *name, int version, char **ret_text,
                           size_t *ret_len)
{
    char path[1024];
    char *body;
    size_t len;
    int r;

    if (!name || !*name || version < 0)
        return -EINVAL;
    char *esc = curl_easy_escape(NULL, name, 0);
    if (!esc)
        return -ENOMEM;
    int n = snprintf(path, sizeof(path), "/v1/schemas/%s/%d", esc, version);
    curl_free(esc);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -EINVAL;
    long status;
    r = client_get(c, path, SCHEMA_MAX_TEXT_BYTES, &body, &len, &status);
    if (r < 0)
        return status == 404 ? -ENOENT : r; /* this endpoint's 404: no such schema */
    *ret_text = body;
    *ret_len = len;
    return 0;
}

int twin_client_schema_fetch(void *client, const char *name, int version, char **ret_text,
                             size_t *ret_len)
{
    return twin_client_get_schema(client, name, version, ret_text, ret_len);
}
