/* twinfs: the life cycle (twinfs.h) and the follower's callbacks, which put assets and events
 * into the tree as pending entries and queue them for the materializer. */
#include "fs_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "twin/defaults.h"
#include "twin/name.h"

void fs_log(struct twinfs *fs, int prio, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!fs->log)
        return;
    va_start(ap, fmt);
    /* clang 14's analyzer misses the va_start just above. */
    vsnprintf(msg, sizeof(msg), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    fs->log(prio, msg);
}

/* The asset node, made (pending, queued) if new; caller holds the lock. */
static struct node *asset_get_or_add(struct twinfs *fs, const char *asset)
{
    struct tree *t = &fs->tree;
    struct node *a = tree_find_child(t, t->assets_dir, asset);

    if (a)
        return a;
    a = tree_node_new(t, t->assets_dir, NODE_ASSET, asset, true);
    if (!a)
        return NULL;
    a->u.as.serial = t->next_serial++;
    a->u.as.events_dir = tree_node_new(t, a, NODE_EVENTS, "events", false);
    a->u.as.t2_dir = tree_node_new(t, a, NODE_T2, "t2", false);
    if (!a->u.as.events_dir || !a->u.as.t2_dir ||
        seqlist_insert(&t->assets, a->u.as.serial, a) < 0) {
        if (a->u.as.events_dir)
            tree_unlink_node(t, a->u.as.events_dir);
        if (a->u.as.t2_dir)
            tree_unlink_node(t, a->u.as.t2_dir);
        tree_unlink_node(t, a);
        return NULL;
    }
    materializer_enqueue(fs, a);
    return a;
}

static void cb_asset_created(void *userdata, const char *asset)
{
    struct twinfs *fs = userdata;

    if (!twin_name_is_safe(asset)) {
        fs_log(fs, LOG_WARNING, "asset id not usable as a file name, not shown: \"%.64s\"", asset);
        return;
    }
    pthread_mutex_lock(&fs->tree.lock);
    struct node *a = asset_get_or_add(fs, asset);
    pthread_mutex_unlock(&fs->tree.lock);
    if (!a)
        fs_log(fs, LOG_ERR, "asset %s: out of memory", asset);
}

