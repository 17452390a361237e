/* fs_log: see fs_log.h. */
#include "fs_log.h"

#include <stdarg.h>
#include <stdio.h>

void fs_log(twinfs_log_fn log, int prio, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!log)
        return;
    va_start(ap, fmt);
    /* clang 14's analyzer misses the va_start just above. */
    vsnprintf(msg, sizeof(msg), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    log(prio, msg);
}
