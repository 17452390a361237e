/* minfs: the floor for any FUSE filesystem in the consume and materialize benchmarks. A minimal
 * in-memory libfuse low-level filesystem with every trick of docs/design.md "Performance
 * levers": long entry/attr timeouts, readdirplus, open/opendir/flush answered ENOSYS (the
 * kernel stops sending them), and each file's bytes pushed into the page cache right after it
 * is materialized. Files are made visible the way twinfs does it, by a thread doing mknod on
 * the mount (so inotify sees IN_CREATE).
 *
 *   minfs MOUNTPOINT COUNT SIZE STATSFILE
 *
 * mounts, materializes COUNT files of SIZE bytes named like twinfs events
 * (%020u-Ping.json) in the root, then writes "materialized COUNT SECONDS" and the request
 * counters so far to STATSFILE.mat, and serves until unmounted; at exit it writes the
 * counters to STATSFILE. Benchmark code: no options, no daemonizing.
 *
 * MINFS_OPEN=1 in the environment answers open (keep_cache, noflush) instead of ENOSYS, as
 * twinfs must for its T2 files: the difference is what that deviation costs.
 *
 * MINFS_LINK=1 materializes with the calls twinfs's materializer makes with events/ on (and
 * answers open, as twinfs does): open(O_CREAT | O_EXCL | O_WRONLY) and close of each file in
 * the root (lookup, create, release: IN_CREATE and IN_CLOSE_WRITE), then a hard link of it as
 * events/NAME, opened for writing and closed there (lookup, link, open, release). events/ is
 * looked up, not listed: this mode is for the materialize figure only. */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT   86400.0
#define FIRST_INO 2 /* file i has inode i + FIRST_INO; events/ has FIRST_INO + count */
#define LINKS_DIR "events"

enum op {
    OP_LOOKUP,
    OP_GETATTR,
    OP_MKNOD,
    OP_CREATE,
    OP_LINK,
    OP_UNLINK,
    OP_OPEN,
    OP_READ,
    OP_FLUSH,
    OP_RELEASE,
    OP_OPENDIR,
    OP_READDIR,
    OP_READDIRPLUS,
    OP_FORGET,
    OP_IOCTL,
    OP_OTHER,
    OP_COUNT
};
static const char *const op_names[OP_COUNT] = {
    "lookup", "getattr", "mknod",   "create",  "link",        "unlink", "open",  "read",
    "flush",  "release", "opendir", "readdir", "readdirplus", "forget", "ioctl", "other"};

enum state { PENDING, VISIBLE, REMOVED };

static struct {
    const char *mnt;
    const char *stats;
    unsigned count;
    size_t size;
    char *content; /* every file has the same bytes */
    unsigned char *state;
    atomic_uchar *linked; /* MINFS_LINK: whether file i has its name in events/ */
    pthread_mutex_t lock;
    atomic_int mat_tid;
    atomic_ullong ops[OP_COUNT];
    struct fuse_session *se;
    pthread_t mat;
    bool mat_started;
    bool answer_open;
    bool link_mode;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void count(enum op o)
{
    atomic_fetch_add_explicit(&g.ops[o], 1, memory_order_relaxed);
}

static void file_name(unsigned i, char *buf, size_t size)
{
    snprintf(buf, size, "%020u-Ping.json", i);
}

/* The index of a file name, or -1. */
static long parse_name(const char *name)
{
    char *end;
    unsigned long v;

    if (strlen(name) != 30 || strcmp(name + 20, "-Ping.json") != 0)
        return -1;
    errno = 0;
    v = strtoul(name, &end, 10);
    if (errno || end != name + 20 || v >= g.count)
        return -1;
    return (long)v;
}

static fuse_ino_t links_ino(void)
{
    return (fuse_ino_t)g.count + FIRST_INO;
}

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_uid = getuid();
    st->st_gid = getgid();
    if (ino == FUSE_ROOT_ID || ino == links_ino()) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        if (ino >= FIRST_INO && ino < links_ino() &&
            atomic_load_explicit(&g.linked[ino - FIRST_INO], memory_order_relaxed))
            st->st_nlink = 2;
        st->st_size = (off_t)g.size;
    }
}

static void fill_entry(fuse_ino_t ino, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = ino;
    e->generation = 1;
    e->attr_timeout = TIMEOUT;
    e->entry_timeout = TIMEOUT;
    fill_attr(ino, &e->attr);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_stats(const char *path, const char *extra)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    if (extra)
        fputs(extra, f);
    for (int i = 0; i < OP_COUNT; i++)
        fprintf(f, "%s %llu\n", op_names[i], (unsigned long long)atomic_load(&g.ops[i]));
    fclose(f);
}

static void store(unsigned i)
{
    struct fuse_bufvec bv = FUSE_BUFVEC_INIT(g.size);
    bv.buf[0].mem = g.content;
    fuse_lowlevel_notify_store(g.se, i + FIRST_INO, 0, &bv, 0);
}

/* Opens name in dir for writing (flags added) and closes it, as twinfs's caller does. Returns
 * 0 or -1. */
