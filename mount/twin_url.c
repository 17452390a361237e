/* twin_url: the twin's URL, its check and the default tracker path named after it; see
 * options.h. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "options_internal.h"
#include "twin/hash.h"

/* A twin URL as libcurl, which connects to it, reads it: the host (an IPv6 address in
 * brackets) and the port, the scheme's when the URL gives none. */
struct url_parts {
    char host[256];
    unsigned port;
};

/* The rules on the URL's text that curl's parser does not apply: a bounded length, printable
 * ASCII without spaces, the scheme written out, no query or fragment (a '?' or '#' anywhere is
 * one, even an empty one), and neither the host nor the port left empty (curl takes
 * "http:///h" as host h and "http://h:" as the scheme's port). */
static int check_text(const char *url, char *err, size_t errlen)
{
    const char *auth;
    size_t auth_len;

    if (strlen(url) > MOUNT_MAX_URL_BYTES)
        return options_fail(err, errlen, -EINVAL, "URL is longer than %d bytes",
                            MOUNT_MAX_URL_BYTES);
    for (const char *c = url; *c; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return options_fail(err, errlen, -EINVAL, "%s: bad URL: a space or control character",
                                url);
    }
    if (strncasecmp(url, "http://", 7) == 0)
        auth = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        auth = url + 8;
    else
        return options_fail(err, errlen, -EINVAL,
                            "%s: bad URL: must start with http:// or https://", url);
    if (strpbrk(url, "?#"))
        return options_fail(err, errlen, -EINVAL,
                            "%s: bad URL: a twin URL has no query or fragment", url);
    auth_len = strcspn(auth, "/");
    if (auth_len == 0)
        return options_fail(err, errlen, -EINVAL, "%s: bad URL: no host", url);
    if (auth[auth_len - 1] == ':')
        return options_fail(err, errlen, -EINVAL, "%s: bad URL: empty port", url);
    return 0;
}

/* The message for a URL that curl refuses. */
static int parse_error(CURLUcode rc, const char *url, char *err, size_t errlen)
{
    switch (rc) {
    case CURLUE_OUT_OF_MEMORY:
        return options_fail(err, errlen, -ENOMEM, "%s: out of memory", url);
    case CURLUE_NO_HOST:
        return options_fail(err, errlen, -EINVAL, "%s: bad URL: no host", url);
    case CURLUE_BAD_PORT_NUMBER:
        return options_fail(err, errlen, -EINVAL, "%s: bad URL: bad port: the port must be 1-65535",
                            url);
    case CURLUE_BAD_IPV6:
        return options_fail(err, errlen, -EINVAL,
                            "%s: bad URL: unclosed [ or not an IPv6 address in [...]", url);
    case CURLUE_BAD_HOSTNAME:
        return options_fail(err, errlen, -EINVAL, "%s: bad URL: bad character in host", url);
    default:
        return options_fail(err, errlen, -EINVAL, "%s: bad URL: %s", url, curl_url_strerror(rc));
    }
}

/* A host name is letters, digits, '.', '-' and '_'; curl checked an IPv6 address already. */
static bool host_name_ok(const char *host)
{
    if (host[0] == '[')
        return true;
    for (const char *c = host; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_')
            return false;
    }
    return true;
}

/* Takes the host and the port out of the parsed u, and refuses credentials in the URL. */
static int take_parts(CURLU *u, const char *url, struct url_parts *ret, char *err, size_t errlen)
{
    char *part = NULL;
    unsigned long port;
    int r = 0;

    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK) {
        curl_free(part);
        return options_fail(err, errlen, -EINVAL,
                            "%s: bad URL: no user:password@ in the URL (use token_file=)", url);
    }
    if (curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK || part[0] == '\0')
        r = options_fail(err, errlen, -EINVAL, "%s: bad URL: no host", url);
    else if (!host_name_ok(part))
        r = options_fail(err, errlen, -EINVAL, "%s: bad URL: bad character in host", url);
    else if (strlen(part) >= sizeof(ret->host))
        r = options_fail(err, errlen, -EINVAL, "%s: bad URL: host name too long", url);
    else
        snprintf(ret->host, sizeof(ret->host), "%s", part);
    curl_free(part);
    part = NULL;
    if (r < 0)
        return r;
    if (curl_url_get(u, CURLUPART_PORT, &part, CURLU_DEFAULT_PORT) != CURLUE_OK)
        return options_fail(err, errlen, -EINVAL, "%s: bad URL: bad port", url);
    port = strtoul(part, NULL, 10);
    curl_free(part);
    if (port < 1 || port > 65535)
        return parse_error(CURLUE_BAD_PORT_NUMBER, url, err, errlen);
    ret->port = (unsigned)port;
    return 0;
}

/* The one parser of a twin URL: the text rules above, then libcurl's parser. */
static int parse_url(const char *url, struct url_parts *ret, char *err, size_t errlen)
{
    CURLUcode rc;
    CURLU *u;
    int r = check_text(url, err, errlen);

    if (r < 0)
        return r;
    u = curl_url();
    if (!u)
        return options_fail(err, errlen, -ENOMEM, "%s: out of memory", url);
    rc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (rc != CURLUE_OK)
        r = parse_error(rc, url, err, errlen);
    else
        r = take_parts(u, url, ret, err, errlen);
    curl_url_cleanup(u);
    return r;
}

/* True for a host that names this machine's loopback: localhost, 127.0.0.0/8, [::1]. */
static bool host_is_loopback(const char *host)
{
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    if (strncmp(host, "127.", 4) != 0)
        return false;
    for (const char *c = host + 4; *c; c++) {
        if (!isdigit((unsigned char)*c) && *c != '.')
            return false;
    }
    return true;
}

bool options_url_is_clear_remote(const char *url)
{
    struct url_parts parts = {0};

    if (strncasecmp(url, "http://", 7) != 0 || parse_url(url, &parts, NULL, 0) < 0)
        return false;
    return !host_is_loopback(parts.host);
}

int mount_check_url(const char *url, char *err, size_t errlen)
{
    struct url_parts parts;

    return parse_url(url, &parts, err, errlen);
}

char *mount_default_tracker_path(const char *url)
{
    struct url_parts parts = {0};
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    uint64_t hash = twin_fnv1a(TWIN_FNV1A_INIT, url, strlen(url)); /* stable everywhere */
    char base[PATH_MAX], *path;
    int n;

    if (parse_url(url, &parts, NULL, 0) < 0)
        return NULL;
    /* IPv6 brackets and colons do not belong in a file name. */
    for (char *c = parts.host; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-')
            *c = '_';
    }
    /* The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored. */
    if (state && state[0] == '/')
        n = snprintf(base, sizeof(base), "%s/twinfs", state);
    else if (home && home[0] == '/')
        n = snprintf(base, sizeof(base), "%s/.local/state/twinfs", home);
    else
        return NULL;
    if (n < 0 || (size_t)n >= sizeof(base))
        return NULL;
    if (asprintf(&path, "%s/%s-%u-%016llx.journal", base, parts.host, parts.port,
                 (unsigned long long)hash) < 0)
        return NULL;
    return path;
}
