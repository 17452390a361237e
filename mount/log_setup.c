/* log_setup: see log_setup.h. */
#include "log_setup.h"

#include <errno.h>
#include <limits.h>
#include <syslog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "twin/follower.h"

/* Makes the missing directories of dir (absolute) with mode 0700, as the tracker makes its
 * own; the way was checked by the caller. Returns 0 or -errno. */
static int make_dirs(char *dir)
{
    for (char *p = strchr(dir + 1, '/');; p = strchr(p + 1, '/')) {
        if (p)
            *p = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            int r = -errno;
            if (p)
                *p = '/';
            return r;
        }
        if (!p)
            return 0;
        *p = '/';
    }
}

/* The fallback log's path in the default tracker's directory, its directories made after the
 * tracker's rules were checked on the way (a state directory another user could write is
 * refused, as for the tracker). Returns a malloc'd path, or NULL with why set. */
static char *fallback_path(const struct mount_options *o, char *why, size_t whylen)
{
    char *tracker = mount_default_tracker_path(o->url);
    char *slash, *path = NULL;
    int r;

    if (!tracker) {
        snprintf(why, whylen, "no state directory: set HOME or XDG_STATE_HOME");
        return NULL;
    }
    r = follower_check_tracker(tracker, why, whylen);
    if (r < 0) {
        if (!why[0])
            snprintf(why, whylen, "%s: %s", tracker, strerror(-r));
        goto out;
    }
    slash = strrchr(tracker, '/');
    *slash = '\0';
    r = make_dirs(tracker);
    if (r < 0) {
        snprintf(why, whylen, "%s: %s", tracker, strerror(-r));
        goto out;
    }
    if (asprintf(&path, "%s/%s", tracker, LOG_SETUP_FALLBACK_NAME) < 0) {
        snprintf(why, whylen, "out of memory");
        path = NULL;
    }
out:
    free(tracker);
    return path;
}

/* No logfile=, in the background, no syslog: the fallback, named on stderr. */
static void use_fallback(const struct mount_options *o)
{
    char why[PATH_MAX + 256] = "";
    char *path = fallback_path(o, why, sizeof(why));
    int r;

    if (path) {
        r = log_to_file(path);
        if (r == 0) {
            /* For a person at a terminal; a script or a cron job (which would mail it) gets
             * the note as the log's own line instead. */
            if (isatty(STDERR_FILENO))
                fprintf(stderr,
                        "twinfs: no syslog listens on %s: the log goes to %s "
                        "(choose with -o logfile=FILE)\n",
                        _PATH_LOG, path);
            log_msg(LOG_NOTICE,
                    "no syslog listens on %s: the log goes to this file (choose "
                    "with -o logfile=FILE)",
                    _PATH_LOG);
            free(path);
            return;
        }
        snprintf(why, sizeof(why), "%s: %s", path, log_file_error(r));
        free(path);
    }
    fprintf(stderr,
            "twinfs: warning: no syslog listens on %s and the log cannot go to the state "
            "directory (%s): the log is lost; choose a file with -o logfile=FILE\n",
            _PATH_LOG, why);
}

int log_setup(const struct mount_options *o, char *err, size_t errlen)
{
    int r;

    if (o->logfile) {
        r = log_to_file(o->logfile);
        if (r < 0)
            snprintf(err, errlen, "logfile=%s: %s", o->logfile, log_file_error(r));
        return r;
    }
    if (!o->foreground && !log_syslog_listens())
        use_fallback(o);
    return 0;
}
