/* handler: see handler.h. */
#include "handler.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool handler_exists(int dirfd, const char *name)
{
    struct stat st;

    if (fstatat(dirfd, name, &st, 0) < 0 || !S_ISREG(st.st_mode))
        return false;
    return faccessat(dirfd, name, X_OK, AT_EACCESS) == 0;
}

int handler_for_event(int dirfd, const char *event_name, char *buf, size_t size)
{
    int n = snprintf(buf, size, "do_%s", event_name);

    if (n < 0 || (size_t)n >= size) {
        if (size)
            buf[0] = '\0';
        return -ENAMETOOLONG;
    }
    if (handler_exists(dirfd, buf))
        return 1;
    bool changed = false;
    for (char *p = buf + 3; *p; p++)
        if (*p >= 'A' && *p <= 'Z') {
            *p = (char)(*p - 'A' + 'a');
            changed = true;
        }
    if (changed && handler_exists(dirfd, buf))
        return 1;
    if (size > strlen(HANDLER_UNMATCHED) && handler_exists(dirfd, HANDLER_UNMATCHED)) {
        memcpy(buf, HANDLER_UNMATCHED, sizeof(HANDLER_UNMATCHED));
        return 1;
    }
    buf[0] = '\0';
    return 0;
}
