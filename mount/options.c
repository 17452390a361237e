/* options: the option table and the command line; see options.h. */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options_internal.h"

#define MAX_PENDING_LIMIT       10000000u
#define MAX_PENDING_MB_LIMIT    1048576u /* 1 TiB */
#define MATERIALIZE_DELAY_LIMIT 60000u
#define MAX_T2_OPEN_LIMIT       TWIN_MAX_T2_OPEN
#define SECONDS_LIMIT           (7.0 * 86400.0)

/* What a key's value is, and so how it is checked. */
enum key_kind {
    KIND_PATH,    /* a non-empty string (char *) */
    KIND_FLAG,    /* no value: sets the bool to min */
    KIND_COUNT,   /* a whole number from min to max (unsigned) */
    KIND_SECONDS, /* a decimal number above 0, at most SECONDS_LIMIT (double) */
    KIND_START,   /* beginning or now (enum mount_start) */
    KIND_BYTES,   /* a whole number of bytes from min to max, with an optional k, M or G (size_t) */
    KIND_GLOB,    /* a non-empty pattern, appended to the list (assets, n_assets) */
    KIND_SHARD,   /* K/N with 1 <= K <= N (shard_k, shard_n) */
};

/* A twinfs option: its field in struct mount_options, and its bit in set_mask (t2 and no_t2,
 * events_dir and no_events_dir, ro and rw share one because they set the same thing). ro is
 * twinfs's, not the kernel's: the mount stays writable for the materializer, and twinfs
 * refuses the acks. A KIND_BYTES key's min and max are in KiB, so that they fit an unsigned. */
struct key_def {
    const char *name;
    enum key_kind kind;
    unsigned bit;
    size_t offset;
    unsigned min, max;
};

#define FIELD(f) offsetof(struct mount_options, f)

static const struct key_def keys[] = {
    {"token_file", KIND_PATH, 1u << 0, FIELD(token_file), 0, 0},
    {"cacert", KIND_PATH, 1u << 1, FIELD(cacert), 0, 0},
    {"tracker", KIND_PATH, 1u << 2, FIELD(tracker), 0, 0},
    {"schemas", KIND_PATH, 1u << 3, FIELD(schemas), 0, 0},
    {"t2", KIND_FLAG, 1u << 4, FIELD(t2), 1, 0},
    {"no_t2", KIND_FLAG, 1u << 4, FIELD(t2), 0, 0},
    {"t2_timeout", KIND_SECONDS, 1u << 5, FIELD(t2_timeout_s), 0, 0},
    {"max_pending", KIND_COUNT, 1u << 6, FIELD(max_pending), 1, MAX_PENDING_LIMIT},
    {"start", KIND_START, 1u << 7, FIELD(start), 0, 0},
    {"materialize_delay", KIND_COUNT, 1u << 8, FIELD(materialize_delay_ms), 0,
     MATERIALIZE_DELAY_LIMIT},
    {"entry_timeout", KIND_SECONDS, 1u << 9, FIELD(entry_timeout_s), 0, 0},
    {"max_t2_open", KIND_COUNT, 1u << 10, FIELD(max_t2_open), 1, MAX_T2_OPEN_LIMIT},
    {"config", KIND_PATH, 1u << 11, FIELD(config), 0, 0},
    {"max_pending_mb", KIND_COUNT, 1u << 12, FIELD(max_pending_mb), 1, MAX_PENDING_MB_LIMIT},
    {"events_dir", KIND_FLAG, 1u << 13, FIELD(events_dir), 1, 0},
    {"no_events_dir", KIND_FLAG, 1u << 13, FIELD(events_dir), 0, 0},
    {"ro", KIND_FLAG, 1u << 14, FIELD(read_only), 1, 0},
    {"rw", KIND_FLAG, 1u << 14, FIELD(read_only), 0, 0},
    {"t2_max_data", KIND_BYTES, 1u << 15, FIELD(t2_max_data), 0,
     (unsigned)(TWIN_MAX_T2_MAX_DATA / 1024)},
    {"assets", KIND_GLOB, 1u << 16, FIELD(assets), 0, 0},
    {"shard", KIND_SHARD, 1u << 17, FIELD(shard_k), 0, 0},
    {"logfile", KIND_PATH, 1u << 18, FIELD(logfile), 0, 0},
};

