/* privilege: whether twinfs mounts by itself or through the setuid fusermount3, and what
 * fusermount3 will refuse, checked before the twin is contacted so that a user who may not
 * mount there gets one clear line instead of fusermount3's and a failed mount. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* Whether this process may call mount(2) itself: CAP_SYS_ADMIN in its effective set. Then
 * libfuse mounts directly; without it libfuse runs fusermount3. */
bool privilege_may_mount(void);

/* Without the capability: the checks fusermount3 makes (libfuse opens /dev/fuse as the user;
 * the mountpoint must be writable by the user and, in a sticky directory, owned by them).
 * Returns 0, or -EACCES / -EPERM with err set to one line naming the file and the rule. */
int privilege_check_user_mount(const char *mountpoint, char *err, size_t errlen);