static int open_close(int dir, const char *name, int flags)
{
    int fd = openat(dir, name, flags | O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0444);

    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* MINFS_LINK: every file made with the calls of twinfs's materializer. Returns the errors. */
static unsigned materialize_linked(void)
{
    char name[64];
    unsigned errors = 0;
    int root = open(g.mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int links = root < 0 ? -1 : openat(root, LINKS_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);

    for (unsigned i = 0; i < g.count; i++) {
        file_name(i, name, sizeof(name));
        if (links < 0 || open_close(root, name, O_CREAT | O_EXCL) < 0) {
            errors++;
            continue;
        }
        store(i);
        if (linkat(root, name, links, name, 0) < 0 || open_close(links, name, 0) < 0)
            errors++;
    }
    if (links >= 0)
        close(links);
    if (root >= 0)
        close(root);
    return errors;
}

static void *materializer(void *arg)
{
    char path[4096], name[64], line[128];
    size_t ml = strlen(g.mnt);
    double t0 = now();
    unsigned errors = 0;

    (void)arg;
    atomic_store(&g.mat_tid, (int)gettid());
    if (g.link_mode)
        errors = materialize_linked();
    for (unsigned i = 0; !g.link_mode && i < g.count; i++) {
        file_name(i, name, sizeof(name));
        if (ml + 1 + strlen(name) + 1 > sizeof(path))
            return NULL;
        memcpy(path, g.mnt, ml);
        path[ml] = '/';
        memcpy(path + ml + 1, name, strlen(name) + 1);
        if (mknod(path, S_IFREG | 0444, 0) < 0) {
            errors++;
            continue;
        }
        store(i);
    }
    double t = now() - t0;
    snprintf(line, sizeof(line), "materialized %u %.6f\nerrors %u\n", g.count, t, errors);
    char mpath[4096];
    snprintf(mpath, sizeof(mpath), "%s.mat", g.stats);
    write_stats(mpath, line);
    return NULL;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    bool in_links = g.link_mode && parent == links_ino();
    long i = parent == FUSE_ROOT_ID || in_links ? parse_name(name) : -1;
    bool ok;

    count(OP_LOOKUP);
    if (g.link_mode && parent == FUSE_ROOT_ID && strcmp(name, LINKS_DIR) == 0) {
        fill_entry(links_ino(), &e);
        fuse_reply_entry(req, &e);
        return;
    }
    pthread_mutex_lock(&g.lock);
    ok = i >= 0 && g.state[i] == VISIBLE && (!in_links || atomic_load(&g.linked[i]));
    pthread_mutex_unlock(&g.lock);
    if (!ok) {
        fuse_reply_err(req, ENOENT); /* not negatively cached: the mknod comes through */
        return;
    }
    fill_entry((fuse_ino_t)i + FIRST_INO, &e);
    fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;

    (void)fi;
    count(OP_GETATTR);
    fill_attr(ino, &st);
    fuse_reply_attr(req, &st, TIMEOUT);
}

/* Marks file i visible for the materializer thread. Returns 0 or an errno. */
static int make_visible(fuse_req_t req, long i)
{
    int err = 0;

    if (fuse_req_ctx(req)->pid != atomic_load(&g.mat_tid) || i < 0)
        return EROFS;
    pthread_mutex_lock(&g.lock);
    if (g.state[i] == PENDING)
        g.state[i] = VISIBLE;
    else
        err = EEXIST;
    pthread_mutex_unlock(&g.lock);
    return err;
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    struct fuse_entry_param e;
    long i = parent == FUSE_ROOT_ID ? parse_name(name) : -1;
    int err;

    (void)mode;
    (void)rdev;
    count(OP_MKNOD);
    err = make_visible(req, i);
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    fill_entry((fuse_ino_t)i + FIRST_INO, &e);
    fuse_reply_entry(req, &e);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    struct fuse_entry_param e;
    long i = parent == FUSE_ROOT_ID ? parse_name(name) : -1;
    int err;

    (void)mode;
    count(OP_CREATE);
    err = make_visible(req, i);
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    fill_entry((fuse_ino_t)i + FIRST_INO, &e);
    fi->keep_cache = 1; /* the bytes go into the page cache next */
    fi->noflush = 1;
    fuse_reply_create(req, &e, fi);
}

/* MINFS_LINK: file ino's second name, events/NAME, made by the materializer thread. */
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct fuse_entry_param e;
    long i = newparent == links_ino() ? parse_name(newname) : -1;
    int err = 0;

    count(OP_LINK);
    if (!g.link_mode || fuse_req_ctx(req)->pid != atomic_load(&g.mat_tid) || i < 0 ||
        (fuse_ino_t)i + FIRST_INO != ino) {
        fuse_reply_err(req, EROFS);
        return;
    }
    pthread_mutex_lock(&g.lock);
    if (g.state[i] != VISIBLE)
        err = ENOENT;
    else if (atomic_exchange(&g.linked[i], 1))
        err = EEXIST;
    pthread_mutex_unlock(&g.lock);
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    fill_entry(ino, &e);
    fuse_reply_entry(req, &e);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    long i = parent == FUSE_ROOT_ID ? parse_name(name) : -1;
    int err = 0;

    count(OP_UNLINK);
    pthread_mutex_lock(&g.lock);
    if (i >= 0 && g.state[i] == VISIBLE)
        g.state[i] = REMOVED;
    else
        err = ENOENT;
    pthread_mutex_unlock(&g.lock);
    fuse_reply_err(req, err);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    count(OP_OPEN);
    if (g.answer_open) {
        fi->keep_cache = 1;
        fi->noflush = 1;
        fuse_reply_open(req, fi);
        return;
    }
    fuse_reply_err(req, ENOSYS); /* no_open: the kernel stops sending open and release */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    count(OP_READ);
    if (off < 0 || (size_t)off >= g.size)
        fuse_reply_buf(req, NULL, 0);
    else
        fuse_reply_buf(req, g.content + off,
                       g.size - (size_t)off < size ? g.size - (size_t)off : size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    count(OP_FLUSH);
    fuse_reply_err(req, ENOSYS);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    count(OP_RELEASE);
    fuse_reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    count(OP_OPENDIR);
    fuse_reply_err(req, ENOSYS);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
    char *buf = malloc(size);
    size_t used = 0;
    char name[64];

    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (ino == links_ino()) { /* looked up, not listed */
        free(buf);
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    if (ino != FUSE_ROOT_ID) {
        free(buf);
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    pthread_mutex_lock(&g.lock);
    for (unsigned long i = off > 0 ? (unsigned long)off - 1 : 0; i < g.count; i++) {
        if (g.state[i] != VISIBLE)
            continue;
        struct fuse_entry_param e;
        size_t need;
        file_name((unsigned)i, name, sizeof(name));
        fill_entry((fuse_ino_t)i + FIRST_INO, &e);
        if (plus)
            need = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)i + 2);
        else
            need = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, (off_t)i + 2);
        if (need > size - used)
            break;
        used += need;
    }
    pthread_mutex_unlock(&g.lock);
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)fi;
    count(OP_READDIR);
    do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    (void)fi;
    count(OP_READDIRPLUS);
    do_readdir(req, ino, size, off, true);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
    (void)ino;
    (void)n;
    count(OP_FORGET);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t n, struct fuse_forget_data *f)
{
    (void)n;
    (void)f;
    count(OP_FORGET);
    fuse_reply_none(req);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    (void)ino;
    (void)name;
    (void)size;
    count(OP_OTHER);
    fuse_reply_err(req, ENOSYS);
}

