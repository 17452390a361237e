/* options: the option table and the command line; see options.h. */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options_internal.h"

/* One bit per key in set_mask; t2 and no_t2 share one because they set the same thing. */
enum key_id {
    KEY_TOKEN_FILE,
    KEY_CACERT,
    KEY_TRACKER,
    KEY_SCHEMAS,
    KEY_T2,
    KEY_NO_T2,
    KEY_T2_TIMEOUT,
    KEY_MAX_PENDING,
    KEY_MAX_PENDING_MB,
    KEY_START,
    KEY_MATERIALIZE_DELAY,
    KEY_ENTRY_TIMEOUT,
    KEY_MAX_T2_OPEN,
    KEY_CONFIG,
};

struct key_def {
    const char *name;
    enum key_id id;
    unsigned bit;
};

static const struct key_def keys[] = {
    {"token_file", KEY_TOKEN_FILE, 1u << 0},
    {"cacert", KEY_CACERT, 1u << 1},
    {"tracker", KEY_TRACKER, 1u << 2},
    {"schemas", KEY_SCHEMAS, 1u << 3},
    {"t2", KEY_T2, 1u << 4},
    {"no_t2", KEY_NO_T2, 1u << 4},
    {"t2_timeout", KEY_T2_TIMEOUT, 1u << 5},
    {"max_pending", KEY_MAX_PENDING, 1u << 6},
    {"start", KEY_START, 1u << 7},
    {"materialize_delay", KEY_MATERIALIZE_DELAY, 1u << 8},
    {"entry_timeout", KEY_ENTRY_TIMEOUT, 1u << 9},
    {"max_t2_open", KEY_MAX_T2_OPEN, 1u << 10},
    {"config", KEY_CONFIG, 1u << 11},
    {"max_pending_mb", KEY_MAX_PENDING_MB, 1u << 12},
};

#define MAX_PENDING_LIMIT       10000000u
#define MAX_PENDING_MB_LIMIT    1048576u /* 1 TiB */
#define MATERIALIZE_DELAY_LIMIT 60000u
#define MAX_T2_OPEN_LIMIT       4096u
#define SECONDS_LIMIT           (7.0 * 86400.0)

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

/* Stores the value of key k (checked for presence by the caller) into o. */
static int set_key(struct mount_options *o, const struct key_def *k, const char *key,
                   const char *value, bool from_cmdline, char *err, size_t errlen)
{
    int r;

    switch (k->id) {
    case KEY_TOKEN_FILE:
        r = set_string(&o->token_file, key, value, err, errlen);
        break;
    case KEY_CACERT:
        r = set_string(&o->cacert, key, value, err, errlen);
        break;
    case KEY_TRACKER:
        r = set_string(&o->tracker, key, value, err, errlen);
        break;
    case KEY_SCHEMAS:
        r = set_string(&o->schemas, key, value, err, errlen);
        break;
    case KEY_CONFIG:
        if (!from_cmdline)
            return options_fail(err, errlen, -EINVAL,
                                "config=%s: a config file cannot name another", value);
        r = set_string(&o->config, key, value, err, errlen);
        break;
    case KEY_T2:
        o->t2 = true;
        r = 0;
        break;
    case KEY_NO_T2:
        o->t2 = false;
        r = 0;
        break;
    case KEY_T2_TIMEOUT:
        r = parse_seconds(key, value, 0, SECONDS_LIMIT, &o->t2_timeout_s, err, errlen);
        break;
    case KEY_ENTRY_TIMEOUT:
        r = parse_seconds(key, value, 0, SECONDS_LIMIT, &o->entry_timeout_s, err, errlen);
        break;
    case KEY_MAX_PENDING:
        r = parse_unsigned(key, value, 1, MAX_PENDING_LIMIT, &o->max_pending, err, errlen);
        break;
    case KEY_MAX_PENDING_MB:
        r = parse_unsigned(key, value, 1, MAX_PENDING_MB_LIMIT, &o->max_pending_mb, err, errlen);
        break;
    case KEY_MATERIALIZE_DELAY:
        r = parse_unsigned(key, value, 0, MATERIALIZE_DELAY_LIMIT, &o->materialize_delay_ms, err,
                           errlen);
        break;
    case KEY_MAX_T2_OPEN:
        r = parse_unsigned(key, value, 1, MAX_T2_OPEN_LIMIT, &o->max_t2_open, err, errlen);
        break;
    case KEY_START:
        if (strcmp(value, "beginning") == 0)
            o->start = MOUNT_START_BEGINNING;
        else if (strcmp(value, "now") == 0)
            o->start = MOUNT_START_NOW;
        else
            return options_fail(err, errlen, -EINVAL, "start=%s: must be beginning or now", value);
        r = 0;
        break;
    default:
        return -ENOENT;
    }
    return r;
}

