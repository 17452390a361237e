/* watch: see watch.h. */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"
#include "twin/name.h"

#define SEQ_DIGITS    20
#define EVENTS_MASK   (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)
#define ASSETS_MASK   (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ONLYDIR)
#define HANDLERS_MASK (IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR)

struct watch {
    char *mnt;
    char *handlers;
    char *const *globs;
    int n_globs;
    int ifd;
    int wd_events, wd_assets, wd_handlers;
    char path[PATH_MAX];
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
};

struct watch *watch_new(const char *mnt, const char *handlers, char *const *globs, int n)
{
    struct watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->mnt = strdup(mnt);
    w->handlers = strdup(handlers);
    w->globs = globs;
    w->n_globs = n;
    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->wd_events = w->wd_assets = w->wd_handlers = -1;
    if (!w->mnt || !w->handlers || w->ifd < 0) {
        watch_free(w);
        return NULL;
    }
    return w;
}

void watch_free(struct watch *w)
{
    if (!w)
        return;
    if (w->ifd >= 0)
        close(w->ifd);
    free(w->mnt);
    free(w->handlers);
    free(w);
}

int watch_fd(const struct watch *w)
{
    return w->ifd;
}

bool watch_selects(const struct watch *w, const char *asset)
{
    if (w->n_globs == 0)
        return true;
    for (int i = 0; i < w->n_globs; i++)
        if (fnmatch(w->globs[i], asset, 0) == 0)
            return true;
    return false;
}

static const char *sub(struct watch *w, const char *rel)
{
    snprintf(w->path, sizeof(w->path), "%s/%s", w->mnt, rel);
    return w->path;
}

static int add_watch(struct watch *w, int *wd, const char *path, uint32_t mask)
{
    if (*wd >= 0)
        inotify_rm_watch(w->ifd, *wd);
    *wd = inotify_add_watch(w->ifd, path, mask);
    return *wd < 0 ? -errno : 0;
}

int watch_start(struct watch *w)
{
    int r;

    if (access(sub(w, ".twinfs/status"), F_OK) < 0)
        return -errno;
    r = add_watch(w, &w->wd_events, sub(w, "events"), EVENTS_MASK | IN_ONLYDIR);
    if (r == 0)
        r = add_watch(w, &w->wd_assets, sub(w, "assets"), ASSETS_MASK);
    if (r == 0 && w->wd_handlers < 0)
        r = add_watch(w, &w->wd_handlers, w->handlers, HANDLERS_MASK);
    return r;
}

