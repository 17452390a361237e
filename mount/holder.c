/* holder: the tracker's holder (holder.h).
 *
 * The note is three lines, the mount point last and raw (it may hold any byte but NUL):
 *     pid 1234
 *     mount 57 0:48
 *     mountpoint /home/u/twin
 */
#include "holder.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mountinfo.h"
#include "twin/deadline.h"
#include "twin/tracker_holder.h"

int holder_record(const char *tracker, const struct mount_ref *mref, const char *mountpoint)
{
    char note[PATH_MAX + 128];
    int n =
        snprintf(note, sizeof(note), "pid %ld\nmount %" PRIu64 " %u:%u\nmountpoint %s\n",
                 (long)getpid(), mref->short_id, major(mref->dev), minor(mref->dev), mountpoint);

    if (n < 0 || (size_t)n >= sizeof(note))
        return -ENAMETOOLONG;
    return tracker_holder_write(tracker, note);
}

int holder_read(const char *tracker, struct holder *ret)
{
    char note[TRACKER_HOLDER_MAX + 1];
    long pid;
    size_t len;
    int at = 0;
    ssize_t r;

    memset(ret, 0, sizeof(*ret));
    r = tracker_holder_read(tracker, note, sizeof(note));
    if (r < 0)
        return (int)r;
    if (sscanf(note, "pid %ld\nmount %" SCNu64 " %u:%u\nmountpoint %n", &pid, &ret->mnt_id,
               &ret->dev_major, &ret->dev_minor, &at) != 4 ||
        !at || pid <= 0 || note[at] != '/')
        return -EINVAL;
    len = strlen(note + at);
    if (len > 0 && note[at + len - 1] == '\n')
        len--;
    if (len >= sizeof(ret->mountpoint))
        return -EINVAL;
    memcpy(ret->mountpoint, note + at, len);
    ret->mountpoint[len] = '\0';
    ret->pid = (pid_t)pid;
    return 0;
}

bool holder_is_mounted(const struct holder *h)
{
    return h->pid > 0 && mountinfo_has_fuse(h->mnt_id, h->dev_major, h->dev_minor, h->mountpoint);
}

bool holder_is_running(const struct holder *h)
{
    return h->pid > 0 && (kill(h->pid, 0) == 0 || errno == EPERM);
}

int holder_wait(const char *tracker, int (*attempt)(void *), void *arg, struct holder *h)
{
    const struct timespec pause = {.tv_nsec = HOLDER_POLL_MS * 1000000L};
    double give_up = monotonic_now_s() + HOLDER_WAIT_S;
    bool told = false;

    memset(h, 0, sizeof(*h));
    for (;;) {
        int r = attempt(arg);
        if (r != -EBUSY)
            return r;
        (void)holder_read(tracker, h);
        if (holder_is_mounted(h) || monotonic_now_s() >= give_up)
            return r;
        if (!told)
            log_msg(LOG_INFO, "tracker=%s: in use; waiting up to %d s for its holder to exit",
                    tracker, HOLDER_WAIT_S);
        told = true;
        nanosleep(&pause, NULL);
    }
}
