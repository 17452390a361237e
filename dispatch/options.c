/* options: see options.h. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TWINFS_VERSION
#define TWINFS_VERSION "unknown"
#endif

#define MAX_JOBS 256

static const char usage_text[] =
    "usage: twinfs-dispatch [options] MNT HANDLERS_DIR\n"
    "\n"
    "Runs the executables in HANDLERS_DIR for the events of the twinfs mount MNT, claiming\n"
    "each event (flock) while its handler runs and acking it (unlink) when the handler exits 0.\n"
    "\n"
    "Handlers (looked up at each event; non-executable files are ignored):\n"
    "  do_<Name>            an event named <Name> (else do_<name lower-cased>)\n"
    "  on_event_unmatched   an event with no do_ handler\n"
    "  on_asset_created ID  each asset present at start or created later\n"
    "  on_asset_deleted ID  each asset deleted on the twin while running\n"
    "  on_event_internal EOF_REPLAY  once, when MNT/.twinfs/status says replay_done\n"
    "An event handler gets the event file's path as $1, the event's JSON on stdin, and\n"
    "TWIN_MOUNT, TWIN_ASSET, TWIN_OFFSET, TWIN_SEQ, TWIN_NAME, TWIN_VERSION, TWIN_SOURCE,\n"
    "TWIN_TIME. An event with no handler at all stays pending.\n"
    "\n"
    "Options:\n"
    "  -j, --jobs N          handlers run at once, across assets (1..256; default 1);\n"
    "                        one asset's events run one at a time, in order\n"
    "      --asset GLOB      only assets whose id matches GLOB (repeatable; default all)\n"
    "      --once            handle what is pending (retries included), then exit once\n"
    "                        the mount has shown nothing new for 0.5 s\n"
    "      --retries N       attempts per event before it is left pending until the next\n"
    "                        start (default 5; 0 = unbounded)\n"
    "      --backoff S       first retry delay in seconds, doubling, at most 60 (default 1)\n"
    "      --timeout S       kill a handler running longer (SIGTERM, SIGKILL 5 s later);\n"
    "                        it counts as failed (default 300)\n"
    "      --stop-timeout S  at SIGTERM/SIGINT wait at most S for running handlers, then\n"
    "                        kill them (default 30)\n"
    "  -v, --verbose         one log line per handled event\n"
    "  -h, --help            this text\n"
    "  -V, --version         the version\n"
    "\n"
    "Exit status: 0 stopped by SIGTERM/SIGINT, or --once handled everything; 1 --once left\n"
    "events pending (failed or without a handler), or a fatal error; 2 usage error.\n"
    "See twinfs-dispatch(1).\n";

enum { OPT_ASSET = 256, OPT_ONCE, OPT_RETRIES, OPT_BACKOFF, OPT_TIMEOUT, OPT_STOP_TIMEOUT };

static const struct option long_opts[] = {
    {"jobs", required_argument, NULL, 'j'},
    {"asset", required_argument, NULL, OPT_ASSET},
    {"once", no_argument, NULL, OPT_ONCE},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"backoff", required_argument, NULL, OPT_BACKOFF},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static int bad(const char *opt, const char *arg)
{
    fprintf(stderr, "twinfs-dispatch: %s: invalid value '%s' (see --help)\n", opt, arg);
    return -EINVAL;
}

static int parse_uint(const char *opt, const char *arg, unsigned long lo, unsigned long hi,
                      unsigned long *ret)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-' || v < lo || v > hi)
        return bad(opt, arg);
    *ret = v;
    return 0;
}

static int parse_seconds(const char *opt, const char *arg, double lo, double *ret)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || v < lo || v > 1e9)
        return bad(opt, arg);
    *ret = v;
    return 0;
}

static int add_glob(struct options *o, char *glob)
{
    char **g = realloc(o->globs, (size_t)(o->n_globs + 1) * sizeof(*g));
    if (!g)
        return -ENOMEM;
    o->globs = g;
    o->globs[o->n_globs++] = glob;
    return 0;
}

static int parse_one(struct options *o, int c, char *arg)
{
    unsigned long v = 0;
    int r;

    switch (c) {
    case 'j':
        r = parse_uint("--jobs", arg, 1, MAX_JOBS, &v);
        o->jobs = (int)v;
        return r;
    case OPT_ASSET:
        return add_glob(o, arg);
    case OPT_ONCE:
        o->once = true;
        return 0;
    case OPT_RETRIES:
        r = parse_uint("--retries", arg, 0, 1000000, &v);
        o->retries = (unsigned)v;
        return r;
    case OPT_BACKOFF:
        return parse_seconds("--backoff", arg, 0, &o->backoff_s);
    case OPT_TIMEOUT:
        return parse_seconds("--timeout", arg, 0.001, &o->timeout_s);
    case OPT_STOP_TIMEOUT:
        return parse_seconds("--stop-timeout", arg, 0, &o->stop_timeout_s);
    case 'v':
        o->verbose = true;
        return 0;
    default:
        fprintf(stderr, "twinfs-dispatch: see --help\n");
        return -EINVAL;
    }
}

int options_parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){
        .jobs = 1, .retries = 5, .backoff_s = 1, .timeout_s = 300, .stop_timeout_s = 30};
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "j:vhV", long_opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_text, stdout);
            return 1;
        }
        if (c == 'V') {
            printf("twinfs-dispatch %s\n", TWINFS_VERSION);
            return 1;
        }
        int r = parse_one(o, c, optarg);
        if (r < 0)
            return r;
    }
    if (argc - optind != 2) {
        fprintf(stderr, "twinfs-dispatch: expected MNT and HANDLERS_DIR (see --help)\n");
        return -EINVAL;
    }
    o->mnt = argv[optind];
    o->handlers = argv[optind + 1];
    return 0;
}
