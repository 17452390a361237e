/* session: the life cycle (session.h). */
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
    fs->entry_timeout =
        opt->entry_timeout_s > 0 ? opt->entry_timeout_s : TWIN_DEFAULT_ENTRY_TIMEOUT_S;
    if (!fs->opt.max_t2_open)
        fs->opt.max_t2_open = TWIN_DEFAULT_MAX_T2_OPEN;
    r = t2_files_init(fs);
    if (r < 0)
        goto fail_alloc;
    r = tree_init(&fs->tree, opt->events_dir);
    if (r < 0)
        goto fail_tree;
    r = materializer_new(&fs->tree, log, fs->mountpoint, opt->materialize_delay_ms, &fs->mat);
    if (r < 0)
        goto fail_mat;
    pthread_mutex_init(&fs->handles_lock, NULL);
    fs->handles.prev = fs->handles.next = &fs->handles;

    struct follower_callbacks cb;
    follow_callbacks(fs, &cb);
    r = follower_new(&opt->follower, &cb, &fs->follower);
    if (r < 0)
        goto fail_follower;
    r = status_new(fs, &fs->status);
    if (r < 0)
        goto fail_status;
    /* The config's strings were the caller's: only follower_new needed them. */
    memset(&fs->opt.follower, 0, sizeof(fs->opt.follower));
    *ret = fs;
    return 0;

fail_status:
    follower_free(fs->follower);
fail_follower:
    pthread_mutex_destroy(&fs->handles_lock);
    materializer_free(fs->mat);
fail_mat:
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
    return materializer_start(fs->mat, se, mount);
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
    if (materializer_stop(fs->mat, 200) < 0)
        fs_log(fs->log, LOG_DEBUG, "materializer still busy at unmount");
    /* The loops return the number of the signal that ended them: a clean stop, not an error. */
    return r < 0 ? r : 0;
}

void twinfs_free(struct twinfs *fs)
{
    if (!fs)
        return;
    follower_stop(fs->follower); /* no more callbacks; every ack is on disk */
    materializer_stop(fs->mat, 0);
    handles_close_all(fs); /* T2 streams use the follower's client: before follower_free */
    follower_free(fs->follower);
    status_free(fs->status);
    pthread_mutex_destroy(&fs->handles_lock);
    materializer_free(fs->mat);
    tree_destroy(&fs->tree);
    t2_files_free(fs);
    free(fs->mountpoint);
    free(fs);
}
