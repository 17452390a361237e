/* materializer: see materializer.h. Entries keep their order: the queue has an asset before
 * its events, removed nodes go before pending ones, and a delete or a wait first sends what
 * is batched before it. */
#include "materializer.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "caller.h"
#include "twin/deadline.h"

/* A FIFO of nodes, linked through queue_next. */
struct node_queue {
    struct node *head, *tail;
};

static void node_queue_push(struct node_queue *q, struct node *n)
{
    n->queue_next = NULL;
    if (q->tail)
        q->tail->queue_next = n;
    else
        q->head = n;
    q->tail = n;
}

static struct node *node_queue_pop(struct node_queue *q)
{
    struct node *n = q->head;

    if (n) {
        q->head = n->queue_next;
        if (!q->head)
            q->tail = NULL;
        n->queue_next = NULL;
    }
    return n;
}

struct materializer {
    struct tree *tree; /* its lock guards the queue and the flags up to stop */
    twinfs_log_fn log;
    const char *mountpoint;
    unsigned delay_ms;
    struct fuse_session *se;
    struct caller *caller;
    struct node_queue makes;    /* pending nodes to make, in arrival order */
    struct node_queue removals; /* removed nodes whose names go, taken first */
    size_t len;
    bool busy; /* an entry is popped and its call not done: it still counts as queued */
    bool init_done;
    bool stop;
    pthread_cond_t cond;
    pthread_t thread;
    bool running;    /* started and not yet joined */
    bool mount_lost; /* the caller found no mount of ours (the thread's) */
    atomic_ullong materialized;
    atomic_ullong errors;
};

int materializer_new(struct tree *tree, twinfs_log_fn log, const char *mountpoint,
                     unsigned delay_ms, struct materializer **ret)
{
    struct materializer *m = calloc(1, sizeof(*m));

    if (!m)
        return -ENOMEM;
    m->caller = caller_new();
    if (!m->caller) {
        free(m);
        return -ENOMEM;
    }
    m->tree = tree;
    m->log = log;
    m->mountpoint = mountpoint;
    m->delay_ms = delay_ms;
    pthread_cond_init(&m->cond, NULL);
    *ret = m;
    return 0;
}

void materializer_free(struct materializer *m)
{
    if (!m)
        return;
    materializer_stop(m, 0);
    caller_free(m->caller);
    pthread_cond_destroy(&m->cond);
    free(m);
}

void materializer_enqueue(struct materializer *m, struct node *n)
{
    if (n->queued)
        return;
    n->queued = true;
    /* A removed node's names go first: it holds its memory until they are gone, and nothing
     * that is still to be made depends on them (a new asset of the same name is made after
     * the old one's directory is removed, which this order also gives). */
    node_queue_push(n->state == NODE_REMOVED ? &m->removals : &m->makes, n);
    m->len++;
    pthread_cond_signal(&m->cond);
}

static struct node *queue_pop(struct materializer *m)
{
    struct node *n = node_queue_pop(&m->removals);

    if (!n)
        n = node_queue_pop(&m->makes);
    if (n) {
        n->queued = false;
        m->len--;
    }
    return n;
}

bool materializer_is_caller(const struct materializer *m, pid_t pid)
{
    pid_t caller = caller_pid(m->caller);

    return caller > 0 && pid == caller;
}

void materializer_get_stats(const struct materializer *m, struct materializer_stats *ret)
{
    ret->queued = m->len + (m->busy ? 1 : 0);
    ret->materialized = atomic_load(&m->materialized);
    ret->errors = atomic_load(&m->errors);
}

static bool stopping(struct materializer *m)
{
    pthread_mutex_lock(&m->tree->lock);
    bool stop = m->stop;
    pthread_mutex_unlock(&m->tree->lock);
    return stop;
}

static bool time_reached(const struct timespec *when)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > when->tv_sec ||
           (now.tv_sec == when->tv_sec && now.tv_nsec >= when->tv_nsec);
}

/* Sleeps until when. Callers check time_reached first: a sleep until a time already past still
 * costs a timer and a context switch, once per event otherwise. */
static void sleep_until(const struct timespec *when)
{
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, when, NULL) == EINTR)
        ;
}

/* Pushes an event's bytes into the page cache so that a cat is served without a read. */
static void store_content(struct materializer *m, uint64_t ino)
{
    char *copy = NULL;
    size_t len = 0;

    pthread_mutex_lock(&m->tree->lock);
    struct node *n = tree_get(m->tree, ino);
    if (n && n->state == NODE_VISIBLE && n->event.content) {
        copy = malloc(n->event.content_len);
        if (copy) {
            memcpy(copy, n->event.content, n->event.content_len);
            len = n->event.content_len;
        }
    }
    pthread_mutex_unlock(&m->tree->lock);
    if (!copy)
        return;
    struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);
    bv.buf[0].mem = copy;
    int r = fuse_lowlevel_notify_store(m->se, ino, 0, &bv, 0);
    if (r < 0 && r != -ENOENT)
        fs_log(m->log, LOG_DEBUG, "materializer: notify_store: %s", strerror(-r));
    free(copy);
}

