/* follower_example: the C counterpart of the seed's FollowerExample.
 *
 *   follower_example URL TRACKER [--t2 ASSET TYPE NAME [--t2-out FILE]] [--token-file F]
 *                    [--max-events N] [--no-ack] [--max-pending N] [--start now|beginning]
 *                    [--schemas DIR] [--heartbeat S] [--no-t2] [--t2-timeout S]
 *
 * It follows the twin at URL, keeping its acks in TRACKER. Every event goes through a table of
 * named handlers (the NamedEventMixin) or the unmatched fallback, then is acked. One T2 request
 * is made when --t2 is given, and each failure is reported by name. stdout carries one line
 * per happening, for scripts and tests:
 *
 *   asset_created A | asset_deleted A
 *   event SEQ ASSET OFFSET NAME HANDLER       HANDLER is the named handler or "unmatched"
 *   decode_error SEQ REASON                   after the event line, when data did not decode
 *   ack SEQ                                   printed only after follower_ack returned 0
 *   ack_failed SEQ ERRNO_NAME
 *   internal eof_replay | internal link_up | internal link_down
 *   t2 ok MIME BYTES | t2 error TWIN_ERROR_NAME ERRNO
 *   ready | stopped
 *
 * With --max-events N, events after the N-th are left alone (not shown, not acked: they come
 * back at the next start) and the program stops. Log lines go to stderr. */
/* strerrorname_np is a GNU extension; the build defines _GNU_SOURCE, a user's cc may not. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "twin/dispatch.h"
#include "twin/follower.h"
#include "twin/runner.h"
#include "twin/t2_stream.h"

struct example {
    struct follower_config cfg;
    struct follower *f;
    const char *t2_asset, *t2_type, *t2_name, *t2_out;
    unsigned long max_events; /* 0: no limit */
    bool no_ack;
    atomic_ulong events;
    char *token;
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One whole line to stdout, flushed: a test reading the pipe sees it at once. */
static void out(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&out_lock);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

static const char *errno_name(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* The named handlers: what a real integration would do per event type. */
static void do_newdocset(void *u, const struct follower_event *ev)
{
    (void)u;
    json_t *title = json_object_get(ev->data_json, "title");
    fprintf(stderr, "do_newdocset: %s/%" PRIu64 ": docset titled %s\n", ev->asset, ev->offset,
            json_is_string(title) ? json_string_value(title) : "?");
}

static void do_sensorreading(void *u, const struct follower_event *ev)
{
    (void)u;
    json_t *v = json_object_get(ev->data_json, "value");
    fprintf(stderr, "do_sensorreading: %s/%" PRIu64 ": value %g\n", ev->asset, ev->offset,
            json_is_number(v) ? json_number_value(v) : 0.0);
}

static void do_maintenancedue(void *u, const struct follower_event *ev)
{
    (void)u;
    json_t *task = json_object_get(ev->data_json, "task");
    fprintf(stderr, "do_maintenancedue: %s/%" PRIu64 ": %s\n", ev->asset, ev->offset,
            json_is_string(task) ? json_string_value(task) : "?");
}

static void on_event_unmatched(void *u, const struct follower_event *ev)
{
    (void)u;
    fprintf(stderr, "unmatched: %s/%" PRIu64 " %s v%d\n", ev->asset, ev->offset, ev->name,
            ev->version);
}

static const struct dispatch_entry handlers[] = {
    {"NewDocSet", do_newdocset},
    {"SensorReading", do_sensorreading},
    {"MaintenanceDue", do_maintenancedue},
};

static void on_asset_created(void *u, const char *asset)
{
    (void)u;
    out("asset_created %s", asset);
}

static void on_asset_deleted(void *u, const char *asset)
{
    (void)u;
    out("asset_deleted %s", asset);
}

static void on_event(void *u, const struct follower_event *ev)
{
    struct example *ex = u;
    unsigned long n = atomic_fetch_add(&ex->events, 1) + 1;
    if (ex->max_events && n > ex->max_events)
        return; /* past the limit: left unacked, delivered again next time */
    int named = dispatch_event(handlers, sizeof(handlers) / sizeof(handlers[0]), on_event_unmatched,
                               ex, ev);
    out("event %" PRIu64 " %s %" PRIu64 " %s %s", ev->seq, ev->asset, ev->offset, ev->name,
        named ? "named" : "unmatched");
    if (!ev->data_json)
        out("decode_error %" PRIu64 " %s", ev->seq, ev->decode_error ? ev->decode_error : "?");
    if (ex->no_ack)
        return;
    int r = follower_ack(ex->f, ev->seq, ev->asset, ev->offset);
    if (r == 0)
        out("ack %" PRIu64, ev->seq);
    else
        out("ack_failed %" PRIu64 " %s", ev->seq, errno_name(-r));
}

static void on_event_internal(void *u, enum follower_internal what)
{
    (void)u;
    static const char *const names[] = {"eof_replay", "link_up", "link_down"};
    out("internal %s", names[what]);
}

static void on_notice(void *u, int err, const char *message)
{
    (void)u;
    fprintf(stderr, "notice: %s (%s)\n", message, errno_name(-err));
}

/* One T2 request, every failure handled: the seed's t2_request loop. */
static void t2_request(struct example *ex)
{
    struct t2_stream *s = NULL;
    enum twin_error e = TWIN_OK;
    int r = follower_t2_request(ex->f, ex->t2_asset, ex->t2_type, ex->t2_name, strlen(ex->t2_name),
                                0, &s, &e);
    if (r < 0) {
        /* AssetUnknown, REQ_UNHANDLED, RESOURCE_UNKNOWN, T2Unavailable, T2Timeout,
         * NotConnected, ShutdownRequested: each has its own name. */
        out("t2 error %s %s", twin_error_name(e), errno_name(-r));
        return;
    }
    int fd = -1;
    if (ex->t2_out) {
        fd = open(ex->t2_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            fprintf(stderr, "t2: cannot write %s: %s\n", ex->t2_out, strerror(errno));
    }
    static char buf[256 * 1024];
    unsigned long long total = 0;
    ssize_t n;
    while ((n = t2_stream_read(s, buf, sizeof(buf))) > 0) {
        total += (unsigned long long)n;
        for (ssize_t off = 0; fd >= 0 && off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                break;
            off += w;
        }
    }
    if (fd >= 0)
        close(fd);
    if (n < 0)
        out("t2 error %s %s", n == -EIO ? "CUT" : "SHUTDOWN", errno_name((int)-n));
    else
        out("t2 ok %s %llu", t2_stream_mime(s), total);
    t2_stream_close(s);
}

static int on_startup(void *u)
{
    struct example *ex = u;
    static const struct follower_callbacks cb_template = {
        .on_asset_created = on_asset_created,
        .on_asset_deleted = on_asset_deleted,
        .on_event = on_event,
        .on_event_internal = on_event_internal,
        .on_notice = on_notice,
    };
    struct follower_callbacks cb = cb_template;
    cb.userdata = ex;
    int r = follower_new(&ex->cfg, &cb, &ex->f);
    if (r < 0) {
        fprintf(stderr, "follower_example: %s: %s\n", ex->cfg.url, strerror(-r));
        return r;
    }
    r = follower_start(ex->f);
    if (r < 0) {
        fprintf(stderr, "follower_example: cannot follow %s: %s\n", ex->cfg.url, strerror(-r));
        return r;
    }
    out("ready");
    return 0;
}

static int example_main(struct runner *r, void *u)
{
    struct example *ex = u;
    if (ex->t2_asset)
        t2_request(ex);
    while (!runner_wait_for_shutdown(r, 0.05)) {
        if (ex->max_events && atomic_load(&ex->events) >= ex->max_events)
            break;
    }
    return 0;
}

static void on_shutdown(void *u, int err)
{
    struct example *ex = u;
    (void)err;
    follower_stop(ex->f); /* every ack on disk */
    follower_free(ex->f);
    ex->f = NULL;
    out("stopped");
}

static int read_token(const char *path, char **ret)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, fp);
    fclose(fp);
    if (n <= 0) {
        free(line);
        return -EINVAL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    *ret = line;
    return 0;
}

static int parse_ulong(const char *s, unsigned long *ret)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -EINVAL;
    *ret = (unsigned long)v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: follower_example URL TRACKER [--t2 ASSET TYPE NAME] "
                    "[--t2-out FILE] [--token-file F] [--max-events N] [--no-ack] "
                    "[--max-pending N] [--start now|beginning] [--schemas DIR] "
                    "[--heartbeat S] [--no-t2] [--t2-timeout S]\n");
}