int mount_options_set(struct mount_options *o, const char *key, const char *value,
                      bool from_cmdline, char *err, size_t errlen)
{
    const struct key_def *k = find_key(key);
    bool flag;
    int r;

    if (!k)
        return -ENOENT;
    flag = k->id == KEY_T2 || k->id == KEY_NO_T2;
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
    r = set_key(o, k, key, value, from_cmdline, err, errlen);
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

static int cli_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct cli_ctx *ctx = data;
    struct mount_options *o = ctx->o;
    char *copy, *eq, *value = NULL;
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
        if (!o->url)
            r = set_string(&o->url, "URL", arg, ctx->err, ctx->errlen);
        else if (!o->mountpoint)
            r = set_string(&o->mountpoint, "MOUNTPOINT", arg, ctx->err, ctx->errlen);
        else
            r = options_fail(ctx->err, ctx->errlen, -EINVAL, "%s: unexpected argument", arg);
        if (r < 0) {
            ctx->failed = true;
            return -1;
        }
        return 0;
    case FUSE_OPT_KEY_OPT:
        break;
    default:
        return 1;
    }

    /* An -o option, or a dash option that fuse_opt did not know. */
    if (arg[0] == '-') {
        options_fail(ctx->err, ctx->errlen, -EINVAL, "%s: unknown option", arg);
        ctx->failed = true;
        return -1;
    }
    copy = strdup(arg);
    if (!copy) {
        options_fail(ctx->err, ctx->errlen, -ENOMEM, "out of memory");
        ctx->failed = true;
        return -1;
    }
    eq = strchr(copy, '=');
    if (eq) {
        *eq = '\0';
        value = eq + 1;
    }
    r = mount_options_set(o, copy, value, true, ctx->err, ctx->errlen);
    free(copy);
    if (r == -ENOENT)
        return 1; /* a FUSE option: fuse_session_new decides */
    if (r < 0) {
        ctx->failed = true;
        return -1;
    }
    return 0;
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
    ret->t2_timeout_s = MOUNT_DEFAULT_T2_TIMEOUT_S;
    ret->max_pending = MOUNT_DEFAULT_MAX_PENDING;
    ret->max_pending_mb = MOUNT_DEFAULT_MAX_PENDING_MB;
    ret->start = MOUNT_START_BEGINNING;
    ret->materialize_delay_ms = MOUNT_DEFAULT_MATERIALIZE_DELAY;
    ret->entry_timeout_s = MOUNT_DEFAULT_ENTRY_TIMEOUT_S;
    ret->max_t2_open = MOUNT_DEFAULT_MAX_T2_OPEN;
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
            "    -o t2_timeout=S        T2 request timeout in seconds (default: %g)\n"
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
            progname, progname, MOUNT_DEFAULT_T2_TIMEOUT_S, MOUNT_DEFAULT_MAX_PENDING,
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
    if (o->token) {
        explicit_bzero(o->token, strlen(o->token));
        free(o->token);
    }
    fuse_opt_free_args(&o->fuse_args);
    memset(o, 0, sizeof(*o));
}
