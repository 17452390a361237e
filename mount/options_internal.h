/* options_internal: what the files of the option parser share (options.c, config.c, token.c,
 * twin_url.c, finish.c). Not for the daemon: it uses options.h. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "options.h"

/* Formats the one-line message into err (control characters become '?', since values come from
 * argv and files) and returns r, so callers can `return options_fail(...)`. err may be NULL. */
int options_fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads the regular file at path, at most max bytes, into a malloc'd NUL-terminated *ret (its
 * length in *ret_len, its stat in *ret_st if not NULL). Returns 0, -EFBIG past max, -EISDIR, or
 * -errno; the buffer of a failed read is wiped, since it may hold a token. */
int options_read_file(const char *path, size_t max, char **ret, size_t *ret_len,
                      struct stat *ret_st);

/* Reads the token from o->token_file, else $TWINFS_TOKEN (whose value in the environment block
 * is wiped), into o->token; no token is fine. Returns 0, -EINVAL or -errno with err set. */
int options_read_token(struct mount_options *o, char *err, size_t errlen);

/* True when a request to url crosses the network in clear: plain http to a host that is not the
 * loopback (a proxy from http_proxy or all_proxy, which libcurl honours, would read it too). */
bool options_url_is_clear_remote(const char *url);
