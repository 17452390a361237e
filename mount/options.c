/* options: see options.h. */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "twin/hash.h"

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
#define MAX_T2_OPEN_LIMIT       TWIN_MAX_T2_OPEN
#define SECONDS_LIMIT           (7.0 * 86400.0)

static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Formats the one-line message into err and returns r, so callers can `return fail(...)`. */
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
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
        return fail(err, errlen, -EINVAL, "%s=%s: not a number", key, value);
    errno = 0;
    v = strtoull(value, &end, 10);
    if (*end != '\0')
        return fail(err, errlen, -EINVAL, "%s=%s: not a number", key, value);
    if (errno == ERANGE || v < min || v > max)
        return fail(err, errlen, -EINVAL, "%s=%s: must be between %u and %u", key, value, min, max);
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
        return fail(err, errlen, -EINVAL, "%s=%s: not a number of seconds", key, value);
    errno = 0;
    v = strtod(value, &end);
    if (*end != '\0' || !isfinite(v))
        return fail(err, errlen, -EINVAL, "%s=%s: not a number of seconds", key, value);
    if (errno == ERANGE || v <= min_exclusive || v > max)
        return fail(err, errlen, -EINVAL, "%s=%s: must be more than %g and at most %g seconds", key,
                    value, min_exclusive, max);
    *ret = v;
    return 0;
}

static int set_string(char **slot, const char *key, const char *value, char *err, size_t errlen)
{
    char *copy;

    if (value[0] == '\0')
        return fail(err, errlen, -EINVAL, "%s=: needs a value", key);
    copy = strdup(value);
    if (!copy)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", key);
    free(*slot);
    *slot = copy;
    return 0;
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
        return fail(err, errlen, -EINVAL, "%s=%s: %s takes no value", key, value, key);
    if (!flag && !value)
        return fail(err, errlen, -EINVAL, "%s: needs a value (%s=...)", key, key);
    /* The command line wins over the config file whatever their order; the file's value is
     * still checked (on a scratch struct), so a typo in it never goes unnoticed. */
    if (!from_cmdline && (o->set_mask & k->bit)) {
        struct mount_options scratch;

        memset(&scratch, 0, sizeof(scratch));
        r = mount_options_set(&scratch, key, value, false, err, errlen);
        mount_options_free(&scratch);
        return r;
    }

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
            return fail(err, errlen, -EINVAL, "config=%s: a config file cannot name another",
                        value);
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
            return fail(err, errlen, -EINVAL, "start=%s: must be beginning or now", value);
        r = 0;
        break;
    default:
        return -ENOENT;
    }
    if (r == 0 && from_cmdline)
        o->set_mask |= k->bit;
    return r;
}

static char *trim(char *s)
{
    char *end;

    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

int mount_options_apply_config(struct mount_options *o, const char *text, size_t len,
                               const char *source, char *err, size_t errlen)
{
    char *copy, *line, *next;
    unsigned lineno = 0;
    int r = 0;

    if (len > MOUNT_MAX_CONFIG_BYTES)
        return fail(err, errlen, -EINVAL, "%s: longer than %d bytes", source,
                    MOUNT_MAX_CONFIG_BYTES);
    if (memchr(text, '\0', len))
        return fail(err, errlen, -EINVAL, "%s: not a text file (NUL byte)", source);
    copy = strndup(text, len);
    if (!copy)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", source);

    for (line = copy; line; line = next) {
        char *nl = strchr(line, '\n'), *eq, *key, *value = NULL;
        char msg[512];

        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        lineno++;
        key = trim(line);
        if (key[0] == '\0' || key[0] == '#')
            continue;
        eq = strchr(key, '=');
        if (eq) {
            *eq = '\0';
            value = trim(eq + 1);
            key = trim(key);
        }
        r = mount_options_set(o, key, value, false, msg, sizeof(msg));
        if (r == -ENOENT) {
            r = fail(err, errlen, -EINVAL, "%s:%u: unknown key '%s'", source, lineno, key);
            break;
        }
        if (r < 0) {
            fail(err, errlen, r, "%s:%u: %s", source, lineno, msg);
            break;
        }
    }
    free(copy);
    return r;
}

static int read_small_file(const char *path, size_t max, char **ret, size_t *ret_len,
                           struct stat *ret_st)
{
    struct stat st;
    char *buf;
    size_t len = 0;
    int fd, r;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto fail_fd;
    }
    if (S_ISDIR(st.st_mode)) {
        r = -EISDIR;
        goto fail_fd;
    }
    buf = malloc(max + 1);
    if (!buf) {
        r = -ENOMEM;
        goto fail_fd;
    }
    /* Read one byte past max to tell "exactly max" from "too long". */
    while (len <= max) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto fail_buf;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max) {
        r = -EFBIG;
        goto fail_buf;
    }
    buf[len] = '\0';
    close(fd);
    *ret = buf;
    *ret_len = len;
    if (ret_st)
        *ret_st = st;
    return 0;

