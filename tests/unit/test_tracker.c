/* test_tracker: the durable ack journal, including a kill -9 in the middle of acking. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracker.h"
#include "twin/tracker_holder.h"
#include "unit.h"

static char dir[64];
struct tracker *held; /* not static: the store must not be optimized away */
static char path[256];

static void set_path(const char *name)
{
    snprintf(path, sizeof(path), "%s/state/sub/%s", dir, name);
}

static off_t file_size(const char *p)
{
    struct stat st;
    CHECK(stat(p, &st) == 0);
    return st.st_size;
}

static void append_raw(const char *p, const char *text)
{
    int fd = open(p, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static struct tracker *open_ok(void)
{
    struct tracker *t = NULL;
    int r = tracker_open(path, &t);
    if (r != 0)
        fprintf(stderr, "tracker_open(%s): %s\n", path, strerror(-r));
    CHECK_INT_EQ(r, 0);
    return t;
}

static void test_basic(void)
{
    struct tracker *t;
    struct stat st;

    set_path("basic");
    t = open_ok();
    CHECK(stat(path, &st) == 0);
    CHECK_INT_EQ(st.st_mode & 0777, 0600);
    CHECK_INT_EQ(tracker_watermark(t), 0);
    CHECK(tracker_is_acked(t, 0));
    CHECK(!tracker_is_acked(t, 1));
    CHECK_INT_EQ(tracker_ack(t, 0), -EALREADY);
    CHECK_INT_EQ(tracker_ack(t, 5), 0);
    CHECK_INT_EQ(tracker_ack(t, 5), -EALREADY);
    CHECK_INT_EQ(tracker_ack(t, 7), 0);
    CHECK(tracker_is_acked(t, 5));
    CHECK(!tracker_is_acked(t, 4));
    CHECK_INT_EQ(tracker_acked_above(t), 2);
    CHECK_INT_EQ(tracker_advance(t, 3), 0);
    CHECK_INT_EQ(tracker_watermark(t), 3);
    CHECK_INT_EQ(tracker_advance(t, 2), 0); /* never moves down */
    CHECK_INT_EQ(tracker_watermark(t), 3);
    CHECK_INT_EQ(tracker_ack(t, 2), -EALREADY);
    CHECK(tracker_is_acked(t, 1));
    CHECK_INT_EQ(tracker_advance(t, 5), 0);
    CHECK_INT_EQ(tracker_acked_above(t), 1);
    CHECK(tracker_is_acked(t, 7));
    CHECK_INT_EQ(tracker_ack(t, 9), 0);
    CHECK_INT_EQ(tracker_flush(t), 0);
    tracker_close(t);

    t = open_ok();
    CHECK_INT_EQ(tracker_watermark(t), 5);
    CHECK(tracker_is_acked(t, 7));
    CHECK(tracker_is_acked(t, 9));
    CHECK(!tracker_is_acked(t, 6));
    CHECK(!tracker_is_acked(t, 8));
    CHECK_INT_EQ(tracker_acked_above(t), 2);
    /* a watermark moved without any later ack reaches the disk at close */
    CHECK_INT_EQ(tracker_advance(t, 100), 0);
    CHECK_INT_EQ(tracker_acked_above(t), 0);
    tracker_close(t);
    t = open_ok();
    CHECK_INT_EQ(tracker_watermark(t), 100);
    CHECK_INT_EQ(tracker_acked_above(t), 0);
    tracker_close(t);
    tracker_close(NULL);
}

static void test_busy(void)
{
    struct tracker *t, *t2 = NULL;
    pid_t pid;
    int status;

    set_path("busy");
    t = open_ok();
    held = t; /* reachable from the forked child too (valgrind checks its leaks at _exit) */
    CHECK_INT_EQ(tracker_open(path, &t2), -EBUSY);
    CHECK(t2 == NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct tracker *c = NULL;
        _exit(tracker_open(path, &c) == -EBUSY ? 0 : 1);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* still busy after a compaction swapped the file under the path */
    CHECK_INT_EQ(tracker_ack(t, 3), 0);
    CHECK_INT_EQ(tracker_compact(t), 0);
    CHECK_INT_EQ(tracker_open(path, &t2), -EBUSY);
    tracker_close(t);
    t = open_ok();
    CHECK(tracker_is_acked(t, 3));
    tracker_close(t);
}

static void test_torn_tail(void)
{
    struct tracker *t;
    off_t good;

    set_path("torn");
    t = open_ok();
    CHECK_INT_EQ(tracker_ack(t, 10), 0);
    CHECK_INT_EQ(tracker_ack(t, 11), 0);
    tracker_close(t);
    good = file_size(path);

    /* "a 12" without its newline may be a torn "a 123": ignored and cut off */
    append_raw(path, "a 12");
    t = open_ok();
    CHECK(tracker_is_acked(t, 10));
    CHECK(tracker_is_acked(t, 11));
    CHECK(!tracker_is_acked(t, 12));
    CHECK_INT_EQ(file_size(path), good);
    CHECK_INT_EQ(tracker_ack(t, 13), 0);
    tracker_close(t);
    t = open_ok();
    CHECK(tracker_is_acked(t, 13));
    CHECK(!tracker_is_acked(t, 12));
    tracker_close(t);

    /* garbage (a power loss can leave NULs): everything from it on is dropped */
    good = file_size(path);
    append_raw(path, "a 1x\na 20\n");
    t = open_ok();
    CHECK(!tracker_is_acked(t, 20));
    CHECK(tracker_is_acked(t, 13));
    tracker_close(t);
    CHECK_INT_EQ(file_size(path), good);
    {
        int fd = open(path, O_WRONLY | O_APPEND);
        static const char zeros[16];
        CHECK(fd >= 0);
        CHECK(write(fd, zeros, sizeof(zeros)) == (ssize_t)sizeof(zeros));
        close(fd);
    }
    t = open_ok();
    CHECK(tracker_is_acked(t, 13));
    CHECK_INT_EQ(tracker_ack(t, 21), 0);
    tracker_close(t);
    t = open_ok();
    CHECK(tracker_is_acked(t, 21));
    tracker_close(t);

    /* other garbled forms */
    const char *bad[] = {"a\n",      "a -1\n",  "x 5\n",   "a  5\n",   "a 0\n",
                         "a 5 \n",   "r 5\n",   "r 5 3\n", "r 0 3\n",  "r 5 6 7\n",
                         "r 5  6\n", "a 5 6\n", "w 5 6\n", "r 5 6 \n", "w 99999999999999999999\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        good = file_size(path);
        append_raw(path, bad[i]);
        append_raw(path, "a 500\n");
        t = open_ok();
        CHECK(!tracker_is_acked(t, 500));
        CHECK(tracker_is_acked(t, 21));
        tracker_close(t);
        CHECK_INT_EQ(file_size(path), good);
    }
}

static void test_header(void)
{
    struct tracker *t = NULL;
    int fd;

    /* not a journal: left alone */
    set_path("foreign");
    t = open_ok();
    tracker_close(t);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK(write(fd, "{\"json\": 1}\n", 12) == 12);
    close(fd);
    t = NULL;
    CHECK_INT_EQ(tracker_open(path, &t), -EINVAL);
    CHECK_INT_EQ(file_size(path), 12);

    /* a torn header (crash while creating): a fresh journal */
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK(write(fd, "twinfs-tr", 9) == 9);
    close(fd);
    t = open_ok();
    CHECK_INT_EQ(tracker_watermark(t), 0);
    CHECK_INT_EQ(tracker_ack(t, 1), 0);
    tracker_close(t);
    t = open_ok();
    CHECK(tracker_is_acked(t, 1));
    tracker_close(t);

    /* bad paths */
    CHECK_INT_EQ(tracker_open("", &t), -EINVAL);
    CHECK(tracker_open("/proc/no/such/dir/tracker", &t) < 0);
}

static void test_compaction(void)
{
    struct tracker *t;
    char tmp[300];
    uint64_t s;

    set_path("compact");
    t = open_ok();
    /* acks that the watermark follows: the live state stays tiny while the journal grows */
    for (s = 1; s <= 200000; s++) {
        CHECK_INT_EQ(tracker_ack(t, s), 0);
        if (s % 10 == 0)
            CHECK_INT_EQ(tracker_advance(t, s - 5), 0);
    }
    CHECK(file_size(path) < 1024 * 1024 + 64);
    CHECK_INT_EQ(tracker_watermark(t), 199995);
    CHECK_INT_EQ(tracker_acked_above(t), 5);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    tracker_close(t);
    t = open_ok();
    CHECK_INT_EQ(tracker_watermark(t), 199995);
    for (s = 199996; s <= 200000; s++)
        CHECK(tracker_is_acked(t, s));
    CHECK(!tracker_is_acked(t, 200001));
    CHECK_INT_EQ(tracker_acked_above(t), 5);

    /* an explicit compaction keeps a sparse set intact */
    for (s = 300000; s < 310000; s += 3)
        CHECK_INT_EQ(tracker_ack(t, s), 0);
    CHECK_INT_EQ(tracker_compact(t), 0);
    CHECK_INT_EQ(tracker_ack(t, 400000), 0); /* appends after a compaction go to the new file */
    tracker_close(t);
    t = open_ok();
    for (s = 300000; s < 310000; s++)
        CHECK(tracker_is_acked(t, s) == ((s % 3) == 0));
    CHECK(tracker_is_acked(t, 400000));
    CHECK_INT_EQ(tracker_acked_above(t), 5 + 3334 + 1);
    tracker_close(t);
}

/* Version 1 journals (no ranges) are read; range lines in any order and overlapping merge. */
static void test_ranges_and_v1(void)
{
    struct tracker *t;
    int fd;

    set_path("v1");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    static const char v1[] = "twinfs-tracker 1\nw 4\na 7\na 9\na 3\n";
    CHECK(write(fd, v1, sizeof(v1) - 1) == (ssize_t)(sizeof(v1) - 1));
    close(fd);
    t = open_ok();
    CHECK_INT_EQ(tracker_watermark(t), 4);
    CHECK(!tracker_is_acked(t, 5) && tracker_is_acked(t, 7) && tracker_is_acked(t, 9));
    CHECK_INT_EQ(tracker_acked_above(t), 2);
    CHECK_INT_EQ(tracker_ack(t, 8), 0);
    tracker_close(t);
    t = open_ok();
    CHECK_INT_EQ(tracker_acked_above(t), 3);
    tracker_close(t);

    set_path("ranges");
    t = open_ok();
    tracker_close(t);
    append_raw(path, "r 20 30\na 12\nr 15 22\na 31\nr 40 40\nw 13\n");
    t = open_ok();
    CHECK_INT_EQ(tracker_watermark(t), 13);
    for (uint64_t s = 1; s <= 50; s++)
        CHECK(tracker_is_acked(t, s) == (s <= 13 || (s >= 15 && s <= 31) || s == 40));
    CHECK_INT_EQ(tracker_acked_above(t), 17 + 1);
    CHECK_INT_EQ(tracker_ack(t, 25), -EALREADY);
    CHECK_INT_EQ(tracker_ack(t, 14), 0);
    CHECK_INT_EQ(tracker_compact(t), 0);
    tracker_close(t);
    t = open_ok();
    for (uint64_t s = 1; s <= 50; s++)
        CHECK(tracker_is_acked(t, s) == (s <= 31 || s == 40));
    tracker_close(t);
}

/* One event never acked while 300k later ones are: the watermark stays below it, and the acks
 * above must not cost a line (and memory) each. A set of single seqs wrote 300k lines here. */
static void test_one_stuck_event(void)
{
    struct tracker *t;

    set_path("stuck");
    t = open_ok();
    for (uint64_t s = 2; s <= 300001; s++)
        CHECK_INT_EQ(tracker_ack(t, s), 0);
    CHECK_INT_EQ(tracker_watermark(t), 0);
    CHECK_INT_EQ(tracker_acked_above(t), 300000);
    CHECK_INT_EQ(tracker_compact(t), 0);
    CHECK(file_size(path) < 64);
    tracker_close(t);
    t = open_ok();
    CHECK(!tracker_is_acked(t, 1));
    CHECK(tracker_is_acked(t, 2) && tracker_is_acked(t, 300001) && !tracker_is_acked(t, 300002));
    CHECK_INT_EQ(tracker_acked_above(t), 300000);
    /* the automatic compaction keeps the journal near 1 MiB, not growing with the acks */
    for (uint64_t s = 300002; s <= 600001; s++)
        CHECK_INT_EQ(tracker_ack(t, s), 0);
    CHECK(file_size(path) < 1024 * 1024 + 64);
    CHECK_INT_EQ(tracker_ack(t, 1), 0);
    CHECK_INT_EQ(tracker_advance(t, 600001), 0);
    CHECK_INT_EQ(tracker_acked_above(t), 0);
    tracker_close(t);

    /* events between records that need no ack: noted as handled, the acks stay one range;
     * the notes are not written by themselves */
    set_path("stuck-handled");
    t = open_ok();
    for (uint64_t s = 2; s <= 20001; s++) {
        off_t before = file_size(path);
        if (s % 2 == 0) {
            CHECK_INT_EQ(tracker_ack(t, s), 0);
        } else {
            CHECK_INT_EQ(tracker_note_handled(t, s), 0);
            CHECK_INT_EQ(file_size(path), before);
        }
    }
    CHECK_INT_EQ(tracker_compact(t), 0);
    CHECK(file_size(path) < 64);
    CHECK(!tracker_is_acked(t, 1) && tracker_is_acked(t, 20001));
    CHECK_INT_EQ(tracker_advance(t, 5), 0);
    CHECK_INT_EQ(tracker_note_handled(t, 3), 0); /* below the watermark: nothing to note */
    tracker_close(t);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_many(void)
{
    const char *env = getenv("TRACKER_MANY");
    uint64_t n = env ? strtoull(env, NULL, 10) : 1000000;
    struct tracker *t;
    double t0;

    set_path("many");
    t = open_ok();
    t0 = now_s();
    /* out of order, none below the watermark: all stay in the set */
    for (uint64_t s = n; s >= 1; s--)
        CHECK_INT_EQ(tracker_ack(t, s * 2), 0);
    fprintf(stderr, "   %llu acks in %.2f s\n", (unsigned long long)n, now_s() - t0);
    CHECK_INT_EQ(tracker_acked_above(t), n);
    tracker_close(t);
    t0 = now_s();
    t = open_ok();
    fprintf(stderr, "   reopened in %.2f s\n", now_s() - t0);
    CHECK_INT_EQ(tracker_acked_above(t), n);
    for (uint64_t s = 1; s <= 2 * n + 1; s++)
        CHECK(tracker_is_acked(t, s) == (s % 2 == 0));
    /* the watermark sweeps through: the set empties */
    CHECK_INT_EQ(tracker_advance(t, n), 0);
    CHECK_INT_EQ(tracker_acked_above(t), n / 2);
    CHECK_INT_EQ(tracker_advance(t, 2 * n), 0);
    CHECK_INT_EQ(tracker_acked_above(t), 0);
    tracker_close(t);
}

/* A full disk in the middle of a line (RLIMIT_FSIZE makes write(2) short): the ack fails,
 * the torn bytes are cut off again, and later acks are not lost behind them. */
static void test_short_write(void)
{
    pid_t pid;
    int status;
    struct tracker *t;

    set_path("short");
    t = open_ok();
    CHECK_INT_EQ(tracker_ack(t, 1), 0);
    tracker_close(t);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        struct tracker *c = NULL;
        int ok = 1;
        signal(SIGXFSZ, SIG_IGN);
        if (tracker_open(path, &c) != 0)
            _exit(2);
        getrlimit(RLIMIT_FSIZE, &rl);
        struct rlimit small = {.rlim_cur = (rlim_t)file_size(path) + 4, .rlim_max = rl.rlim_max};
        setrlimit(RLIMIT_FSIZE, &small);
        ok &= tracker_ack(c, 123456789) < 0;
        ok &= !tracker_is_acked(c, 123456789);
        setrlimit(RLIMIT_FSIZE, &rl);
        ok &= tracker_ack(c, 7) == 0;
        tracker_close(c);
        _exit(ok ? 0 : 1);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK_INT_EQ(WEXITSTATUS(status), 0);
    t = open_ok();
    CHECK(tracker_is_acked(t, 1));
    CHECK(tracker_is_acked(t, 7));
    CHECK(!tracker_is_acked(t, 123456789));
    tracker_close(t);
}

/* The contract: once tracker_ack returns, the ack survives a kill -9. The child reports each
 * seq on a pipe right after its ack returned; the parent kills it mid-stream. */
static void test_kill9(void)
{
    int fds[2];
    pid_t pid;
    uint64_t got[200000];
    size_t n = 0;
    struct tracker *t;
    int status;

    set_path("kill9");
    CHECK(pipe(fds) == 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct tracker *c = NULL;
        close(fds[0]);
        if (tracker_open(path, &c) != 0)
            _exit(2);
        for (uint64_t s = 1;; s++) {
            if (s % 3 == 0)
                continue; /* leave holes so the set above the watermark is not empty */
            if (tracker_ack(c, s) != 0)
                _exit(3);
            if (s % 50 == 1 && s > 40)
                tracker_advance(c, s - 40);
            if (write(fds[1], &s, sizeof(s)) != (ssize_t)sizeof(s))
                _exit(4);
        }
    }
    close(fds[1]);
    while (n < 20000) {
        ssize_t k = read(fds[0], &got[n], sizeof(got[n]));
        CHECK(k == (ssize_t)sizeof(got[n])); /* 8-byte pipe writes are atomic */
        n++;
    }
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* seqs written to the pipe before the kill were acked too */
    for (;;) {
        ssize_t k = read(fds[0], &got[n], sizeof(got[n]));
        if (k <= 0)
            break;
        CHECK(k == (ssize_t)sizeof(got[n]));
        n++;
        CHECK(n < sizeof(got) / sizeof(got[0]));
    }
    close(fds[0]);
    fprintf(stderr, "   child reported %zu acks before the kill\n", n);
    t = open_ok();
    for (size_t i = 0; i < n; i++) {
        if (!tracker_is_acked(t, got[i]))
            fprintf(stderr, "seq %llu lost\n", (unsigned long long)got[i]);
        CHECK(tracker_is_acked(t, got[i]));
    }
    /* the holes were never acked, except those below a durable watermark */
    uint64_t w = tracker_watermark(t);
    for (uint64_t s = w + 1; s < got[n - 1]; s++)
        if (s % 3 == 0)
            CHECK(!tracker_is_acked(t, s));
    tracker_close(t);
}

static void rm_rf(const char *p)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    CHECK(system(cmd) == 0);
}

/* Writes text to a new file at p (mode 0600). */
static void write_new(const char *p, const char *text)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static void check_content(const char *p, const char *text)
{
    char buf[256];
    int fd = open(p, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    CHECK(n >= 0);
    buf[n] = '\0';
    CHECK_STR_EQ(buf, text);
}

/* Files named like a compaction's temporary file of path in its directory. */
static int count_tmp_files(void)
{
    char d[256], prefix[300];
    const char *slash = strrchr(path, '/');
    struct dirent *e;
    int n = 0;

    snprintf(d, sizeof(d), "%.*s", (int)(slash - path), path);
    snprintf(prefix, sizeof(prefix), "%s.tmp-", slash + 1);
    DIR *dd = opendir(d);
    CHECK(dd != NULL);
    while ((e = readdir(dd)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(dd);
    return n;
}

/* tracker_open refuses p with -EPERM, and tracker_check says why: "<what>: <reason...>". */
static void refused(const char *p, const char *what, const char *reason)
{
    struct tracker *t = NULL;
    char why[512], head[512];

    CHECK_INT_EQ(tracker_open(p, &t), -EPERM);
    CHECK(t == NULL);
    CHECK_INT_EQ(tracker_check(p, why, sizeof(why)), -EPERM);
    snprintf(head, sizeof(head), "%s: ", what);
    if (strncmp(why, head, strlen(head)) != 0 || !strstr(why, reason)) {
        fprintf(stderr, "why: \"%s\", expected \"%s%s...\"\n", why, head, reason);
        exit(1);
    }
}

/* A symlink planted at the compaction's old temporary name: compaction neither truncates nor
 * writes through it, and the journal stays a file of its own. */
static void test_compaction_does_not_follow_links(void)
{
    char victim[300], tmp[300];
    struct tracker *t;
    struct stat st;

    set_path("planted");
    snprintf(victim, sizeof(victim), "%s/victim", dir);
    write_new(victim, "precious\n");
    t = open_ok();
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    CHECK(symlink(victim, tmp) == 0);
    for (uint64_t s = 1; s <= 100; s += 2)
        CHECK_INT_EQ(tracker_ack(t, s), 0);
    CHECK_INT_EQ(tracker_compact(t), 0);
    CHECK_INT_EQ(tracker_ack(t, 1000), 0);
    tracker_close(t);
    check_content(victim, "precious\n");
    CHECK_INT_EQ(count_tmp_files(), 0); /* the compaction's own file went by its rename */
    CHECK(lstat(path, &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    t = open_ok();
    CHECK(tracker_is_acked(t, 99));
    CHECK(!tracker_is_acked(t, 98));
    CHECK(tracker_is_acked(t, 1000));
    tracker_close(t);
    check_content(victim, "precious\n");
    unlink(tmp);
    unlink(victim);

    /* a compaction cut short by a crash leaves its file; the next open removes it, and
     * nothing else of the directory's */
    char stale[320], other[320];
    snprintf(stale, sizeof(stale), "%s.tmp-0123456789abcdef", path);
    snprintf(other, sizeof(other), "%s.tmp-keep", path);
    write_new(stale, "junk\n");
    write_new(other, "keep\n");
    t = open_ok();
    CHECK(access(stale, F_OK) != 0);
    check_content(other, "keep\n");
    CHECK(tracker_is_acked(t, 1000));
    tracker_close(t);
    unlink(other);
}

/* A journal that is a symlink, owned by another user or writable by others is not ours. */
static void test_foreign_journal_refused(void)
{
    char real[300];
    struct tracker *t;

    /* a journal of someone's, linked from where ours would be */
    set_path("real");
    snprintf(real, sizeof(real), "%s", path);
    t = open_ok();
    CHECK_INT_EQ(tracker_ack(t, 5), 0);
    tracker_close(t);
    set_path("linked");
    CHECK(symlink(real, path) == 0);
    refused(path, path, "a symbolic link");
    CHECK(unlink(path) == 0);

    /* another user's journal */
    set_path("foreign");
    t = open_ok();
    CHECK_INT_EQ(tracker_ack(t, 5), 0);
    tracker_close(t);
    CHECK(chown(path, 65534, 65534) == 0);
    refused(path, path, "owned by uid 65534, not by uid 0");
    CHECK(chown(path, 0, 0) == 0);
    t = open_ok();
    CHECK(tracker_is_acked(t, 5));
    tracker_close(t);

    /* ours, but anyone could have written it */
    CHECK(chmod(path, 0622) == 0);
    refused(path, path, "writable by group or others (mode 0622)");
    CHECK(chmod(path, 0600) == 0);

    /* not a file */
    set_path("fifo");
    CHECK(mkfifo(path, 0600) == 0);
    refused(path, path, "not a regular file");
    CHECK(unlink(path) == 0);
}

/* The directories on the way: owned by us or root; not writable by group or others unless
 * sticky, and the journal's own directory not even then. */
static void test_insecure_directories_refused(void)
{
    char d[300], p[400], link[300];
    struct tracker *t = NULL;
    struct stat st;

    snprintf(d, sizeof(d), "%s/gw", dir);
    CHECK(mkdir(d, 0700) == 0);
    snprintf(p, sizeof(p), "%s/tracker", d);
    CHECK(chmod(d, 0770) == 0);
    refused(p, d, "directory writable by group or others (mode 0770)");
    CHECK(chmod(d, 0777) == 0);
    refused(p, d, "directory writable by group or others (mode 0777)");
    CHECK(chmod(d, 01777) == 0); /* sticky: others still create names in it */
    refused(p, d, "directory writable by group or others (mode 1777)");
    CHECK(access(p, F_OK) != 0); /* nothing created on the way to a refusal */

    /* a sticky ancestor is fine (like /tmp); a writable one is not */
    snprintf(p, sizeof(p), "%s/sub/deeper/tracker", d);
    CHECK_INT_EQ(tracker_open(p, &t), 0);
    tracker_close(t);
    snprintf(p, sizeof(p), "%s/sub", d);
    CHECK(stat(p, &st) == 0);
    CHECK_INT_EQ(st.st_mode & 07777, 0700); /* made by the tracker */
    snprintf(p, sizeof(p), "%s/sub/deeper/tracker", d);
    CHECK(chmod(d, 0777) == 0);
    refused(p, d, "directory writable by group or others (mode 0777)");
    CHECK(chmod(d, 0755) == 0);

    /* an ancestor owned by another user */
    CHECK(chown(d, 65534, 65534) == 0);
    refused(p, d, "directory owned by uid 65534");
    CHECK(chown(d, 0, 0) == 0);
    CHECK_INT_EQ(tracker_open(p, &t), 0);
    tracker_close(t);

    /* a symlink on the way is followed when it and its directory are trusted, and the
     * directories it leads to are checked too */
    snprintf(link, sizeof(link), "%s/link", dir);
    CHECK(symlink("gw/sub", link) == 0);
    snprintf(p, sizeof(p), "%s/link/deeper/tracker", dir);
    CHECK_INT_EQ(tracker_open(p, &t), 0);
    CHECK(tracker_is_acked(t, 0));
    tracker_close(t);
    CHECK(chmod(d, 0777) == 0);
    refused(p, d, "directory writable");
    CHECK(chmod(d, 0755) == 0);
    /* relative paths and ".." resolve like any other */
    char cwd[256];
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    CHECK(chdir(d) == 0);
    CHECK_INT_EQ(tracker_open("../gw/sub/./deeper/tracker", &t), 0);
    CHECK(tracker_is_acked(t, 0));
    tracker_close(t);
    CHECK(chdir(cwd) == 0);
    CHECK(lchown(link, 65534, 65534) == 0);
    refused(p, link, "symbolic link owned by uid 65534");
    CHECK(unlink(link) == 0);
}

/* The holder's note: written in one step, read back and replaced; one per journal of a
 * directory; kept across compaction; no file added next to the journal. */
static void test_holder_note(void)
{
    char buf[TRACKER_HOLDER_MAX + 1], big[TRACKER_HOLDER_MAX + 2], other[400], d[100];
    struct tracker *t, *t2;

    snprintf(d, sizeof(d), "%s/notes", dir);
    snprintf(path, sizeof(path), "%s/held", d);
    CHECK_INT_EQ(tracker_holder_read(path, buf, sizeof(buf)), -ENOENT); /* no directory */
    CHECK_INT_EQ(tracker_holder_write(path, "pid 1\n"), -ENOENT);
    t = open_ok();
    CHECK_INT_EQ(tracker_holder_read(path, buf, sizeof(buf)), -ENOENT); /* no note */
    CHECK_INT_EQ(tracker_holder_write(path, "pid 1\nmount 2\n"), 0);
    CHECK_INT_EQ(tracker_holder_read(path, buf, sizeof(buf)), 14);
    CHECK_STR_EQ(buf, "pid 1\nmount 2\n");
    CHECK_INT_EQ(tracker_holder_write(path, "pid 3\n"), 0);
    CHECK_INT_EQ(tracker_holder_read(path, buf, 4), 3); /* cut to the buffer */
    CHECK_STR_EQ(buf, "pid");
    CHECK_INT_EQ(tracker_holder_read(path, buf, sizeof(buf)), 6);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_INT_EQ(tracker_holder_write(path, big), -EMSGSIZE);
    CHECK_INT_EQ(tracker_holder_read(path, buf, sizeof(buf)), 6); /* the old note stays */

    /* a second journal in the same directory has a note of its own, even one whose name is
     * too long to be part of an attribute's name */
    snprintf(other, sizeof(other), "%s/%0250d", d, 7);
    CHECK_INT_EQ(tracker_open(other, &t2), 0);
    CHECK_INT_EQ(tracker_holder_read(other, buf, sizeof(buf)), -ENOENT);
    CHECK_INT_EQ(tracker_holder_write(other, "pid 8\n"), 0);
    CHECK_INT_EQ(tracker_holder_read(other, buf, sizeof(buf)), 6);
    CHECK_STR_EQ(buf, "pid 8\n");
    CHECK_INT_EQ(tracker_holder_read(path, buf, sizeof(buf)), 6);
    CHECK_STR_EQ(buf, "pid 3\n");
    tracker_close(t2);

    /* compaction replaces the journal's file; the note stays */
    for (uint64_t s = 1; s <= 100; s += 2)
        CHECK_INT_EQ(tracker_ack(t, s), 0);
    CHECK_INT_EQ(tracker_compact(t), 0);
    CHECK_INT_EQ(tracker_holder_read(path, buf, sizeof(buf)), 6);
    CHECK_STR_EQ(buf, "pid 3\n");
    tracker_close(t);

    /* nothing but the two journals in the directory */
    DIR *dd = opendir(d);
    struct dirent *e;
    int files = 0;
    CHECK(dd != NULL);
    while ((e = readdir(dd)) != NULL)
        files += e->d_name[0] != '.';
    closedir(dd);
    CHECK_INT_EQ(files, 2);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_tracker.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    RUN(test_basic);
    RUN(test_busy);
    RUN(test_torn_tail);
    RUN(test_header);
    RUN(test_compaction);
    RUN(test_ranges_and_v1);
    RUN(test_one_stuck_event);
    RUN(test_short_write);
    RUN(test_kill9);
    RUN(test_many);
    RUN(test_compaction_does_not_follow_links);
    RUN(test_foreign_journal_refused);
    RUN(test_insecure_directories_refused);
    RUN(test_holder_note);
    rm_rf(dir);
    return 0;
}