int main(int argc, char **argv)
{
    struct example ex = {0};
    unsigned long v;

    if (argc < 3) {
        usage();
        return 2;
    }
    ex.cfg.url = argv[1];
    ex.cfg.tracker_path = argv[2];
    ex.cfg.t2_enabled = true;
    atomic_init(&ex.events, 0);
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        bool has1 = i + 1 < argc;
        if (strcmp(a, "--t2") == 0 && i + 3 < argc) {
            ex.t2_asset = argv[++i];
            ex.t2_type = argv[++i];
            ex.t2_name = argv[++i];
        } else if (strcmp(a, "--t2-out") == 0 && has1) {
            ex.t2_out = argv[++i];
        } else if (strcmp(a, "--token-file") == 0 && has1) {
            int r = read_token(argv[++i], &ex.token);
            if (r < 0) {
                fprintf(stderr, "follower_example: token file: %s\n", strerror(-r));
                return 2;
            }
            ex.cfg.token = ex.token;
        } else if (strcmp(a, "--max-events") == 0 && has1 && parse_ulong(argv[++i], &v) == 0) {
            ex.max_events = v;
        } else if (strcmp(a, "--max-pending") == 0 && has1 && parse_ulong(argv[++i], &v) == 0 &&
                   v > 0 && v <= 10000000) {
            ex.cfg.max_pending = (unsigned)v;
        } else if (strcmp(a, "--heartbeat") == 0 && has1 && parse_ulong(argv[++i], &v) == 0) {
            ex.cfg.heartbeat_timeout_s = (double)v;
        } else if (strcmp(a, "--t2-timeout") == 0 && has1 && parse_ulong(argv[++i], &v) == 0 &&
                   v > 0) {
            ex.cfg.t2_timeout_s = (double)v;
        } else if (strcmp(a, "--no-ack") == 0) {
            ex.no_ack = true;
        } else if (strcmp(a, "--no-t2") == 0) {
            ex.cfg.t2_enabled = false;
        } else if (strcmp(a, "--schemas") == 0 && has1) {
            ex.cfg.schema_dir = argv[++i];
        } else if (strcmp(a, "--start") == 0 && has1) {
            const char *s = argv[++i];
            if (strcmp(s, "now") == 0)
                ex.cfg.start = FOLLOWER_START_NOW;
            else if (strcmp(s, "beginning") == 0)
                ex.cfg.start = FOLLOWER_START_BEGINNING;
            else {
                usage();
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    ex.cfg.reconnect_max_s = 1; /* an example: come back quickly after an outage */

    static const struct runner_ops ops = {on_startup, example_main, on_shutdown};
    int r = runner_run(&ops, &ex);
    free(ex.token);
    if (r < 0) {
        fprintf(stderr, "follower_example: %s\n", errno_name(-r));
        return 1;
    }
    return 0;
}
