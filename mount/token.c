/* token: the bearer token, from token_file or $TWINFS_TOKEN; see options.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "options_internal.h"

/* A bearer token goes into an HTTP header: printable ASCII, no spaces. */
static bool token_ok(const char *t)
{
    if (t[0] == '\0')
        return false;
    for (; *t; t++) {
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
            return false;
    }
    return true;
}

int options_read_token(struct mount_options *o, char *err, size_t errlen)
{
    struct stat st = {0};
    char *buf = NULL, *env;
    size_t len = 0;
    int r;

    if (o->token_file) {
        r = options_read_file(o->token_file, MOUNT_MAX_TOKEN_BYTES, &buf, &len, &st);
        if (r == -EFBIG)
            return options_fail(err, errlen, -EINVAL, "token_file=%s: longer than %d bytes",
                                o->token_file, MOUNT_MAX_TOKEN_BYTES);
        if (r < 0)
            return options_fail(err, errlen, r, "token_file=%s: %s", o->token_file, strerror(-r));
        o->token_file_shared = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
        /* One trailing newline (or CRLF, or blanks) is how editors save a one-line file. */
        while (len > 0 && isspace((unsigned char)buf[len - 1]))
            buf[--len] = '\0';
        if (len == 0) {
            free(buf);
            return options_fail(err, errlen, -EINVAL, "token_file=%s: empty", o->token_file);
        }
        if (!token_ok(buf)) {
            explicit_bzero(buf, len);
            free(buf);
            return options_fail(err, errlen, -EINVAL,
                                "token_file=%s: the token has a space or control character",
                                o->token_file);
        }
        o->token = buf;
        return 0;
    }

    env = getenv("TWINFS_TOKEN");
    if (!env || env[0] == '\0')
        return 0;
    if (!token_ok(env))
        return options_fail(err, errlen, -EINVAL,
                            "TWINFS_TOKEN: the token has a space or control "
                            "character");
    o->token = strdup(env);
    if (!o->token)
        return options_fail(err, errlen, -ENOMEM, "TWINFS_TOKEN: out of memory");
    /* Wipe the value where it sits, so /proc/PID/environ and `ps e` no longer show it. */
    explicit_bzero(env, strlen(env));
    unsetenv("TWINFS_TOKEN");
    return 0;
}