int options_fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
        va_end(ap);
        /* Values come from argv and files: keep the message on one line, whatever they hold. */
        for (char *c = err; *c; c++) {
            if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
                *c = '?';
        }
    }
    return r;
}

static const struct key_def *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    return NULL;
}

static int parse_unsigned(const char *key, const char *value, unsigned min, unsigned max,
                          unsigned *ret, char *err, size_t errlen)
{
    char *end = NULL;
    unsigned long long v;

    /* strtoull accepts leading blanks and a minus sign; a count has neither. */
    if (!isdigit((unsigned char)value[0]))
        return options_fail(err, errlen, -EINVAL, "%s=%s: not a number", key, value);
    errno = 0;
    v = strtoull(value, &end, 10);
    if (*end != '\0')
        return options_fail(err, errlen, -EINVAL, "%s=%s: not a number", key, value);
    if (errno == ERANGE || v < min || v > max)
        return options_fail(err, errlen, -EINVAL, "%s=%s: must be between %u and %u", key, value,
                            min, max);
    *ret = (unsigned)v;
    return 0;
}

/* Seconds as a decimal number (e.g. 2.5), strictly above min_exclusive. */
static int parse_seconds(const char *key, const char *value, double min_exclusive, double max,
                         double *ret, char *err, size_t errlen)
{
    char *end = NULL;
    double v;

    if (!isdigit((unsigned char)value[0]) && value[0] != '.')
        return options_fail(err, errlen, -EINVAL, "%s=%s: not a number of seconds", key, value);
    errno = 0;
    v = strtod(value, &end);
    if (*end != '\0' || !isfinite(v))
        return options_fail(err, errlen, -EINVAL, "%s=%s: not a number of seconds", key, value);
    if (errno == ERANGE || v <= min_exclusive || v > max)
        return options_fail(err, errlen, -EINVAL,
                            "%s=%s: must be more than %g and at most %g seconds", key, value,
                            min_exclusive, max);
    *ret = v;
    return 0;
}

/* Bytes: digits, then nothing (bytes) or one of k, K (KiB), M (MiB), G (GiB). */
static int parse_bytes(const char *key, const char *value, unsigned min_kib, unsigned max_kib,
                       size_t *ret, char *err, size_t errlen)
{
    unsigned long long v, unit = 1;
    char *end = NULL;

    if (!isdigit((unsigned char)value[0]))
        return options_fail(err, errlen, -EINVAL, "%s=%s: not a number of bytes", key, value);
    errno = 0;
    v = strtoull(value, &end, 10);
    if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0)
        unit = 1024;
    else if (strcmp(end, "M") == 0)
        unit = 1024ULL * 1024;
    else if (strcmp(end, "G") == 0)
        unit = 1024ULL * 1024 * 1024;
    else if (*end != '\0')
        return options_fail(err, errlen, -EINVAL, "%s=%s: not a number of bytes (N, Nk, NM, NG)",
                            key, value);
    if (errno == ERANGE || v > max_kib * 1024ULL / unit || v * unit < min_kib * 1024ULL)
        return options_fail(err, errlen, -EINVAL, "%s=%s: must be between %uk and %uk", key, value,
                            min_kib, max_kib);
    *ret = (size_t)(v * unit);
    return 0;
}

/* assets=GLOB: one more pattern; a pattern is matched against whole asset ids by fnmatch(3). */
static int add_glob(struct mount_options *o, const char *key, const char *value, char *err,
                    size_t errlen)
{
    char **grown, *copy;

    if (value[0] == '\0')
        return options_fail(err, errlen, -EINVAL, "%s=: needs a pattern", key);
    if (o->n_assets >= MOUNT_MAX_ASSET_GLOBS)
        return options_fail(err, errlen, -EINVAL, "%s=%s: more than %d patterns", key, value,
                            MOUNT_MAX_ASSET_GLOBS);
    copy = strdup(value);
    grown = copy ? realloc(o->assets, (o->n_assets + 1) * sizeof(*grown)) : NULL;
    if (!grown) {
        free(copy);
        return options_fail(err, errlen, -ENOMEM, "%s: out of memory", key);
    }
    grown[o->n_assets++] = copy;
    o->assets = grown;
    return 0;
}

