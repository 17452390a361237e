/* privilege: see privilege.h. */
#include "privilege.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#define FUSE_DEVICE "/dev/fuse"

bool privilege_may_mount(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    if (syscall(SYS_capget, &hdr, data) < 0)
        return geteuid() == 0;
    return data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN);
}

int privilege_check_user_mount(const char *mountpoint, char *err, size_t errlen)
{
    struct stat st;

    /* access(2) checks the real ids, as fusermount3 does for the user who ran it. */
    if (access(FUSE_DEVICE, R_OK | W_OK) < 0) {
        int r = -errno;
        snprintf(err, errlen,
                 "%s: %s: this user may not use FUSE (the administrator can allow it: mode 0666, "
                 "as Debian ships it)",
                 FUSE_DEVICE, strerror(-r));
        return r;
    }
    if (access(mountpoint, W_OK) < 0) {
        snprintf(err, errlen,
                 "%s: mountpoint: not writable by uid %u: fusermount3 mounts a user's twinfs "
                 "only on a directory they may write (make one in your home: mkdir ~/twin)",
                 mountpoint, (unsigned)getuid());
        return -EACCES;
    }
    if (stat(mountpoint, &st) == 0 && (st.st_mode & S_ISVTX) && st.st_uid != getuid()) {
        snprintf(err, errlen,
                 "%s: mountpoint: a sticky directory owned by uid %u, not by uid %u: "
                 "fusermount3 mounts a user's twinfs only on their own",
                 mountpoint, (unsigned)st.st_uid, (unsigned)getuid());
        return -EPERM;
    }
    return 0;
}