/* The caller found no mount of ours on the covered directory (unmounted, or moved from another
 * mount namespace): the session ends as if unmounted, through a stop signal to ourselves that
 * the session loop takes like the owner's SIGTERM. Said once. */
static void mount_lost(struct materializer *m)
{
    if (m->mount_lost)
        return;
    m->mount_lost = true;
    if (stopping(m))
        return;
    fs_log(m->log, LOG_WARNING,
           "materializer: the mount is no longer on %s (unmounted, or moved from another mount "
           "namespace): ending the session",
           m->mountpoint);
    kill(getpid(), SIGTERM);
}

/* A new caller process for one that died. Returns 0 or -errno. */
static int restart_caller(struct materializer *m)
{
    if (stopping(m))
        return -ESHUTDOWN;
    int r = caller_restart(m->caller);
    if (r == -EAGAIN)
        return r;
    if (r < 0)
        fs_log(m->log, LOG_ERR, "materializer: the caller process died; a new one: %s",
               strerror(-r));
    else
        fs_log(m->log, LOG_WARNING, "materializer: the caller process died; started a new one");
    return r;
}

/* Tells the kernel that the name of child in parent is gone, for a name the caller could not
 * remove through the mount (no IN_DELETE then). No lock held. */
static void forget_name(struct materializer *m, uint64_t parent, uint64_t child, const char *name)
{
    size_t len = strlen(name);
    int r = fuse_lowlevel_notify_delete(m->se, parent, child, name, len);

    if (r)
        r = fuse_lowlevel_notify_inval_entry(m->se, parent, name, len);
    if (r && r != -ENOENT)
        fs_log(m->log, LOG_DEBUG, "materializer: forget %s: %s", name, strerror(-r));
}

/* A call that failed: its node ends as if it had been made, without its inotify event, so that
 * an event never stays invisible (holding the flow-control window) and a removed node's names
 * never stay (holding its memory). A node deleted or acked meanwhile needs nothing: no error.
 * No lock held. */
static void settle_failed(struct materializer *m, struct caller *c, size_t i, int err)
{
    enum caller_op op = caller_call_op(c, i);
    unsigned link = caller_call_tag(c, i);
    const char *path = caller_call_path(c, i);
    const char *slash = strrchr(path, '/');
    uint64_t parent = 0, ino = caller_call_ino(c, i);
    bool failed = true;

    pthread_mutex_lock(&m->tree->lock);
    struct node *n = tree_get(m->tree, ino);
    bool stop = m->stop;
    if (op == CALLER_MKDIR || op == CALLER_CREATE) {
        failed = n && n->state != NODE_REMOVED;
        if (failed && !stop)
            tree_show(m->tree, n);
    } else if (op == CALLER_LINK) {
        /* Not failed if it was acked meanwhile; ENOENT for a shown event means that its first
         * name could not be made either (that call failed before this one). */
        failed = n && n->state == NODE_VISIBLE && !(n->links & NODE_LINK_FLAT);
        if (failed && !stop)
            tree_link_flat(m->tree, n);
    } else if (n && (n->links & link)) {
        parent = link == NODE_LINK_FLAT ? TREE_INO_ALL_EVENTS : n->parent->ino;
        tree_name_gone(m->tree, n, link); /* may free n */
    } else {
        failed = false; /* removed already: by a user's ack, or an earlier call */
    }
    pthread_mutex_unlock(&m->tree->lock);
    if (parent)
        forget_name(m, parent, ino, slash ? slash + 1 : path);
    if (!failed)
        return;
    atomic_fetch_add(&m->errors, 1);
    if (!stop && err != ESTALE) /* ESTALE: said once, by mount_lost */
        fs_log(m->log, LOG_WARNING, "materializer: %c %s: %s (done without inotify event)", op,
               path, strerror(err));
}

/* Sends the batch, if any, and settles each call's node. Called and returns with the lock
 * held; drops it meanwhile (the calls come back to handlers that take it). */