/* shard=K/N: N from 1 to MOUNT_MAX_SHARDS, K from 1 to N. */
static int parse_shard(struct mount_options *o, const char *key, const char *value, char *err,
                       size_t errlen)
{
    unsigned long k, n;
    char *slash = NULL, *end = NULL;

    if (!isdigit((unsigned char)value[0]))
        goto bad;
    errno = 0;
    k = strtoul(value, &slash, 10);
    if (*slash != '/' || !isdigit((unsigned char)slash[1]))
        goto bad;
    n = strtoul(slash + 1, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        goto bad;
    if (n < 1 || n > MOUNT_MAX_SHARDS || k < 1 || k > n)
        return options_fail(err, errlen, -EINVAL, "%s=%s: needs 1 <= K <= N <= %d (shard K of N)",
                            key, value, MOUNT_MAX_SHARDS);
    o->shard_k = (unsigned)k;
    o->shard_n = (unsigned)n;
    return 0;
bad:
    return options_fail(err, errlen, -EINVAL, "%s=%s: not K/N (e.g. shard=1/3)", key, value);
}

static int set_string(char **slot, const char *key, const char *value, char *err, size_t errlen)
{
    char *copy;

    if (value[0] == '\0')
        return options_fail(err, errlen, -EINVAL, "%s=: needs a value", key);
    copy = strdup(value);
    if (!copy)
        return options_fail(err, errlen, -ENOMEM, "%s: out of memory", key);
    free(*slot);
    *slot = copy;
    return 0;
}

/* Stores the value of key k (checked for presence by the caller) into its field of o. */
static int set_key(struct mount_options *o, const struct key_def *k, const char *value,
                   bool from_cmdline, char *err, size_t errlen)
{
    void *field = (char *)o + k->offset;

    switch (k->kind) {
    case KIND_PATH:
        if (k->offset == FIELD(config) && !from_cmdline)
            return options_fail(err, errlen, -EINVAL,
                                "config=%s: a config file cannot name another", value);
        return set_string(field, k->name, value, err, errlen);
    case KIND_FLAG:
        *(bool *)field = k->min != 0;
        return 0;
    case KIND_COUNT:
        return parse_unsigned(k->name, value, k->min, k->max, field, err, errlen);
    case KIND_SECONDS:
        return parse_seconds(k->name, value, 0, SECONDS_LIMIT, field, err, errlen);
    case KIND_START:
        if (strcmp(value, "beginning") == 0)
            *(enum mount_start *)field = MOUNT_START_BEGINNING;
        else if (strcmp(value, "now") == 0)
            *(enum mount_start *)field = MOUNT_START_NOW;
        else
            return options_fail(err, errlen, -EINVAL, "start=%s: must be beginning or now", value);
        return 0;
    case KIND_BYTES:
        return parse_bytes(k->name, value, k->min, k->max, field, err, errlen);
    case KIND_GLOB:
        return add_glob(o, k->name, value, err, errlen);
    case KIND_SHARD:
        return parse_shard(o, k->name, value, err, errlen);
    }
    return -ENOENT;
}

int mount_options_set(struct mount_options *o, const char *key, const char *value,
                      bool from_cmdline, char *err, size_t errlen)
{
    const struct key_def *k = find_key(key);
    bool flag;
    int r;

    if (!k)
        return -ENOENT;
    flag = k->kind == KIND_FLAG;
    if (flag && value)
        return options_fail(err, errlen, -EINVAL, "%s=%s: %s takes no value", key, value, key);
    if (!flag && !value)
        return options_fail(err, errlen, -EINVAL, "%s: needs a value (%s=...)", key, key);
    /* The command line wins over the config file whatever their order; the file's value is
     * still checked (on a scratch struct), so a typo in it never goes unnoticed. */
    if (!from_cmdline && (o->set_mask & k->bit)) {
        struct mount_options scratch;

        memset(&scratch, 0, sizeof(scratch));
        r = mount_options_set(&scratch, key, value, false, err, errlen);
        mount_options_free(&scratch);
        return r;
    }
    r = set_key(o, k, value, from_cmdline, err, errlen);
    if (r == 0 && from_cmdline)
        o->set_mask |= k->bit;
    return r;
}

enum {
    CLI_HELP,
    CLI_VERSION,
    CLI_FOREGROUND,
    CLI_DEBUG,
    CLI_SINGLE,
};

static const struct fuse_opt cli_opts[] = {
    FUSE_OPT_KEY("-h", CLI_HELP),
    FUSE_OPT_KEY("--help", CLI_HELP),
    FUSE_OPT_KEY("-V", CLI_VERSION),
    FUSE_OPT_KEY("--version", CLI_VERSION),
    FUSE_OPT_KEY("-f", CLI_FOREGROUND),
    FUSE_OPT_KEY("-d", CLI_DEBUG),
    FUSE_OPT_KEY("debug", CLI_DEBUG),
    FUSE_OPT_KEY("-s", CLI_SINGLE),
    FUSE_OPT_END,
};

struct cli_ctx {
    struct mount_options *o;
    char *err;
    size_t errlen;
    bool failed;
};

/* Options of fstab and mount(8) that ask nothing of twinfs or of its FUSE session: mount(8)
 * and mount.fuse3 act on most and keep them to themselves, but twinfs may still be given them
 * (an fstab option list on its command line, another mount helper), and sshfs's and rclone's
 * helpers drop them the same way. mount(8) does pass the atime policies on, which libfuse
 * refuses but noatime and atime: they change nothing here, a file's atime is its mtime and
 * nothing updates it. The flags the kernel takes (nosuid, nodev, noexec, noatime, sync ...)
 * are not here: fuse_session_new passes them on, and ro and rw are twinfs's own. */
static const char *const ignored_options[] = {
    "defaults",    "auto",          "noauto",   "user",       "nouser",   "users",
    "owner",       "group",         "_netdev",  "nofail",     "relatime", "norelatime",
    "strictatime", "nostrictatime", "diratime", "nodiratime", "lazytime", "nolazytime",
};
static const char *const ignored_prefixes[] = {"x-", "comment="};

static bool ignored_option(const char *arg)
{
    for (size_t i = 0; i < sizeof(ignored_options) / sizeof(ignored_options[0]); i++) {
        if (strcmp(arg, ignored_options[i]) == 0)
            return true;
    }
    for (size_t i = 0; i < sizeof(ignored_prefixes) / sizeof(ignored_prefixes[0]); i++) {
        if (strncmp(arg, ignored_prefixes[i], strlen(ignored_prefixes[i])) == 0)
            return true;
    }
    return false;
}

/* An -o option, or a dash option that fuse_opt did not know. Returns 0 (taken), 1 (a FUSE
 * option, kept for fuse_session_new to judge) or a negative errno with the message in ctx. */
static int cli_option(struct cli_ctx *ctx, const char *arg)
{
    char *copy, *eq, *value = NULL;
    int r;

    if (arg[0] == '-')
        return options_fail(ctx->err, ctx->errlen, -EINVAL, "%s: unknown option", arg);
    if (ignored_option(arg))
        return 0;
    copy = strdup(arg);
    if (!copy)
        return options_fail(ctx->err, ctx->errlen, -ENOMEM, "out of memory");
    eq = strchr(copy, '=');
    if (eq) {
        *eq = '\0';
        value = eq + 1;
    }
    r = mount_options_set(ctx->o, copy, value, true, ctx->err, ctx->errlen);
    free(copy);
    return r == -ENOENT ? 1 : r;
}

/* A positional argument: the URL, then the mount point. */
static int cli_positional(struct cli_ctx *ctx, const char *arg)
{
    struct mount_options *o = ctx->o;

    if (!o->url)
        return set_string(&o->url, "URL", arg, ctx->err, ctx->errlen);
    if (!o->mountpoint)
        return set_string(&o->mountpoint, "MOUNTPOINT", arg, ctx->err, ctx->errlen);
    return options_fail(ctx->err, ctx->errlen, -EINVAL, "%s: unexpected argument", arg);
}

static int cli_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct cli_ctx *ctx = data;
    struct mount_options *o = ctx->o;
    int r;

    switch (key) {
    case CLI_HELP:
        o->show_help = true;
        return 0;
    case CLI_VERSION:
        o->show_version = true;
        return 0;
    case CLI_FOREGROUND:
        o->foreground = true;
        return 0;
    case CLI_DEBUG:
        /* Kept: fuse_session_new turns on its own request tracing with it. */
        o->debug = true;
        o->foreground = true;
        return 1;
    case CLI_SINGLE:
        o->single_thread = true;
        return 0;
    case FUSE_OPT_KEY_NONOPT:
        r = cli_positional(ctx, arg);
        break;
    case FUSE_OPT_KEY_OPT:
        r = cli_option(ctx, arg);
        break;
    default:
        return 1;
    }
    if (r < 0) {
        ctx->failed = true;
        return -1;
    }
    return r;
}

