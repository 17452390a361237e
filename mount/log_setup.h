/* log_setup: where the daemon's log goes, chosen before the fork so that the caller hears of it
 * on stderr: logfile= if given; else stderr in the foreground; else syslog when a syslog daemon
 * listens; else, so that nothing is lost where no syslog runs (a container), the file
 * twinfs.log in the state directory of the default tracker ($XDG_STATE_HOME/twinfs), made
 * private (0700) like the tracker's own, and named on stderr when stderr is a terminal (a
 * script's or cron's stderr is for errors) and in the file's own line. */
#pragma once
#include <stddef.h>

#include "options.h"

/* The fallback's name in the state directory. */
#define LOG_SETUP_FALLBACK_NAME "twinfs.log"

/* Opens the log file (logfile= or the fallback) with log_to_file, printing the fallback's line
 * on stderr. Returns 0, or -errno with err naming logfile= and the cause; a fallback that
 * cannot be made is a warning on stderr, not an error. */
int log_setup(const struct mount_options *o, char *err, size_t errlen);