static void cb_asset_deleted(void *userdata, const char *asset)
{
    struct twinfs *fs = userdata;
    struct tree *t = &fs->tree;

    pthread_mutex_lock(&t->lock);
    struct node *a = tree_find_child(t, t->assets_dir, asset);
    if (a) {
        struct seqlist *l = &a->u.as.events;
        for (size_t i = seqlist_next_live(l, 0); i < l->len; i = seqlist_next_live(l, i + 1)) {
            struct node *ev = l->v[i].ptr;
            if (ev->state == NODE_VISIBLE)
                t->visible_events--;
            l->v[i].ptr = NULL;
            tree_unlink_node(t, ev);
        }
        l->len = 0;
        l->live = 0;
        if (a->state == NODE_VISIBLE)
            t->visible_assets--;
        seqlist_remove(&t->assets, a->u.as.serial);
        tree_unlink_node(t, a->u.as.events_dir);
        tree_unlink_node(t, a->u.as.t2_dir);
        a->state = NODE_REMOVED;
        /* The materializer tells the kernel (it may not do so from this thread's callers). */
        materializer_enqueue(fs, a);
        tree_unlink_node(t, a);
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
    if (tree_event_filename(ev->offset, type_name, fname, sizeof(fname)) < 0) {
        type_name[200] = '\0';
        tree_event_filename(ev->offset, type_name, fname, sizeof(fname));
    }
    /* the follower rendered the event once, within its bounds: keep a copy */
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

    pthread_mutex_lock(&t->lock);
    struct node *a = asset_get_or_add(fs, ev->asset);
    if (!a || a->state == NODE_REMOVED || seqlist_get(&a->u.as.events, ev->offset)) {
        pthread_mutex_unlock(&t->lock);
        goto drop; /* a duplicate, or no memory */
    }
    struct node *n = tree_node_new(t, a->u.as.events_dir, NODE_EVENT, fname, false);
    if (!n) {
        pthread_mutex_unlock(&t->lock);
        goto fail;
    }
    n->u.ev.seq = ev->seq;
    n->u.ev.offset = ev->offset;
    n->u.ev.version = ev->version;
    n->u.ev.type_name = tn;
    n->u.ev.time = tm;
    n->u.ev.source = src;
    n->u.ev.content = content;
    n->u.ev.content_len = len;
    if (seqlist_insert(&a->u.as.events, ev->offset, n) < 0) {
        n->u.ev.content = NULL; /* freed below, not twice */
        n->u.ev.type_name = n->u.ev.time = n->u.ev.source = NULL;
        tree_unlink_node(t, n);
        pthread_mutex_unlock(&t->lock);
        goto fail;
    }
    materializer_enqueue(fs, n);
    pthread_mutex_unlock(&t->lock);
    return;
fail:
    fs_log(fs, LOG_ERR, "event %s/%" PRIu64 ": out of memory, not shown", ev->asset, ev->offset);
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
        fs_log(fs, LOG_INFO, "replay of the backlog done");
    else if (what == FOLLOWER_INTERNAL_LINK_UP)
        fs_log(fs, LOG_INFO, "link to the twin up");
    else if (what == FOLLOWER_INTERNAL_LINK_DOWN)
        fs_log(fs, LOG_WARNING, "link to the twin down");
}

static void cb_notice(void *userdata, int err, const char *message)
{
    struct twinfs *fs = userdata;

    fs_log(fs, LOG_WARNING, "%s%s%s", message, err ? ": " : "", err ? strerror(-err) : "");
}

int twinfs_new(const struct twinfs_options *opt, twinfs_log_fn log, struct twinfs **ret)
{
    struct twinfs *fs;
    int r;

    if (!opt || !opt->mountpoint || opt->mountpoint[0] != '/')
        return -EINVAL;
    fs = calloc(1, sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    fs->opt = *opt;
    fs->log = log;
    fs->mountpoint = strdup(opt->mountpoint);
    if (!fs->mountpoint) {
        r = -ENOMEM;
        goto fail_alloc;
    }
    fs->opt.mountpoint = fs->mountpoint;
    fs->uid = getuid();
    fs->gid = getgid();
    fs->root.covered_fd = -1; /* until twinfs_attach */
    fs->entry_timeout =
        opt->entry_timeout_s > 0 ? opt->entry_timeout_s : TWIN_DEFAULT_ENTRY_TIMEOUT_S;
    if (!fs->opt.max_t2_open)
        fs->opt.max_t2_open = TWIN_DEFAULT_MAX_T2_OPEN;
    r = t2_files_init(fs);
    if (r < 0)
        goto fail_alloc;
    r = tree_init(&fs->tree);
    if (r < 0)
        goto fail_tree;
    pthread_cond_init(&fs->mq_cond, NULL);
    pthread_mutex_init(&fs->handles_lock, NULL);
    fs->handles.prev = fs->handles.next = &fs->handles;

    struct follower_callbacks cb = {
        .on_asset_created = cb_asset_created,
        .on_asset_deleted = cb_asset_deleted,
        .on_event = cb_event,
        .on_event_internal = cb_event_internal,
        .on_notice = cb_notice,
        .userdata = fs,
    };
    r = follower_new(&opt->follower, &cb, &fs->follower);
    if (r < 0)
        goto fail_follower;
    /* The config's strings were the caller's: only follower_new needed them. */
    memset(&fs->opt.follower, 0, sizeof(fs->opt.follower));
    *ret = fs;
    return 0;

fail_follower:
    pthread_cond_destroy(&fs->mq_cond);
    tree_destroy(&fs->tree);
fail_tree:
    t2_files_free(fs);
fail_alloc:
    free(fs->mountpoint);
    free(fs);
    return r;
}

int twinfs_start(struct twinfs *fs)
{
    return follower_start(fs->follower);
}

int twinfs_attach(struct twinfs *fs, struct fuse_session *se, const struct mount_ref *mount)
{
    fs->se = se;
    fs->root = *mount;
    return materializer_start(fs);
}

int twinfs_run(struct twinfs *fs, bool single_thread)
{
    struct fuse_session *se = fs->se;
    int r;

    if (single_thread) {
        r = fuse_session_loop(se);
    } else {
        struct fuse_loop_config *cfg = fuse_loop_cfg_create();
        if (!cfg) {
            r = -ENOMEM;
        } else {
            /* T2 opens and reads block a worker each: room for all of them and then some. */
            fuse_loop_cfg_set_max_threads(cfg, fs->opt.max_t2_open + 16);
            fuse_loop_cfg_set_idle_threads(cfg, 8);
            fuse_loop_cfg_set_clone_fd(cfg, 0);
            r = fuse_session_loop_mt(se, cfg);
            fuse_loop_cfg_destroy(cfg);
        }
    }
    /* A signal ends the loop while the mount is still there: the materializer may be waiting
     * for an answer nobody will send; it is joined in twinfs_free, once closing the session
     * has aborted that call. */
    if (materializer_stop(fs, 200) < 0)
        fs_log(fs, LOG_DEBUG, "materializer still busy at unmount");
    /* The loops return the number of the signal that ended them: a clean stop, not an error. */
    return r < 0 ? r : 0;
}

void twinfs_free(struct twinfs *fs)
{
    if (!fs)
        return;
    follower_stop(fs->follower); /* no more callbacks; every ack is on disk */
    materializer_stop(fs, 0);
    handles_close_all(fs); /* T2 streams use the follower's client: before follower_free */
    follower_free(fs->follower);
    pthread_mutex_destroy(&fs->handles_lock);
    pthread_cond_destroy(&fs->mq_cond);
    tree_destroy(&fs->tree);
    t2_files_free(fs);
    free(fs->mountpoint);
    free(fs);
}