/* seq from a flat name "<20 digits>-...", or -EINVAL for anything else. */
static int flat_seq(const char *name, uint64_t *ret)
{
    uint64_t v = 0;
    for (int i = 0; i < SEQ_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (name[SEQ_DIGITS] != '-')
        return -EINVAL;
    *ret = v;
    return 0;
}

/* The asset id of the event file MNT/events/name, or -errno. */
static ssize_t event_asset(struct watch *w, const char *name, char *buf, size_t size)
{
    int k = snprintf(w->path, sizeof(w->path), "%s/events/%s", w->mnt, name);
    if (k < 0 || (size_t)k >= sizeof(w->path))
        return -ENAMETOOLONG;
    ssize_t n = lgetxattr(w->path, "user.twin.asset", buf, size);
    return n < 0 ? -errno : n;
}

/* Adds the event file name of MNT/events. 1 if it is (or was) queued, 0 when it is gone, not
 * an event or not selected, -errno when the mount went. */
static int add_event(struct watch *w, struct dq *q, const char *name)
{
    char asset[TWIN_NAME_MAX + 1];
    uint64_t seq;

    if (flat_seq(name, &seq) < 0)
        return 0;
    ssize_t n = event_asset(w, name, asset, sizeof(asset) - 1);
    if (n < 0)
        return n == -ENOTCONN || n == -EIO ? (int)n : 0;
    asset[n] = '\0';
    if (!watch_selects(w, asset))
        return 0;
    int r = dq_add_event(q, name, asset, seq);
    return r < 0 ? r : 1;
}

/* An asset directory appeared (shown is its name in MNT/assets). */
static int asset_seen(struct watch *w, struct dq *q, const char *shown)
{
    char id[TWIN_NAME_MAX + 1];

    if (twin_name_unshown(shown, id, sizeof(id)) < 0 || !watch_selects(w, id))
        return 0;
    int r = dq_asset_seen(q, id);
    if (r == 1)
        r = dq_add_callback(q, id, DQ_ASSET_CREATED);
    return r < 0 ? r : 0;
}

static void asset_gone(const char *id, void *arg)
{
    struct dq *q = arg;
    if (dq_add_callback(q, id, DQ_ASSET_DELETED) < 0)
        log_msg("out of memory: on_asset_deleted of %s is lost", id);
}

static int scan_dir(struct watch *w, struct dq *q, const char *rel, bool events, int *count)
{
    DIR *d = opendir(sub(w, rel));
    if (!d)
        return -errno;
    int r = 0;
    for (;;) {
        errno = 0;
        const struct dirent *de = readdir(d);
        if (!de) {
            r = -errno;
            break;
        }
        if (de->d_name[0] == '.')
            continue;
        r = events ? add_event(w, q, de->d_name) : asset_seen(w, q, de->d_name);
        if (r < 0)
            break;
        *count += r;
    }
    closedir(d);
    return r;
}

int watch_scan(struct watch *w, struct dq *q)
{
    int assets = 0, events = 0;

    dq_scan_begin(q);
    int r = scan_dir(w, q, "assets", false, &assets);
    if (r == 0)
        r = scan_dir(w, q, "events", true, &events);
    if (r < 0)
        return r; /* no sweep: what was not listed is not known to be gone */
    dq_scan_end(q, true, asset_gone, q);
    return events;
}

static int on_assets(struct watch *w, struct dq *q, const struct inotify_event *ev)
{
    if (!(ev->mask & IN_ISDIR) || !ev->len)
        return 0;
    if (ev->mask & (IN_CREATE | IN_MOVED_TO))
        return asset_seen(w, q, ev->name);
    char id[TWIN_NAME_MAX + 1];
    if (twin_name_unshown(ev->name, id, sizeof(id)) < 0)
        return 0;
    if (dq_asset_gone(q, id) == 1)
        return dq_add_callback(q, id, DQ_ASSET_DELETED);
    return 0;
}

static int on_event(struct watch *w, struct dq *q, const struct inotify_event *ev)
{
    if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
        dq_remove(q, ev->name);
        return 0;
    }
    int r = add_event(w, q, ev->name);
    return r < 0 ? r : 0;
}

int watch_read(struct watch *w, struct dq *q)
{
    int ret = 0;
    for (;;) {
        ssize_t n = read(w->ifd, w->buf, sizeof(w->buf));
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? ret : -errno;
        for (char *p = w->buf; p < w->buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            int r = 0;
            if (ev->mask & IN_Q_OVERFLOW) {
                if (ret == 0)
                    ret = 1;
            } else if (ev->mask & (IN_IGNORED | IN_UNMOUNT)) {
                if (ev->wd == w->wd_events || ev->wd == w->wd_assets) {
                    ret = 2;
                    if (ev->wd == w->wd_events)
                        w->wd_events = -1;
                    else
                        w->wd_assets = -1;
                }
            } else if (ev->wd == w->wd_events && ev->len) {
                r = on_event(w, q, ev);
            } else if (ev->wd == w->wd_assets) {
                r = on_assets(w, q, ev);
            } else if (ev->wd == w->wd_handlers) {
                dq_unpark(q);
            }
            if (r == -ENOTCONN || r == -EIO)
                ret = 2;
            else if (r < 0)
                return r;
        }
    }
}

int watch_status(const struct watch *w, struct watch_status *ret)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/.twinfs/status", w->mnt);
    json_t *o = json_load_file(path, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return -EIO;
    }
    ret->replay_done = json_is_true(json_object_get(o, "replay_done"));
    ret->materialize_queue = json_integer_value(json_object_get(o, "materialize_queue"));
    ret->delivered = json_integer_value(json_object_get(o, "delivered"));
    json_decref(o);
    return 0;
}

bool watch_quiet(const struct watch *w)
{
    struct pollfd p = {.fd = w->ifd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}