static void batch_flush(struct materializer *m)
{
    struct caller *c = m->caller;
    int errs[CALLER_BATCH_MAX];
    size_t count = caller_count(c);

    if (count == 0)
        return;
    pthread_mutex_unlock(&m->tree->lock);
    bool again = caller_send(c, errs) != 0 && restart_caller(m) == 0;
    if (again)
        caller_send(c, errs);
    for (size_t i = 0; i < count; i++) {
        if (errs[i] == ESTALE)
            mount_lost(m);
    }
    for (size_t i = 0; i < count; i++) {
        enum caller_op op = caller_call_op(c, i);
        if (again && errs[i] == EEXIST && op != CALLER_UNLINK && op != CALLER_RMDIR)
            errs[i] = 0; /* made by the caller that died, before it died */
        if (errs[i]) {
            settle_failed(m, c, i, errs[i]);
            continue;
        }
        if (op == CALLER_CREATE)
            store_content(m, caller_call_ino(c, i));
        if (op == CALLER_CREATE || op == CALLER_MKDIR)
            atomic_fetch_add(&m->materialized, 1);
    }
    caller_clear(c);
    pthread_mutex_lock(&m->tree->lock);
}

/* Adds a call to the batch, sending the batch first when it is full. Lock held; dropped while
 * it sends. */
static void batch_add(struct materializer *m, enum caller_op op, uint64_t ino, unsigned link,
                      const char *path, const char *path2)
{
    if (!caller_add(m->caller, op, ino, link, path, path2)) {
        batch_flush(m);
        caller_add(m->caller, op, ino, link, path, path2); /* an empty batch has room */
    }
    if (caller_count(m->caller) == CALLER_BATCH_MAX)
        batch_flush(m);
}

/* An event whose asset is not shown yet: its create needs the directory, whose mkdir may be in
 * the batch (the queue has the asset before its events, and nothing else brings them back). */
static bool waits_for_its_asset(struct node *n)
{
    if (!n || n->kind != NODE_EVENT || n->state != NODE_PENDING)
        return false;
    struct node *asset = tree_asset_of(n);
    return asset && asset->state == NODE_PENDING;
}

/* Whether snprintf wrote the whole path. */
static bool path_fits(int r, size_t size)
{
    return r > 0 && (size_t)r < size;
}

/* Makes pending event n's names: its file in its asset's events/, then its link in /events,
 * after its asset's delay. Lock held; dropped while it sleeps or sends (n may go meanwhile:
 * the calls carry its ino). */
static void create_event(struct materializer *m, struct node *n, char *path, char *path2)
{
    struct node *asset = tree_asset_of(n);

    if (!asset || asset->state != NODE_VISIBLE)
        return; /* the asset is gone, or its mkdir failed during a stop */
    uint64_t ino = n->ino;
    const char *flat = n->event.flat_name;
    if (!path_fits(snprintf(path, PATH_MAX, "assets/%s/events/%s", asset->name, n->name),
                   PATH_MAX) ||
        (flat && !path_fits(snprintf(path2, PATH_MAX, "events/%s", flat), PATH_MAX)))
        return;
    /* Give `inotifywait -r` time to add its watch on a directory it just saw appear. */
    struct timespec wait_until = timespec_add_ms(asset->asset.visible_at, m->delay_ms);
    if (!time_reached(&wait_until)) {
        batch_flush(m);
        pthread_mutex_unlock(&m->tree->lock);
        sleep_until(&wait_until);
        pthread_mutex_lock(&m->tree->lock);
    }
    batch_add(m, CALLER_CREATE, ino, NODE_LINK_MAIN, path, NULL);
    if (flat)
        batch_add(m, CALLER_LINK, ino, NODE_LINK_FLAT, path, path2);
}

/* Removes the names removed event n still has, through the mount. Lock held; dropped while it
 * sends (n may go meanwhile: the calls carry its ino). */
static void unlink_event(struct materializer *m, struct node *n, char *path, char *path2)
{
    const struct node *asset = n->parent->parent;
    unsigned links = n->links;
    uint64_t ino = n->ino;

    if ((links & NODE_LINK_MAIN) &&
        !path_fits(snprintf(path, PATH_MAX, "assets/%s/events/%s", asset->name, n->name), PATH_MAX))
        links &= ~NODE_LINK_MAIN;
    if ((links & NODE_LINK_FLAT) &&
        !path_fits(snprintf(path2, PATH_MAX, "events/%s", n->event.flat_name), PATH_MAX))
        links &= ~NODE_LINK_FLAT;
    if (links & NODE_LINK_MAIN)
        batch_add(m, CALLER_UNLINK, ino, NODE_LINK_MAIN, path, NULL);
    if (links & NODE_LINK_FLAT)
        batch_add(m, CALLER_UNLINK, ino, NODE_LINK_FLAT, path2, NULL);
}

/* Removes deleted asset a through the mount: its events' names, its events/ and t2/, and its
 * directory. Lock held; dropped while it sends (a stays: its directory's link holds it). */