fail_buf:
    explicit_bzero(buf, max + 1);
    free(buf);
fail_fd:
    close(fd);
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
            r = fail(ctx->err, ctx->errlen, -EINVAL, "%s: unexpected argument", arg);
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
        fail(ctx->err, ctx->errlen, -EINVAL, "%s: unknown option", arg);
        ctx->failed = true;
        return -1;
    }
    copy = strdup(arg);
    if (!copy) {
        fail(ctx->err, ctx->errlen, -ENOMEM, "out of memory");
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
            return fail(err, errlen, -EINVAL, "bad command line (see --help)");
        return -EINVAL;
    }
    ret->fuse_args = args;
    if (ret->show_help || ret->show_version || !ret->config)
        return 0;

    r = read_small_file(ret->config, MOUNT_MAX_CONFIG_BYTES, &text, &len, NULL);
    if (r == -EFBIG)
        return fail(err, errlen, -EINVAL, "config=%s: longer than %d bytes", ret->config,
                    MOUNT_MAX_CONFIG_BYTES);
    if (r < 0)
        return fail(err, errlen, r, "config=%s: %s", ret->config, strerror(-r));
    r = mount_options_apply_config(ret, text, len, ret->config, err, errlen);
    free(text);
    return r;
}

/* The pieces of a twin URL that name the tracker file. */
struct url_parts {
    char host[256];
    unsigned port;
};

static int parse_url(const char *url, struct url_parts *ret, char *err, size_t errlen)
{
    const char *p, *auth_end, *host_end, *port_start = NULL;
    size_t host_len;

    if (strlen(url) > MOUNT_MAX_URL_BYTES)
        return fail(err, errlen, -EINVAL, "URL is longer than %d bytes", MOUNT_MAX_URL_BYTES);
    for (p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return fail(err, errlen, -EINVAL, "%s: bad URL: a space or control character", url);
    }
    if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
        ret->port = 80;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        p = url + 8;
        ret->port = 443;
    } else {
        return fail(err, errlen, -EINVAL, "%s: bad URL: must start with http:// or https://", url);
    }
    auth_end = p + strcspn(p, "/?#");
    if (*auth_end == '?' || *auth_end == '#' || strpbrk(auth_end, "?#"))
        return fail(err, errlen, -EINVAL, "%s: bad URL: a twin URL has no query or fragment", url);
    if (memchr(p, '@', (size_t)(auth_end - p)))
        return fail(err, errlen, -EINVAL,
                    "%s: bad URL: no user:password@ in the URL (use token_file=)", url);
    if (*p == '[') {
        host_end = memchr(p, ']', (size_t)(auth_end - p));
        if (!host_end)
            return fail(err, errlen, -EINVAL, "%s: bad URL: unclosed [", url);
        host_end++;
        if (host_end < auth_end) {
            if (*host_end != ':')
                return fail(err, errlen, -EINVAL, "%s: bad URL: junk after ]", url);
            port_start = host_end + 1;
        }
    } else {
        host_end = memchr(p, ':', (size_t)(auth_end - p));
        if (host_end)
            port_start = host_end + 1;
        else
            host_end = auth_end;
        for (const char *c = p; c < host_end; c++) {
            if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_')
                return fail(err, errlen, -EINVAL, "%s: bad URL: bad character in host", url);
        }
    }
    host_len = (size_t)(host_end - p);
    if (host_len == 0)
        return fail(err, errlen, -EINVAL, "%s: bad URL: no host", url);
    if (host_len >= sizeof(ret->host))
        return fail(err, errlen, -EINVAL, "%s: bad URL: host name too long", url);
    memcpy(ret->host, p, host_len);
    ret->host[host_len] = '\0';
    if (port_start) {
        unsigned long v = 0;
        const char *c;

        if (port_start == auth_end)
            return fail(err, errlen, -EINVAL, "%s: bad URL: empty port", url);
        for (c = port_start; c < auth_end; c++) {
            if (!isdigit((unsigned char)*c) || v > 65535)
                return fail(err, errlen, -EINVAL, "%s: bad URL: bad port", url);
            v = v * 10 + (unsigned long)(*c - '0');
        }
        if (v < 1 || v > 65535)
            return fail(err, errlen, -EINVAL, "%s: bad URL: port must be 1-65535", url);
        ret->port = (unsigned)v;
    }
    return 0;
}

