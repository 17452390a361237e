/* follow: where assets and events enter fs/. The follower's callbacks put them into the tree
 * as pending entries and queue them for the materializer, which makes them visible. */
#include "fs_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "event_file.h"
#include "twin/iso_time.h"
#include "twin/name.h"

/* The asset node, made (pending, queued) if new; NULL after logging why not. Lock held. */
static struct node *asset_get_or_add(struct twinfs *fs, const char *id)
{
    bool is_new;
    struct node *a = NULL;
    int r = tree_asset_get_or_add(&fs->tree, id, &is_new, &a);

    if (r == -ENAMETOOLONG)
        fs_log(fs->log, LOG_WARNING, "asset id too long for a file name, not shown: \"%.64s\"", id);
    else if (r < 0)
        fs_log(fs->log, LOG_ERR, "asset %.64s: out of memory", id);
    else if (is_new)
        materializer_enqueue(fs->mat, a);
    return a;
}

static void cb_asset_created(void *userdata, const char *asset)
{
    struct twinfs *fs = userdata;

    pthread_mutex_lock(&fs->tree.lock);
    asset_get_or_add(fs, asset);
    pthread_mutex_unlock(&fs->tree.lock);
}

static void cb_asset_deleted(void *userdata, const char *asset)
{
    struct twinfs *fs = userdata;
    struct tree *t = &fs->tree;

    pthread_mutex_lock(&t->lock);
    struct node *a = tree_asset_find(t, asset);
    if (a) {
        /* The names the kernel has of it stay (and hold it) until the materializer removes
         * them through the mount; it may not do so from this thread's callers. */
        bool linked = a->links != 0;
        tree_asset_drop(t, a);
        if (linked)
            materializer_enqueue(fs->mat, a);
    }
    pthread_mutex_unlock(&t->lock);
}

static char *strdup_or_null(const char *s, bool *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

/* An event file's mtime: the record's systime, or its time, or now; the same at every mount. */
static struct timespec event_stamp(const struct follower_event *ev)
{
    struct timespec ts;

    if ((ev->systime && iso_time_parse(ev->systime, &ts) == 0) ||
        (ev->time && iso_time_parse(ev->time, &ts) == 0))
        return ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
}

/* Where an event enters fs/: a pending file, queued for the materializer. */
static void cb_event(void *userdata, const struct follower_event *ev)
{
    struct twinfs *fs = userdata;
    struct tree *t = &fs->tree;
    char fname[TWIN_NAME_MAX + 1];
    char flat[TWIN_NAME_MAX + 1];
    size_t len = 0;
    bool fail = false;

    /* the follower rendered the event once (event_file_render), within its bounds: keep a
     * copy */
    char *content = ev->content ? malloc(ev->content_len + 1) : NULL;
    if (content) {
        memcpy(content, ev->content, ev->content_len + 1);
        len = ev->content_len;
    }
    char *tn = strdup(ev->name ? ev->name : "");
    char *tm = strdup_or_null(ev->time, &fail);
    char *src = strdup_or_null(ev->source, &fail);
    char *flat_name = NULL;
    if (!content || !tn || fail)
        goto fail;

    struct node_event data = {
        .seq = ev->seq,
        .offset = ev->offset,
        .version = ev->version,
        .type_name = tn,
        .time = tm,
        .source = src,
        .content = content,
        .content_len = len,
        .stamp = event_stamp(ev),
    };
    struct node *n = NULL;
    pthread_mutex_lock(&t->lock);
    struct node *a = asset_get_or_add(fs, ev->asset);
    int r = -ENOMEM;
    if (a) {
        event_file_names(ev, a->name, fname, flat);
        data.flat_name = flat_name = strdup(flat);
        r = flat_name ? tree_event_add(t, a, fname, &data, &n) : -ENOMEM;
    }
    if (r == 0)
        materializer_enqueue(fs->mat, n);
    pthread_mutex_unlock(&t->lock);
    if (r == 0)
        return;
    if (!a || r == -EEXIST)
        goto drop; /* a duplicate, an asset not shown (logged), or no memory (logged) */
fail:
    fs_log(fs->log, LOG_ERR, "event %.64s/%" PRIu64 ": out of memory, not shown", ev->asset,
           ev->offset);
drop:
    free(content);
    free(tn);
    free(tm);
    free(src);
    free(flat_name);
}

static void cb_event_internal(void *userdata, enum follower_internal what)
{
    struct twinfs *fs = userdata;

    if (what == FOLLOWER_INTERNAL_EOF_REPLAY)
        fs_log(fs->log, LOG_INFO, "replay of the backlog done");
    else if (what == FOLLOWER_INTERNAL_LINK_UP)
        fs_log(fs->log, LOG_INFO, "link to the twin up");
    else if (what == FOLLOWER_INTERNAL_LINK_DOWN)
        fs_log(fs->log, LOG_WARNING, "link to the twin down");
}

static void cb_notice(void *userdata, int err, const char *message)
{
    struct twinfs *fs = userdata;

    fs_log(fs->log, LOG_WARNING, "%s%s%s", message, err ? ": " : "", err ? strerror(-err) : "");
}

void follow_callbacks(struct twinfs *fs, struct follower_callbacks *ret)
{
    *ret = (struct follower_callbacks){
        .on_asset_created = cb_asset_created,
        .on_asset_deleted = cb_asset_deleted,
        .on_event = cb_event,
        .on_event_internal = cb_event_internal,
        .on_notice = cb_notice,
        .render_event = event_file_render,
        .userdata = fs,
    };
}