static void remove_asset(struct materializer *m, struct node *a, char *path, char *path2)
{
    struct dir_index *events = a->asset.events;
    uint64_t key = 0;

    batch_flush(m); /* calls batched before may make names under it */
    for (struct node *ev = dir_index_next(events, 0, &key); ev;
         ev = key < UINT64_MAX ? dir_index_next(events, key + 1, &key) : NULL)
        unlink_event(m, ev, path, path2);
    struct node *dirs[] = {a->asset.events_dir, a->asset.t2_dir};
    for (size_t i = 0; i < 2; i++) {
        if ((dirs[i]->links & NODE_LINK_MAIN) &&
            path_fits(snprintf(path, PATH_MAX, "assets/%s/%s", a->name, dirs[i]->name), PATH_MAX))
            batch_add(m, CALLER_RMDIR, dirs[i]->ino, NODE_LINK_MAIN, path, NULL);
    }
    if (path_fits(snprintf(path, PATH_MAX, "assets/%s", a->name), PATH_MAX))
        batch_add(m, CALLER_RMDIR, a->ino, NODE_LINK_MAIN, path, NULL);
}

/* Batches the calls that node n, just taken off the queue, needs. Lock held; dropped while it
 * sleeps or sends. */
static void materialize(struct materializer *m, struct node *n, char *path, char *path2)
{
    if (n->state == NODE_REMOVED && !n->links) {
        tree_maybe_free(m->tree, n); /* it may have waited for us to let go */
        return;
    }
    if (n->kind == NODE_ASSET && n->state == NODE_PENDING) {
        if (path_fits(snprintf(path, PATH_MAX, "assets/%s", n->name), PATH_MAX))
            batch_add(m, CALLER_MKDIR, n->ino, NODE_LINK_MAIN, path, NULL);
    } else if (n->kind == NODE_ASSET && n->state == NODE_REMOVED) {
        remove_asset(m, n, path, path2);
    } else if (n->kind == NODE_EVENT && n->state == NODE_PENDING) {
        create_event(m, n, path, path2);
    } else if (n->kind == NODE_EVENT && n->state == NODE_REMOVED) {
        unlink_event(m, n, path, path2);
    }
}

/* Takes entries off the queue and batches their calls. Runs with the lock held except around
 * calls and sleeps. */
static void *materializer_main(void *arg)
{
    struct materializer *m = arg;
    sigset_t all;
    char path[PATH_MAX], path2[PATH_MAX];

    /* Signals go to the session threads; a signal here would interrupt our own requests. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    pthread_mutex_lock(&m->tree->lock);
    while (!m->init_done && !m->stop)
        pthread_cond_wait(&m->cond, &m->tree->lock);
    while (!m->stop) {
        size_t batched = caller_count(m->caller);
        if (batched > 0 && !m->removals.head && waits_for_its_asset(m->makes.head)) {
            batch_flush(m); /* the asset's mkdir may be in it */
            continue;
        }
        struct node *n = queue_pop(m);
        m->busy = n != NULL || batched > 0;
        if (n)
            materialize(m, n, path, path2);
        else if (batched > 0)
            batch_flush(m); /* the queue ran dry: what is batched goes now */
        else
            pthread_cond_wait(&m->cond, &m->tree->lock);
    }
    pthread_mutex_unlock(&m->tree->lock);
    return NULL;
}

int materializer_start(struct materializer *m, struct fuse_session *se,
                       const struct mount_ref *mount)
{
    sigset_t stop_signals, old;
    int r;

    m->se = se;
    /* SIGTERM and friends must reach the session loop's threads, not this one: a signal taken
     * here would not wake the loop. The thread inherits the mask set around its creation. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &old);
    r = caller_start(m->caller, mount);
    if (r == 0) {
        r = -pthread_create(&m->thread, NULL, materializer_main, m);
        if (r == 0)
            m->running = true;
        else
            caller_stop(m->caller);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

void materializer_init_done(struct materializer *m)
{
    pthread_mutex_lock(&m->tree->lock);
    m->init_done = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->tree->lock);
}

int materializer_stop(struct materializer *m, unsigned timeout_ms)
{
    if (!m->running)
        return 0;
    pthread_mutex_lock(&m->tree->lock);
    m->stop = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->tree->lock);
    if (timeout_ms) {
        struct timespec ts = deadline_after_ms(timeout_ms);
        if (pthread_timedjoin_np(m->thread, NULL, &ts) != 0)
            return -ETIMEDOUT;
    } else {
        pthread_join(m->thread, NULL);
    }
    m->running = false;
    caller_stop(m->caller);
    return 0;
}
