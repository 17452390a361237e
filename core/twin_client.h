/* twin_client: the twin's request/answer calls over libcurl (not the stream, not T2).
 *
 * One client holds the base URL, the bearer token and TLS settings, and one reusable
 * connection (calls are serialized by a lock; each call has a bounded total time). TLS peers are
 * verified unless the URL is plain http. The token is never logged. */
#pragma once
#include <stddef.h>
#include <jansson.h>

struct twin_client;

struct twin_client_config {
    const char *url;     /* base URL, e.g. http://127.0.0.1:8765 (no trailing /v1) */
    const char *token;   /* bearer token, or NULL */
    const char *ca_file; /* CA bundle to verify the twin with, or NULL for the system's */
    long timeout_ms;     /* total time of one call; 0 means 30000 */
};

/* Checks the URL (http or https, a host) and copies the config. Returns 0, -EINVAL for a bad
 * URL, -ENOMEM. No connection is made. */
int twin_client_new(const struct twin_client_config *cfg, struct twin_client **ret);
void twin_client_free(struct twin_client *c);

/* GET /v1/assets. *ret is the parsed answer ({"head":N,"assets":[...]}), caller decrefs.
 * Returns 0, or the errno of the failure's twin_error (twin_error_from_transfer, by status
 * alone): -EHOSTUNREACH (cannot connect), -ECONNRESET (dropped before the answer ended),
 * -EKEYREJECTED (certificate not verified), -EPERM (401), -ETIMEDOUT, -EPROTO (not a twin's
 * answer, a 404 included). */
int twin_client_get_assets(struct twin_client *c, json_t **ret);

/* GET /v1/schemas/{name}/{version}. Same errors, but a 404 is -ENOENT (no such schema), and a
 * text longer than SCHEMA_MAX_TEXT_BYTES is -EFBIG, read no further than that. Matches
 * schema_fetch_fn with the client as userdata (see twin_client_schema_fetch). */
int twin_client_get_schema(struct twin_client *c, const char *name, int version, char **ret_text,
                           size_t *ret_len);
int twin_client_schema_fetch(void *client, const char *name, int version, char **ret_text,
                             size_t *ret_len);

/* For the stream and T2 modules: a new easy handle set up for base URL + path (path starts
 * with "/v1/"), with the token header, TLS options and common defaults. The caller adds its own
 * callbacks and frees it with curl_easy_cleanup; *ret_headers with curl_slist_free_all. */
struct curl_slist;
void *twin_client_new_handle(struct twin_client *c, const char *path,
                             struct curl_slist **ret_headers);

/* The base URL as given (for status). */
const char *twin_client_url(const struct twin_client *c);
