/* fs_log: the daemon's logging hook, as fs/ calls it. */
#pragma once
#include "session.h"

/* Logs a message through log (printf-style); nothing when log is NULL. */
void fs_log(twinfs_log_fn log, int prio, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