/* True for a host that names this machine's loopback: localhost, 127.0.0.0/8, [::1]. */
static bool host_is_loopback(const char *host)
{
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    if (strncmp(host, "127.", 4) != 0)
        return false;
    for (const char *c = host + 4; *c; c++) {
        if (!isdigit((unsigned char)*c) && *c != '.')
            return false;
    }
    return true;
}

/* True when a request to url crosses the network in clear: plain http to a host that is not
 * the loopback (a proxy from http_proxy or all_proxy, which libcurl honours, would read it too). */
static bool url_is_clear_remote(const char *url)
{
    struct url_parts parts = {0};

    if (strncasecmp(url, "http://", 7) != 0 || parse_url(url, &parts, NULL, 0) < 0)
        return false;
    return !host_is_loopback(parts.host);
}

int mount_check_url(const char *url, char *err, size_t errlen)
{
    struct url_parts parts;

    return parse_url(url, &parts, err, errlen);
}

char *mount_default_tracker_path(const char *url)
{
    struct url_parts parts = {0};
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    uint64_t hash = twin_fnv1a(TWIN_FNV1A_INIT, url, strlen(url)); /* stable everywhere */
    char base[PATH_MAX], *path;
    int n;

    if (parse_url(url, &parts, NULL, 0) < 0)
        return NULL;
    /* IPv6 brackets and colons do not belong in a file name. */
    for (char *c = parts.host; *c; c++) {
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-')
            *c = '_';
    }
    /* The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored. */
    if (state && state[0] == '/')
        n = snprintf(base, sizeof(base), "%s/twinfs", state);
    else if (home && home[0] == '/')
        n = snprintf(base, sizeof(base), "%s/.local/state/twinfs", home);
    else
        return NULL;
    if (n < 0 || (size_t)n >= sizeof(base))
        return NULL;
    if (asprintf(&path, "%s/%s-%u-%016llx.journal", base, parts.host, parts.port,
                 (unsigned long long)hash) < 0)
        return NULL;
    return path;
}