int mount_options_parse(int argc, char **argv, struct mount_options *ret, char *err, size_t errlen)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct cli_ctx ctx = {.o = ret, .err = err, .errlen = errlen};
    char *text = NULL;
    size_t len = 0;
    int r;

    memset(ret, 0, sizeof(*ret));
    ret->t2 = true;
    ret->events_dir = true;
    ret->t2_timeout_s = MOUNT_DEFAULT_T2_TIMEOUT_S;
    ret->max_pending = MOUNT_DEFAULT_MAX_PENDING;
    ret->max_pending_mb = MOUNT_DEFAULT_MAX_PENDING_MB;
    ret->start = MOUNT_START_BEGINNING;
    ret->materialize_delay_ms = MOUNT_DEFAULT_MATERIALIZE_DELAY;
    ret->entry_timeout_s = MOUNT_DEFAULT_ENTRY_TIMEOUT_S;
    ret->max_t2_open = MOUNT_DEFAULT_MAX_T2_OPEN;
    ret->t2_max_data = MOUNT_DEFAULT_T2_MAX_DATA;
    if (err && errlen)
        err[0] = '\0';

    if (fuse_opt_parse(&args, &ctx, cli_opts, cli_proc) < 0) {
        fuse_opt_free_args(&args);
        if (!ctx.failed)
            return options_fail(err, errlen, -EINVAL, "bad command line (see --help)");
        return -EINVAL;
    }
    ret->fuse_args = args;
    if (ret->show_help || ret->show_version || !ret->config)
        return 0;

    r = options_read_file(ret->config, MOUNT_MAX_CONFIG_BYTES, &text, &len, NULL);
    if (r == -EFBIG)
        return options_fail(err, errlen, -EINVAL, "config=%s: longer than %d bytes", ret->config,
                            MOUNT_MAX_CONFIG_BYTES);
    if (r < 0)
        return options_fail(err, errlen, r, "config=%s: %s", ret->config, strerror(-r));
    r = mount_options_apply_config(ret, text, len, ret->config, err, errlen);
    free(text);
    return r;
}

