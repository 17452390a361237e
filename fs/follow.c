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
#include "twin/name.h"

/* The asset node, made (pending, queued) if new; caller holds the lock. */
static struct node *asset_get_or_add(struct twinfs *fs, const char *asset)
{
    bool is_new;
    struct node *a = tree_asset_get_or_add(&fs->tree, asset, &is_new);

    if (a && is_new)
        materializer_enqueue(fs->mat, a);
    return a;
}

static void cb_asset_created(void *userdata, const char *asset)
{
    struct twinfs *fs = userdata;

    if (!twin_name_is_safe(asset)) {
        fs_log(fs->log, LOG_WARNING, "asset id not usable as a file name, not shown: \"%.64s\"",
               asset);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *a = asset_get_or_add(fs, asset);
    pthread_mutex_unlock(&fs->tree.lock);
    if (!a)
        fs_log(fs->log, LOG_ERR, "asset %s: out of memory", asset);
}

static void cb_asset_deleted(void *userdata, const char *asset)
{
    struct twinfs *fs = userdata;
    struct tree *t = &fs->tree;

    pthread_mutex_lock(&t->lock);
    struct node *a = tree_find_child(t, t->assets_dir, asset);
    if (a) {
        /* Queued first, which holds it: the materializer tells the kernel (it may not do so
         * from this thread's callers). */
        materializer_enqueue(fs->mat, a);
        tree_asset_drop(t, a);
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

static void cb_event(void *userdata, const struct follower_event *ev)
{
    struct twinfs *fs = userdata;
    struct tree *t = &fs->tree;
    char fname[300];
    char type_name[256];
    size_t len = 0;
    bool fail = false;

    if (!twin_name_is_safe(ev->asset))
        return;
    /* The event name becomes part of a file name: no slash, bounded. */
    snprintf(type_name, sizeof(type_name), "%s", ev->name ? ev->name : "");
    for (char *p = type_name; *p; p++)
        if (*p == '/')
            *p = '_';
    if (event_file_name(ev->offset, type_name, fname, sizeof(fname)) < 0) {
        type_name[200] = '\0';
        event_file_name(ev->offset, type_name, fname, sizeof(fname));
    }
    /* the follower rendered the event once (event_file_render), within its bounds: keep a
     * copy */
    char *content = ev->content ? malloc(ev->content_len + 1) : NULL;
    if (content) {
        memcpy(content, ev->content, ev->content_len + 1);
        len = ev->content_len;
    }
    char *tn = strdup(type_name);
    char *tm = strdup_or_null(ev->time, &fail);
    char *src = strdup_or_null(ev->source, &fail);
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
    };
    struct node *n = NULL;
    pthread_mutex_lock(&t->lock);
    struct node *a = asset_get_or_add(fs, ev->asset);
    int r = a ? tree_event_add(t, a, fname, &data, &n) : -ENOMEM;
    if (r == 0)
        materializer_enqueue(fs->mat, n);
    pthread_mutex_unlock(&t->lock);
    if (r == 0)
        return;
    if (!a || r == -EEXIST)
        goto drop; /* a duplicate, or no memory */
fail:
    fs_log(fs->log, LOG_ERR, "event %s/%" PRIu64 ": out of memory, not shown", ev->asset,
           ev->offset);
drop:
    free(content);
    free(tn);
    free(tm);
    free(src);
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