/* mkdir -p for the directory part of path, private to the user. */
static int make_parent_dirs(const char *path)
{
    char buf[PATH_MAX];
    char *slash;
    int n = snprintf(buf, sizeof(buf), "%s", path);

    if (n < 0 || (size_t)n >= sizeof(buf))
        return -ENAMETOOLONG;
    slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return 0;
    *slash = '\0';
    for (char *c = buf + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -errno;
        *c = '/';
    }
    if (mkdir(buf, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Replaces *slot by its realpath; the file must exist. */
static int make_real(char **slot, const char *key, bool want_dir, char *err, size_t errlen)
{
    struct stat st;
    char *real = realpath(*slot, NULL);

    if (!real)
        return fail(err, errlen, -errno, "%s=%s: %s", key, *slot, strerror(errno));
    if (stat(real, &st) < 0) {
        int r = -errno;
        free(real);
        return fail(err, errlen, r, "%s=%s: %s", key, *slot, strerror(-r));
    }
    if (want_dir != !!S_ISDIR(st.st_mode)) {
        int r = want_dir ? -ENOTDIR : -EISDIR;
        free(real);
        return fail(err, errlen, r, "%s=%s: %s", key, *slot, strerror(-r));
    }
    free(*slot);
    *slot = real;
    return 0;
}

/* Prefixes a relative path with the current directory, since the daemon runs in /. */
static int make_absolute(char **slot, const char *key, char *err, size_t errlen)
{
    char *cwd, *abs;

    if ((*slot)[0] == '/')
        return 0;
    cwd = getcwd(NULL, 0);
    if (!cwd)
        return fail(err, errlen, -errno, "%s=%s: current directory: %s", key, *slot,
                    strerror(errno));
    if (asprintf(&abs, "%s/%s", cwd, *slot) < 0) {
        free(cwd);
        return fail(err, errlen, -ENOMEM, "%s: out of memory", key);
    }
    free(cwd);
    free(*slot);
    *slot = abs;
    return 0;
}

/* A bearer token goes into an HTTP header: printable ASCII, no spaces. */
static bool token_ok(const char *t)
{
    if (t[0] == '\0')
        return false;
    for (; *t; t++) {
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
            return false;
    }
    return true;
}

static int read_token(struct mount_options *o, char *err, size_t errlen)
{
    struct stat st = {0};
    char *buf = NULL, *env;
    size_t len = 0;
    int r;

    if (o->token_file) {
        r = read_small_file(o->token_file, MOUNT_MAX_TOKEN_BYTES, &buf, &len, &st);
        if (r == -EFBIG)
            return fail(err, errlen, -EINVAL, "token_file=%s: longer than %d bytes", o->token_file,
                        MOUNT_MAX_TOKEN_BYTES);
        if (r < 0)
            return fail(err, errlen, r, "token_file=%s: %s", o->token_file, strerror(-r));
        o->token_file_shared = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
        /* One trailing newline (or CRLF, or blanks) is how editors save a one-line file. */
        while (len > 0 && isspace((unsigned char)buf[len - 1]))
            buf[--len] = '\0';
        if (len == 0) {
            free(buf);
            return fail(err, errlen, -EINVAL, "token_file=%s: empty", o->token_file);
        }
        if (!token_ok(buf)) {
            explicit_bzero(buf, len);
            free(buf);
            return fail(err, errlen, -EINVAL,
                        "token_file=%s: the token has a space or control character", o->token_file);
        }
        o->token = buf;
        return 0;
    }

    env = getenv("TWINFS_TOKEN");
    if (!env || env[0] == '\0')
        return 0;
    if (!token_ok(env))
        return fail(err, errlen, -EINVAL,
                    "TWINFS_TOKEN: the token has a space or control "
                    "character");
    o->token = strdup(env);
    if (!o->token)
        return fail(err, errlen, -ENOMEM, "TWINFS_TOKEN: out of memory");
    /* Wipe the value where it sits, so /proc/PID/environ and `ps e` no longer show it. */
    explicit_bzero(env, strlen(env));
    unsetenv("TWINFS_TOKEN");
    return 0;
}

int mount_options_finish(struct mount_options *o, char *err, size_t errlen)
{
    size_t n;
    int r;

    if (o->show_help || o->show_version)
        return 0;
    if (!o->url)
        return fail(err, errlen, -EINVAL, "missing URL (usage: twinfs URL MOUNTPOINT [options])");
    if (!o->mountpoint)
        return fail(err, errlen, -EINVAL,
                    "missing MOUNTPOINT (usage: twinfs URL MOUNTPOINT [options])");
    r = mount_check_url(o->url, err, errlen);
    if (r < 0)
        return r;
    /* "http://h:1/" and "http://h:1" are the same twin and must share one tracker. */
    n = strlen(o->url);
    while (n > 0 && o->url[n - 1] == '/')
        o->url[--n] = '\0';

    {
        char *real = realpath(o->mountpoint, NULL);
        struct stat st;

        if (!real)
            return fail(err, errlen, -errno, "%s: mountpoint: %s", o->mountpoint, strerror(errno));
        if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
            free(real);
            return fail(err, errlen, -ENOTDIR, "%s: mountpoint: %s", o->mountpoint,
                        strerror(ENOTDIR));
        }
        free(o->mountpoint);
        o->mountpoint = real;
    }

    if (o->cacert) {
        r = make_real(&o->cacert, "cacert", false, err, errlen);
        if (r < 0)
            return r;
    }
    if (o->schemas) {
        r = make_real(&o->schemas, "schemas", true, err, errlen);
        if (r < 0)
            return r;
    }
    if (o->tracker) {
        r = make_absolute(&o->tracker, "tracker", err, errlen);
        if (r < 0)
            return r;
    } else {
        o->tracker = mount_default_tracker_path(o->url);
        if (!o->tracker)
            return fail(err, errlen, -EINVAL,
                        "no tracker path: set tracker=FILE, or HOME or XDG_STATE_HOME");
        r = make_parent_dirs(o->tracker);
        if (r < 0)
            return fail(err, errlen, r, "tracker=%s: cannot create its directory: %s", o->tracker,
                        strerror(-r));
    }
    r = read_token(o, err, errlen);
    if (r == 0 && o->token)
        o->token_in_clear = url_is_clear_remote(o->url);
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