/* Counted (Python's open() asks isatty() of every file); ENOTTY as the kernel makes of ENOSYS. */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
                     struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
                     size_t out_bufsz)
{
    (void)ino;
    (void)cmd;
    (void)arg;
    (void)fi;
    (void)flags;
    (void)in_buf;
    (void)in_bufsz;
    (void)out_bufsz;
    count(OP_IOCTL);
    fuse_reply_err(req, ENOTTY);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .mknod = op_mknod,
    .create = op_create,
    .link = op_link,
    .unlink = op_unlink,
    .open = op_open,
    .read = op_read,
    .flush = op_flush,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getxattr = op_getxattr,
    .ioctl = op_ioctl,
};

int main(int argc, char **argv)
{
    char *fargv[] = {argv[0], NULL};
    struct fuse_args args = FUSE_ARGS_INIT(1, fargv);
    int r = 1;

    if (argc != 5) {
        fprintf(stderr, "usage: minfs MOUNTPOINT COUNT SIZE STATSFILE\n");
        return 2;
    }
    g.mnt = argv[1];
    g.count = (unsigned)strtoul(argv[2], NULL, 10);
    g.size = strtoul(argv[3], NULL, 10);
    g.stats = argv[4];
    g.link_mode = getenv("MINFS_LINK") && strcmp(getenv("MINFS_LINK"), "1") == 0;
    g.answer_open = g.link_mode || (getenv("MINFS_OPEN") && strcmp(getenv("MINFS_OPEN"), "1") == 0);
    g.state = calloc(g.count ? g.count : 1, 1);
    g.linked = calloc(g.count ? g.count : 1, sizeof(*g.linked));
    g.content = malloc(g.size ? g.size : 1);
    if (!g.state || !g.linked || !g.content)
        return 1;
    memset(g.content, 'x', g.size);
    if (g.size)
        g.content[g.size - 1] = '\n';

    g.se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
    if (!g.se)
        return 1;
    if (fuse_set_signal_handlers(g.se) != 0 || fuse_session_mount(g.se, g.mnt) != 0)
        goto out;
    /* INIT is answered by the loop; the first mknod waits in the kernel until then. */
    if (pthread_create(&g.mat, NULL, materializer, NULL) == 0)
        g.mat_started = true;
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, 16);
    r = fuse_session_loop_mt(g.se, cfg) < 0;
    fuse_loop_cfg_destroy(cfg);
    fuse_session_unmount(g.se);
    if (g.mat_started)
        pthread_join(g.mat, NULL);
    write_stats(g.stats, NULL);
out:
    fuse_remove_signal_handlers(g.se);
    fuse_session_destroy(g.se);
    free(g.state);
    free(g.linked);
    free(g.content);
    return r;
}