void mount_options_print_help(FILE *f, const char *progname)
{
    fprintf(f,
            "usage: %s URL MOUNTPOINT [-o opt[,opt...]] [-f] [-d] [-s]\n"
            "       %s -h | --help | -V | --version\n"
            "\n"
            "Mounts the digital twin at URL (http:// or https://) on MOUNTPOINT.\n"
            "\n"
            "general options:\n"
            "    -o opt,[opt...]        mount options\n"
            "    -f                     stay in the foreground, log to stderr\n"
            "    -d, -o debug           debug output (implies -f)\n"
            "    -s                     single-threaded session loop\n"
            "    -h, --help             this help\n"
            "    -V, --version          twinfs and libfuse versions\n"
            "\n"
            "twinfs options:\n"
            "    -o token_file=FILE     bearer token for the twin (default: $TWINFS_TOKEN,\n"
            "                           else none); never put the token on the command line\n"
            "    -o cacert=FILE         CA bundle for https (default: the system's CAs)\n"
            "    -o tracker=FILE        offset tracker journal (default:\n"
            "                           $XDG_STATE_HOME/twinfs/HOST-PORT-HASH.journal,\n"
            "                           XDG_STATE_HOME defaulting to ~/.local/state)\n"
            "    -o schemas=DIR         local AVRO schemas NAME/VERSION (default: from the twin)\n"
            "    -o t2, -o no_t2        enable/disable Type 2 requests under t2/ (default: t2)\n"
            "    -o events_dir, -o no_events_dir  show/hide MOUNTPOINT/events, every asset's\n"
            "                           events in one directory (default: events_dir)\n"
            "    -o ro, -o rw           ro: browse without acking, rm is refused (EROFS);\n"
            "                           inotify works as usual (default: rw)\n"
            "    -o t2_timeout=S        T2 request timeout in seconds (default: %g)\n"
            "    -o t2_max_data=BYTES   request data written to a T2 file before its first\n"
            "                           read, at most; N, Nk, NM or NG (default: %zuM)\n"
            "    -o assets=GLOB         follow only the assets whose id matches GLOB\n"
            "                           (fnmatch(3)); repeat for more, \\, for a comma\n"
            "                           (default: every asset)\n"
            "    -o shard=K/N           follow only shard K (1..N) of N of the assets, by a\n"
            "                           stable hash of their id (default: every asset)\n"
            "    -o logfile=FILE        append the log to FILE, reopened on SIGHUP\n"
            "                           (default: syslog, without one\n"
            "                           $XDG_STATE_HOME/twinfs/twinfs.log; stderr with -f)\n"
            "    -o max_pending=N       unacknowledged events held at most (default: %u)\n"
            "    -o max_pending_mb=N    and their size at most, in MiB (as sent or as shown)\n"
            "                           (one larger event still goes) (default: %u)\n"
            "    -o start=beginning|now where a new tracker starts (default: beginning)\n"
            "    -o materialize_delay=MS  wait after a new asset directory before its events\n"
            "                           appear, for inotifywait -r (default: %u)\n"
            "    -o entry_timeout=S     kernel cache of names and attributes (default: %g)\n"
            "    -o max_t2_open=N       T2 files open at once (default: %u)\n"
            "    -o config=FILE         read these options from FILE: key=value lines,\n"
            "                           # comments; the command line wins (default: none)\n"
            "\n"
            "exit status: 0 mounted (or unmounted cleanly with -f), 1 failure, 2 usage error\n"
            "\n",
            progname, progname, MOUNT_DEFAULT_T2_TIMEOUT_S,
            MOUNT_DEFAULT_T2_MAX_DATA / ((size_t)1024 * 1024), MOUNT_DEFAULT_MAX_PENDING,
            MOUNT_DEFAULT_MAX_PENDING_MB, MOUNT_DEFAULT_MATERIALIZE_DELAY,
            MOUNT_DEFAULT_ENTRY_TIMEOUT_S, MOUNT_DEFAULT_MAX_T2_OPEN);
}

void mount_options_free(struct mount_options *o)
{
    if (!o)
        return;
    free(o->url);
    free(o->mountpoint);
    free(o->token_file);
    free(o->cacert);
    free(o->tracker);
    free(o->schemas);
    free(o->config);
    free(o->logfile);
    for (size_t i = 0; i < o->n_assets; i++)
        free(o->assets[i]);
    free(o->assets);
    if (o->token) {
        explicit_bzero(o->token, strlen(o->token));
        free(o->token);
    }
    fuse_opt_free_args(&o->fuse_args);
    memset(o, 0, sizeof(*o));
}
