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

#include "options_internal.h"

/* The pieces of a twin URL that name the tracker file. */
struct url_parts {
    char host[256];
    unsigned port;
};

static int parse_url(const char *url, struct url_parts *ret, char *err, size_t errlen)
{
    const char *p, *auth_end, *host_end, *port_start = NULL;
    size_t host_len;

    if (strlen(url) > MOUNT_MAX_URL_BYTES)
        return options_fail(err, errlen, -EINVAL, "URL is longer than %d bytes",
                            MOUNT_MAX_URL_BYTES);
    for (p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return options_fail(err, errlen, -EINVAL, "%s: bad URL: a space or control character",
                                url);
    }
    if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
        ret->port = 80;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        p = url + 8;
        ret->port = 443;
    } else {
        return options_fail(err, errlen, -EINVAL,
                            "%s: bad URL: must start with http:// or https://", url);
    }
    auth_end = p + strcspn(p, "/?#");
    if (*auth_end == '?' || *auth_end == '#' || strpbrk(auth_end, "?#"))
        return options_fail(err, errlen, -EINVAL,
                            "%s: bad URL: a twin URL has no query or fragment", url);
    if (memchr(p, '@', (size_t)(auth_end - p)))
        return options_fail(err, errlen, -EINVAL,
                            "%s: bad URL: no user:password@ in the URL (use token_file=)", url);
    if (*p == '[') {
        host_end = memchr(p, ']', (size_t)(auth_end - p));
        if (!host_end)
            return options_fail(err, errlen, -EINVAL, "%s: bad URL: unclosed [", url);
        host_end++;
        if (host_end < auth_end) {
            if (*host_end != ':')
                return options_fail(err, errlen, -EINVAL, "%s: bad URL: junk after ]", url);
            port_start = host_end + 1;
        }
    } else {
        host_end = memchr(p, ':', (size_t)(auth_end - p));
        if (host_end)
            port_start = host_end + 1;
        else
            host_end = auth_end;
        for (const char *c = p; c < host_end; c++) {
            if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_')
                return options_fail(err, errlen, -EINVAL, "%s: bad URL: bad character in host",
                                    url);
        }
    }
    host_len = (size_t)(host_end - p);
    if (host_len == 0)
        return options_fail(err, errlen, -EINVAL, "%s: bad URL: no host", url);
    if (host_len >= sizeof(ret->host))
        return options_fail(err, errlen, -EINVAL, "%s: bad URL: host name too long", url);
    memcpy(ret->host, p, host_len);
    ret->host[host_len] = '\0';
    if (port_start) {
        unsigned long v = 0;
        const char *c;

        if (port_start == auth_end)
            return options_fail(err, errlen, -EINVAL, "%s: bad URL: empty port", url);
        for (c = port_start; c < auth_end; c++) {
            if (!isdigit((unsigned char)*c) || v > 65535)
                return options_fail(err, errlen, -EINVAL, "%s: bad URL: bad port", url);
            v = v * 10 + (unsigned long)(*c - '0');
        }
        if (v < 1 || v > 65535)
            return options_fail(err, errlen, -EINVAL, "%s: bad URL: port must be 1-65535", url);
        ret->port = (unsigned)v;
    }
    return 0;
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
    uint64_t hash = 0xcbf29ce484222325ull; /* FNV-1a: stable across builds and machines */
    char base[PATH_MAX], *path;
    int n;

    if (parse_url(url, &parts, NULL, 0) < 0)
        return NULL;
    for (const char *c = url; *c; c++) {
        hash ^= (unsigned char)*c;
        hash *= 0x100000001b3ull;
    }
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
