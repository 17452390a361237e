/* finish: the checks after parsing, the paths made absolute, the default tracker and the
 * token; see mount_options_finish in options.h. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "options_internal.h"

/* Replaces *slot by its realpath; the file must exist. */
static int make_real(char **slot, const char *key, bool want_dir, char *err, size_t errlen)
{
    struct stat st;
    char *real = realpath(*slot, NULL);

    if (!real)
        return options_fail(err, errlen, -errno, "%s=%s: %s", key, *slot, strerror(errno));
    if (stat(real, &st) < 0) {
        int r = -errno;
        free(real);
        return options_fail(err, errlen, r, "%s=%s: %s", key, *slot, strerror(-r));
    }
    if (want_dir != !!S_ISDIR(st.st_mode)) {
        int r = want_dir ? -ENOTDIR : -EISDIR;
        free(real);
        return options_fail(err, errlen, r, "%s=%s: %s", key, *slot, strerror(-r));
    }
    free(*slot);
    *slot = real;
    return 0;
}

/* Prefixes a relative path with the current directory, since the daemon runs in /. */
static int make_absolute(char **slot, const char *key, char *err, size_t errlen)
{
    char *cwd, *abs;

    if ((*slot)[0] == '/')
        return 0;
    cwd = getcwd(NULL, 0);
    if (!cwd)
        return options_fail(err, errlen, -errno, "%s=%s: current directory: %s", key, *slot,
                            strerror(errno));
    if (asprintf(&abs, "%s/%s", cwd, *slot) < 0) {
        free(cwd);
        return options_fail(err, errlen, -ENOMEM, "%s: out of memory", key);
    }
    free(cwd);
    free(*slot);
    *slot = abs;
    return 0;
}

int mount_options_finish(struct mount_options *o, char *err, size_t errlen)
{
    size_t n;
    int r;

    if (o->show_help || o->show_version)
        return 0;
    if (!o->url)
        return options_fail(err, errlen, -EINVAL,
                            "missing URL (usage: twinfs URL MOUNTPOINT [options])");
    if (!o->mountpoint)
        return options_fail(err, errlen, -EINVAL,
                            "missing MOUNTPOINT (usage: twinfs URL MOUNTPOINT [options])");
    r = mount_check_url(o->url, err, errlen);
    if (r < 0)
        return r;
    /* "http://h:1/" and "http://h:1" are the same twin and must share one tracker. */
    n = strlen(o->url);
    while (n > 0 && o->url[n - 1] == '/')
        o->url[--n] = '\0';

    {
        char *real = realpath(o->mountpoint, NULL);
        struct stat st;

        if (!real)
            return options_fail(err, errlen, -errno, "%s: mountpoint: %s", o->mountpoint,
                                strerror(errno));
        if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
            free(real);
            return options_fail(err, errlen, -ENOTDIR, "%s: mountpoint: %s", o->mountpoint,
                                strerror(ENOTDIR));
        }
        free(o->mountpoint);
        o->mountpoint = real;
    }

    if (o->cacert) {
        r = make_real(&o->cacert, "cacert", false, err, errlen);
        if (r < 0)
            return r;
    }
    if (o->schemas) {
        r = make_real(&o->schemas, "schemas", true, err, errlen);
        if (r < 0)
            return r;
    }
    /* The file need not exist yet: made absolute, not resolved; opened by log_setup. */
    if (o->logfile) {
        r = make_absolute(&o->logfile, "logfile", err, errlen);
        if (r < 0)
            return r;
    }
    if (o->tracker) {
        r = make_absolute(&o->tracker, "tracker", err, errlen);
        if (r < 0)
            return r;
    } else {
        o->tracker = mount_default_tracker_path(o->url);
        if (!o->tracker)
            return options_fail(err, errlen, -EINVAL,
                                "no tracker path: set tracker=FILE, or HOME or XDG_STATE_HOME");
    }
    r = options_read_token(o, err, errlen);
    if (r == 0 && o->token)
        o->token_in_clear = options_url_is_clear_remote(o->url);
    return r;
}
