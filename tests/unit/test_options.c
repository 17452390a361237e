/* Unit test of the option parser (mount/options.c and the files that share
 * options_internal.h): the command line, the config file, precedence, validation, the twin URL,
 * the default tracker path and the token. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "options.h"
#include "unit.h"

static char tmpdir[] = "/tmp/test_options.XXXXXX";
static char err[1024];

#define ARGV(...) ((char *[]){"twinfs", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"twinfs", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(o, ...)                                                                              \
    mount_options_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (o), err, sizeof(err))

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    CHECK(fchmod(fd, mode) == 0);
    close(fd);
}

/* The FUSE options kept for fuse_session_new, joined by spaces. */
static const char *kept(const struct mount_options *o)
{
    static char buf[1024];
    size_t n = 0;

    buf[0] = '\0';
    for (int i = 1; i < o->fuse_args.argc; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i > 1 ? " " : "",
                              o->fuse_args.argv[i]);
    return buf;
}

static void test_defaults(void)
{
    struct mount_options o;

    CHECK_INT_EQ(PARSE(&o, "http://127.0.0.1:8765", "/mnt"), 0);
    CHECK_STR_EQ(o.url, "http://127.0.0.1:8765");
    CHECK_STR_EQ(o.mountpoint, "/mnt");
    CHECK(o.t2);
    CHECK(o.t2_timeout_s == MOUNT_DEFAULT_T2_TIMEOUT_S);
    CHECK_INT_EQ(o.max_pending, 10000);
    CHECK_INT_EQ(o.max_pending_mb, 256);
    CHECK_INT_EQ(o.start, MOUNT_START_BEGINNING);
    CHECK_INT_EQ(o.materialize_delay_ms, MOUNT_DEFAULT_MATERIALIZE_DELAY);
    CHECK(o.entry_timeout_s == 86400.0);
    CHECK_INT_EQ(o.max_t2_open, 64);
    CHECK(!o.foreground && !o.debug && !o.single_thread && !o.show_help && !o.show_version);
    CHECK(!o.token_file && !o.cacert && !o.tracker && !o.schemas && !o.config);
    CHECK_INT_EQ(o.fuse_args.argc, 1);
    mount_options_free(&o);
}

static void test_good_values(void)
{
    struct mount_options o;

    CHECK_INT_EQ(PARSE(&o, "-o", "max_pending=5,allow_other,t2_timeout=2.5,no_t2,max_pending_mb=9",
                       "https://h/x", "-o",
                       "start=now,fsname=foo,materialize_delay=0,entry_timeout=0.5", "m", "-o",
                       "max_t2_open=3,token_file=/t,cacert=/c,tracker=/tr,schemas=/s"),
                 0);
    CHECK_STR_EQ(o.url, "https://h/x");
    CHECK_STR_EQ(o.mountpoint, "m");
    CHECK_INT_EQ(o.max_pending, 5);
    CHECK_INT_EQ(o.max_pending_mb, 9);
    CHECK(o.t2_timeout_s == 2.5);
    CHECK(!o.t2);
    CHECK_INT_EQ(o.start, MOUNT_START_NOW);
    CHECK_INT_EQ(o.materialize_delay_ms, 0);
    CHECK(o.entry_timeout_s == 0.5);
    CHECK_INT_EQ(o.max_t2_open, 3);
    CHECK_STR_EQ(o.token_file, "/t");
    CHECK_STR_EQ(o.cacert, "/c");
    CHECK_STR_EQ(o.tracker, "/tr");
    CHECK_STR_EQ(o.schemas, "/s");
    /* Only the FUSE options are left for fuse_session_new. */
    CHECK_STR_EQ(kept(&o), "-o allow_other,fsname=foo");
    mount_options_free(&o);

    /* The last of t2/no_t2 wins, like any repeated mount option. */
    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", "no_t2,t2"), 0);
    CHECK(o.t2);
    mount_options_free(&o);
}

static void test_flags(void)
{
    struct mount_options o;

    CHECK_INT_EQ(PARSE(&o, "-f", "-s", "u", "m"), 0);
    CHECK(o.foreground && o.single_thread && !o.debug);
    CHECK_INT_EQ(o.fuse_args.argc, 1);
    mount_options_free(&o);

    /* -d implies -f and stays for libfuse's request tracing. */
    CHECK_INT_EQ(PARSE(&o, "u", "m", "-d"), 0);
    CHECK(o.foreground && o.debug);
    CHECK_STR_EQ(kept(&o), "-d");
    mount_options_free(&o);

    CHECK_INT_EQ(PARSE(&o, "-h"), 0);
    CHECK(o.show_help);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), 0);
    mount_options_free(&o);
    CHECK_INT_EQ(PARSE(&o, "--version"), 0);
    CHECK(o.show_version);
    mount_options_free(&o);
}

/* What fstab and mount(8) give a mount helper: the options only mount(8) and systemd act on are
 * dropped, the kernel's mount flags go to fuse_session_new, ro and rw are twinfs's. */
static void test_mount_helper_options(void)
{
    struct mount_options o;

    CHECK_INT_EQ(PARSE(&o, "http://127.0.0.1:8765", "/mnt", "-o",
                       "rw,defaults,auto,noauto,user,nouser,users,owner,group,_netdev,nofail,"
                       "relatime,norelatime,strictatime,nostrictatime,diratime,nodiratime,lazytime,"
                       "nolazytime,x-systemd.automount,x-systemd.requires=network-online.target,"
                       "x-systemd.mount-timeout=30,x-gvfs-hide,comment=twin\\,a,start=now,no_t2"),
                 0);
    CHECK_STR_EQ(kept(&o), "");
    CHECK(!o.read_only && !o.t2 && o.start == MOUNT_START_NOW);
    CHECK_STR_EQ(o.url, "http://127.0.0.1:8765");
    mount_options_free(&o);

    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", "ro,nosuid,nodev,noexec,noatime,sync,dirsync,dev,suid"),
                 0);
    CHECK(o.read_only);
    CHECK_STR_EQ(kept(&o), "-o nosuid,nodev,noexec,noatime,sync,dirsync,dev,suid");
    mount_options_free(&o);

    /* Only the whole name, or the x- and comment= prefixes: a near miss is still unknown to
     * twinfs and left for fuse_session_new to refuse. */
    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", "nofailx,_netdev=1,xsystemd,defaults2"), 0);
    CHECK_STR_EQ(kept(&o), "-o nofailx,_netdev=1,xsystemd,defaults2");
    mount_options_free(&o);
}

/* Each bad invocation fails with exactly this message. */
static void expect_bad(int argc, char **argv, const char *msg)
{
    struct mount_options o;

    CHECK_INT_EQ(mount_options_parse(argc, argv, &o, err, sizeof(err)), -EINVAL);
    CHECK_STR_EQ(err, msg);
    mount_options_free(&o);
}

#define BAD(msg, ...) expect_bad(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), msg)

static void test_bad_values(void)
{
    BAD("max_pending=abc: not a number", "u", "m", "-o", "max_pending=abc");
    BAD("max_pending=-1: not a number", "u", "m", "-o", "max_pending=-1");
    BAD("max_pending= 5: not a number", "u", "m", "-o", "max_pending= 5");
    BAD("max_pending=5x: not a number", "u", "m", "-o", "max_pending=5x");
    BAD("max_pending=0: must be between 1 and 10000000", "u", "m", "-o", "max_pending=0");
    BAD("max_pending=99999999999999999999999: must be between 1 and 10000000", "u", "m", "-o",
        "max_pending=99999999999999999999999");
    BAD("max_pending=: not a number", "u", "m", "-o", "max_pending=");
    BAD("max_pending_mb=0: must be between 1 and 1048576", "u", "m", "-o", "max_pending_mb=0");
    BAD("max_pending_mb=1.5: not a number", "u", "m", "-o", "max_pending_mb=1.5");
    BAD("t2_timeout=0: must be more than 0 and at most 604800 seconds", "u", "m", "-o",
        "t2_timeout=0");
    BAD("t2_timeout=nan: not a number of seconds", "u", "m", "-o", "t2_timeout=nan");
    BAD("t2_timeout=inf: not a number of seconds", "u", "m", "-o", "t2_timeout=inf");
    BAD("t2_timeout=1e999: not a number of seconds", "u", "m", "-o", "t2_timeout=1e999");
    BAD("t2_timeout=2s: not a number of seconds", "u", "m", "-o", "t2_timeout=2s");
    BAD("entry_timeout=-1: not a number of seconds", "u", "m", "-o", "entry_timeout=-1");
    BAD("materialize_delay=60001: must be between 0 and 60000", "u", "m", "-o",
        "materialize_delay=60001");
    BAD("max_t2_open=0: must be between 1 and 4096", "u", "m", "-o", "max_t2_open=0");
    BAD("start=later: must be beginning or now", "u", "m", "-o", "start=later");
    BAD("t2=yes: t2 takes no value", "u", "m", "-o", "t2=yes");
    BAD("no_t2=1: no_t2 takes no value", "u", "m", "-o", "no_t2=1");
    BAD("token_file: needs a value (token_file=...)", "u", "m", "-o", "token_file");
    BAD("cacert=: needs a value", "u", "m", "-o", "cacert=");
    BAD("--bogus: unknown option", "u", "m", "--bogus");
    BAD("-x: unknown option", "-x", "u", "m");
    BAD("extra: unexpected argument", "u", "m", "extra");
    BAD("bad command line (see --help)", "u", "m", "-o");
}

/* assets= is a list: each one adds a pattern, a comma escaped with a backslash stays in it; in
 * the config file each line adds one, and any assets= on the command line replaces them all. */
static void test_selection(void)
{
    struct mount_options o;

    CHECK_INT_EQ(PARSE(&o, "u", "m"), 0);
    CHECK_INT_EQ(o.n_assets, 0);
    CHECK_INT_EQ(o.shard_n, 0);
    CHECK(o.t2_max_data == 4 * 1024 * 1024);
    CHECK(!o.logfile);
    mount_options_free(&o);

    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", "assets=pump-*,assets=valve\\,a,shard=2/3", "-o",
                       "assets=[ab]?", "-o", "logfile=/var/log/t.log,t2_max_data=16k"),
                 0);
    CHECK_INT_EQ(o.n_assets, 3);
    CHECK_STR_EQ(o.assets[0], "pump-*");
    CHECK_STR_EQ(o.assets[1], "valve,a");
    CHECK_STR_EQ(o.assets[2], "[ab]?");
    CHECK_INT_EQ(o.shard_k, 2);
    CHECK_INT_EQ(o.shard_n, 3);
    CHECK_STR_EQ(o.logfile, "/var/log/t.log");
    CHECK(o.t2_max_data == 16 * 1024);
    CHECK_INT_EQ(o.fuse_args.argc, 1);
    static const char conf[] = "assets=a*\nassets=b*\nshard=1/1\n";
    CHECK_INT_EQ(mount_options_apply_config(&o, conf, strlen(conf), "F", err, sizeof(err)), 0);
    CHECK_INT_EQ(o.n_assets, 3); /* the command line's list stands */
    CHECK_INT_EQ(o.shard_k, 2);
    mount_options_free(&o);

    CHECK_INT_EQ(PARSE(&o, "u", "m"), 0);
    CHECK_INT_EQ(mount_options_apply_config(&o, conf, strlen(conf), "F", err, sizeof(err)), 0);
    CHECK_INT_EQ(o.n_assets, 2);
    CHECK_STR_EQ(o.assets[1], "b*");
    CHECK_INT_EQ(o.shard_k, 1);
    CHECK_INT_EQ(o.shard_n, 1);
    mount_options_free(&o);

    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", "t2_max_data=0"), 0);
    CHECK(o.t2_max_data == 0);
    mount_options_free(&o);
    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", "t2_max_data=1G"), 0);
    CHECK(o.t2_max_data == 1024 * 1024 * 1024);
    mount_options_free(&o);
    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", "t2_max_data=3M,shard=65536/65536"), 0);
    CHECK(o.t2_max_data == 3 * 1024 * 1024);
    mount_options_free(&o);

    BAD("assets=: needs a pattern", "u", "m", "-o", "assets=");
    BAD("shard=0/3: needs 1 <= K <= N <= 65536 (shard K of N)", "u", "m", "-o", "shard=0/3");
    BAD("shard=4/3: needs 1 <= K <= N <= 65536 (shard K of N)", "u", "m", "-o", "shard=4/3");
    BAD("shard=1/0: needs 1 <= K <= N <= 65536 (shard K of N)", "u", "m", "-o", "shard=1/0");
    BAD("shard=1/65537: needs 1 <= K <= N <= 65536 (shard K of N)", "u", "m", "-o",
        "shard=1/65537");
    BAD("shard=1: not K/N (e.g. shard=1/3)", "u", "m", "-o", "shard=1");
    BAD("shard=1/3x: not K/N (e.g. shard=1/3)", "u", "m", "-o", "shard=1/3x");
    BAD("shard= 1/3: not K/N (e.g. shard=1/3)", "u", "m", "-o", "shard= 1/3");
    BAD("shard=1/-3: not K/N (e.g. shard=1/3)", "u", "m", "-o", "shard=1/-3");
    BAD("shard=99999999999999999999/3: not K/N (e.g. shard=1/3)", "u", "m", "-o",
        "shard=99999999999999999999/3");
    BAD("t2_max_data=1025M: must be between 0k and 1048576k", "u", "m", "-o", "t2_max_data=1025M");
    BAD("t2_max_data=2G: must be between 0k and 1048576k", "u", "m", "-o", "t2_max_data=2G");
    BAD("t2_max_data=99999999999999999999999: must be between 0k and 1048576k", "u", "m", "-o",
        "t2_max_data=99999999999999999999999");
    BAD("t2_max_data=4MB: not a number of bytes (N, Nk, NM, NG)", "u", "m", "-o",
        "t2_max_data=4MB");
    BAD("t2_max_data=-1: not a number of bytes", "u", "m", "-o", "t2_max_data=-1");
    BAD("logfile=: needs a value", "u", "m", "-o", "logfile=");

    char many[64 * 12 + 1] = "";
    for (int i = 0; i <= 64; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sassets=a%d", i ? "," : "", i);
    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", many), -EINVAL);
    CHECK_STR_EQ(err, "assets=a64: more than 64 patterns");
    mount_options_free(&o);
}

static void test_config_text(void)
{
    struct mount_options o;
    static const char text[] = "# twinfs config\n"
                               "\n"
                               "  max_pending = 42  \n"
                               "no_t2\r\n"
                               "start=now\n"
                               "\t# indented comment\n"
                               "tracker=/var/lib/x y.journal";

    CHECK_INT_EQ(PARSE(&o, "u", "m"), 0);
    CHECK_INT_EQ(mount_options_apply_config(&o, text, strlen(text), "F", err, sizeof(err)), 0);
    CHECK_INT_EQ(o.max_pending, 42);
    CHECK(!o.t2);
    CHECK_INT_EQ(o.start, MOUNT_START_NOW);
    CHECK_STR_EQ(o.tracker, "/var/lib/x y.journal");

#define CONF_BAD(t, msg)                                                                           \
    do {                                                                                           \
        CHECK_INT_EQ(mount_options_apply_config(&o, t, strlen(t), "F", err, sizeof(err)),          \
                     -EINVAL);                                                                     \
        CHECK_STR_EQ(err, msg);                                                                    \
    } while (0)
    CONF_BAD("# ok\nbogus=1\n", "F:2: unknown key 'bogus'");
    CONF_BAD("allow_other\n", "F:1: unknown key 'allow_other'");
    CONF_BAD("\n\nmax_pending=x\n", "F:3: max_pending=x: not a number");
    CONF_BAD("config=/other\n", "F:1: config=/other: a config file cannot name another");
    CONF_BAD("t2=1\n", "F:1: t2=1: t2 takes no value");
    CONF_BAD("start\n", "F:1: start: needs a value (start=...)");
    CHECK_INT_EQ(mount_options_apply_config(&o, "a\0b", 3, "F", err, sizeof(err)), -EINVAL);
    CHECK_STR_EQ(err, "F: not a text file (NUL byte)");
    mount_options_free(&o);
}

static void test_config_precedence(void)
{
    struct mount_options o;
    char path[256];

    snprintf(path, sizeof(path), "%s/twinfs.conf", tmpdir);
    write_file(path,
               "max_pending=7\nstart=now\nt2_timeout=3\nno_t2\ntoken_file=/from/file\n"
               "materialize_delay=5\n",
               0600);

    /* config= before the options it loses to, and after. */
    char opt1[300], opt2[300];
    snprintf(opt1, sizeof(opt1), "config=%s,max_pending=9,t2", path);
    snprintf(opt2, sizeof(opt2), "max_pending=9,t2,config=%s", path);
    const char *opts[] = {opt1, opt2};
    for (int i = 0; i < 2; i++) {
        CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", (char *)opts[i], "-o", "token_file=/cli"), 0);
        CHECK_INT_EQ(o.max_pending, 9);          /* command line */
        CHECK(o.t2);                             /* command line t2 beats file no_t2 */
        CHECK_STR_EQ(o.token_file, "/cli");      /* command line */
        CHECK_INT_EQ(o.start, MOUNT_START_NOW);  /* file */
        CHECK(o.t2_timeout_s == 3.0);            /* file */
        CHECK_INT_EQ(o.materialize_delay_ms, 5); /* file */
        CHECK_INT_EQ(o.fuse_args.argc, 1);
        mount_options_free(&o);
    }

    /* A bad value in the file names the file and the line. */
    write_file(path, "max_pending=7\nt2_timeout=soon\n", 0600);
    snprintf(opt1, sizeof(opt1), "config=%s", path);
    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", opt1), -EINVAL);
    CHECK(strstr(err, ":2: t2_timeout=soon: not a number of seconds"));
    CHECK(strstr(err, path));
    mount_options_free(&o);
    /* Even when the command line overrides that key: the file's value is never used, but a
     * typo in the file is still reported. */
    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", opt1, "-o", "t2_timeout=1"), -EINVAL);
    CHECK(strstr(err, ":2: t2_timeout=soon: not a number of seconds"));
    mount_options_free(&o);

    snprintf(opt1, sizeof(opt1), "config=%s/missing.conf", tmpdir);
    CHECK_INT_EQ(PARSE(&o, "u", "m", "-o", opt1), -ENOENT);
    CHECK(strstr(err, "missing.conf: No such file or directory"));
    CHECK(strncmp(err, "config=", 7) == 0);
    mount_options_free(&o);
}

static void test_urls(void)
{
    static const char *good[] = {"http://127.0.0.1:8765", "https://twin.example.com",
                                 "http://h:1/",           "https://h:65535/base/path",
                                 "http://[::1]:80",       "HTTP://host_name.x-y"};
    static const char *bad[][2] = {
        {"ftp://h", "must start with http:// or https://"},
        {"127.0.0.1:8765", "must start with http:// or https://"},
        {"http://", "no host"},
        {"http://:80", "no host"},
        {"http://user:pw@h", "no user:password@"},
        {"http://h:0", "port must be 1-65535"},
        {"http://h:65536", "port must be 1-65535"},
        {"http://h:99999999999999999999", "bad port"},
        {"http://h:8a", "bad port"},
        {"http://h:", "empty port"},
        {"http://h h", "space or control character"},
        {"http://h\n", "space or control character"},
        {"http://h/x?y=1", "no query or fragment"},
        {"http://[::1", "unclosed ["},
        {"http://ho$t", "bad character in host"},
        /* What curl's parser lets through, the text rules refuse. */
        {"http://h/?", "no query or fragment"},
        {"http://h/#", "no query or fragment"},
        {"http:///h", "no host"},
        {"http://[::1]:", "empty port"},
        {"http://@h", "no user:password@"},
        {"http://:pw@h", "no user:password@"},
        {"http://h~x", "bad character in host"},
        /* What curl refuses: a URL is checked as it will be connected to. */
        {"http://[foo]", "not an IPv6 address"},
        {"http://[::1]x", "bad port"},
        {"http://h:80:90", "bad port"},
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (mount_check_url(good[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "good URL refused: %s: %s\n", good[i], err);
            exit(1);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT_EQ(mount_check_url(bad[i][0], err, sizeof(err)), -EINVAL);
        if (!strstr(err, bad[i][1]) || !strstr(err, "bad URL")) {
            fprintf(stderr, "URL %s: message '%s' lacks '%s'\n", bad[i][0], err, bad[i][1]);
            exit(1);
        }
    }
}

static void test_default_tracker(void)
{
    char *a, *b, *c, *d;
    const char *hex;

    setenv("XDG_STATE_HOME", "/state", 1);
    a = mount_default_tracker_path("http://127.0.0.1:8765");
    b = mount_default_tracker_path("http://127.0.0.1:8765");
    c = mount_default_tracker_path("http://127.0.0.1:8765/other");
    CHECK(a && b && c);
    CHECK(strncmp(a, "/state/twinfs/127.0.0.1-8765-", 29) == 0);
    hex = a + 29;
    CHECK_INT_EQ(strspn(hex, "0123456789abcdef"), 16);
    CHECK_STR_EQ(hex + 16, ".journal");
    CHECK_STR_EQ(a, b);       /* stable */
    CHECK(strcmp(a, c) != 0); /* one tracker per URL */
    free(a);
    free(b);
    free(c);

    a = mount_default_tracker_path("https://[::1]/");
    CHECK(a && strncmp(a, "/state/twinfs/___1_-443-", 24) == 0);
    free(a);

    /* A relative XDG_STATE_HOME is invalid per the spec: HOME's default is used. */
    setenv("XDG_STATE_HOME", "relative", 1);
    setenv("HOME", "/home/u", 1);
    d = mount_default_tracker_path("http://h");
    CHECK(d && strncmp(d, "/home/u/.local/state/twinfs/h-80-", 33) == 0);
    free(d);
    unsetenv("XDG_STATE_HOME");
    unsetenv("HOME");
    CHECK(mount_default_tracker_path("http://h") == NULL);
    CHECK(mount_default_tracker_path("bad") == NULL);
}

static void test_finish(void)
{
    struct mount_options o;
    char mnt[256], state[256], tok[256], opt[600], file[256], cwd[256];
    struct stat st;

    snprintf(mnt, sizeof(mnt), "%s/mnt", tmpdir);
    snprintf(state, sizeof(state), "%s/state", tmpdir);
    snprintf(tok, sizeof(tok), "%s/token", tmpdir);
    snprintf(file, sizeof(file), "%s/afile", tmpdir);
    CHECK(mkdir(mnt, 0700) == 0);
    write_file(file, "x", 0600);
    setenv("XDG_STATE_HOME", state, 1);
    unsetenv("TWINFS_TOKEN");

    /* Missing arguments. */
    CHECK_INT_EQ(PARSE(&o, "-f"), 0);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), -EINVAL);
    CHECK(strncmp(err, "missing URL", 11) == 0);
    mount_options_free(&o);
    CHECK_INT_EQ(PARSE(&o, "http://h:1"), 0);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), -EINVAL);
    CHECK(strncmp(err, "missing MOUNTPOINT", 18) == 0);
    mount_options_free(&o);
    CHECK_INT_EQ(PARSE(&o, "nope://h", mnt), 0);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "bad URL"));
    mount_options_free(&o);

    /* The mountpoint must exist and be a directory. */
    snprintf(opt, sizeof(opt), "%s/none", tmpdir);
    CHECK_INT_EQ(PARSE(&o, "http://h:1", opt), 0);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), -ENOENT);
    CHECK(strstr(err, "mountpoint: No such file or directory"));
    mount_options_free(&o);
    CHECK_INT_EQ(PARSE(&o, "http://h:1", file), 0);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), -ENOTDIR);
    CHECK(strstr(err, "mountpoint: Not a directory"));
    mount_options_free(&o);

    /* Good: trailing '/' dropped, mountpoint resolved, the default tracker under state but no
     * directory made: tracker_open makes them, checking each on the way. */
    snprintf(opt, sizeof(opt), "%s/mnt/../mnt/", tmpdir);
    CHECK_INT_EQ(PARSE(&o, "http://h:1//", opt), 0);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), 0);
    CHECK_STR_EQ(o.url, "http://h:1");
    CHECK_STR_EQ(o.mountpoint, mnt);
    CHECK(strncmp(o.tracker, state, strlen(state)) == 0);
    CHECK(stat(state, &st) < 0 && errno == ENOENT);
    CHECK(o.token == NULL);
    mount_options_free(&o);

    /* Relative paths become absolute: the daemon runs in /. */
    CHECK(getcwd(cwd, sizeof(cwd)));
    CHECK(chdir(tmpdir) == 0);
    CHECK_INT_EQ(PARSE(&o, "http://h:1", "mnt", "-o", "tracker=t.journal,schemas=mnt,cacert=afile"),
                 0);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), 0);
    snprintf(opt, sizeof(opt), "%s/t.journal", tmpdir);
    CHECK_STR_EQ(o.tracker, opt);
    CHECK_STR_EQ(o.schemas, mnt);
    CHECK_STR_EQ(o.cacert, file);
    CHECK_STR_EQ(o.mountpoint, mnt);
    mount_options_free(&o);
    CHECK_INT_EQ(PARSE(&o, "http://h:1", "mnt", "-o", "cacert=nope.pem"), 0);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), -ENOENT);
    CHECK_STR_EQ(err, "cacert=nope.pem: No such file or directory");
    mount_options_free(&o);
    CHECK_INT_EQ(PARSE(&o, "http://h:1", "mnt", "-o", "schemas=afile"), 0);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), -ENOTDIR);
    CHECK_STR_EQ(err, "schemas=afile: Not a directory");
    mount_options_free(&o);
    CHECK(chdir(cwd) == 0);
}

static void finish_with_token(struct mount_options *o, int expect)
{
    char mnt[256], opt[300];

    snprintf(mnt, sizeof(mnt), "%s/mnt", tmpdir);
    snprintf(opt, sizeof(opt), "token_file=%s/token", tmpdir);
    CHECK_INT_EQ(PARSE(o, "http://h:1", mnt, "-o", opt), 0);
    CHECK_INT_EQ(mount_options_finish(o, err, sizeof(err)), expect);
}

static void test_token(void)
{
    struct mount_options o;
    char tok[256], mnt[256];

    snprintf(tok, sizeof(tok), "%s/token", tmpdir);
    snprintf(mnt, sizeof(mnt), "%s/mnt", tmpdir);

    write_file(tok, "s3cret-Token\r\n", 0600);
    finish_with_token(&o, 0);
    CHECK_STR_EQ(o.token, "s3cret-Token");
    CHECK(!o.token_file_shared);
    mount_options_free(&o);

    write_file(tok, "s3cret", 0644);
    finish_with_token(&o, 0);
    CHECK_STR_EQ(o.token, "s3cret");
    CHECK(o.token_file_shared);
    mount_options_free(&o);
    write_file(tok, "s3cret", 0640);
    finish_with_token(&o, 0);
    CHECK(o.token_file_shared);
    mount_options_free(&o);

    /* Bad tokens: the message names the file, never the token. */
    write_file(tok, "\n  \n", 0600);
    finish_with_token(&o, -EINVAL);
    CHECK(strstr(err, "/token: empty"));
    mount_options_free(&o);
    write_file(tok, "two words\n", 0600);
    finish_with_token(&o, -EINVAL);
    CHECK(strstr(err, "space or control character"));
    CHECK(!strstr(err, "two"));
    mount_options_free(&o);
    {
        char big[MOUNT_MAX_TOKEN_BYTES + 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        write_file(tok, big, 0600);
        finish_with_token(&o, -EINVAL);
        CHECK(strstr(err, "longer than 4096 bytes"));
        mount_options_free(&o);
        big[MOUNT_MAX_TOKEN_BYTES] = '\0'; /* exactly the limit is fine */
        write_file(tok, big, 0600);
        finish_with_token(&o, 0);
        CHECK_INT_EQ(strlen(o.token), MOUNT_MAX_TOKEN_BYTES);
        mount_options_free(&o);
    }
    unlink(tok);
    finish_with_token(&o, -ENOENT);
    CHECK(strstr(err, "token_file=") && strstr(err, "No such file or directory"));
    mount_options_free(&o);

    /* The environment: read, then wiped from the environment block. */
    setenv("TWINFS_TOKEN", "envtok", 1);
    char *env = getenv("TWINFS_TOKEN");
    CHECK_INT_EQ(PARSE(&o, "http://h:1", mnt), 0);
    CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), 0);
    CHECK_STR_EQ(o.token, "envtok");
    CHECK(getenv("TWINFS_TOKEN") == NULL);
    CHECK(env[0] == '\0');
    mount_options_free(&o);

    /* A token over plain http to a host that is not the loopback is flagged (for a warning);
     * https, the loopback and no token are not. */
    {
        static const struct {
            const char *url;
            bool token, clear;
        } cases[] = {
            {"http://twin.example:8765", true, true},
            {"HTTP://10.0.0.7", true, true},
            {"http://[fe80::1]:80", true, true},
            {"http://127.example", true, true},
            {"https://twin.example", true, false},
            {"http://127.0.0.1:1", true, false},
            {"http://127.8.9.10", true, false},
            {"http://LocalHost:8765", true, false},
            {"http://[::1]:8765", true, false},
            {"http://twin.example", false, false},
            /* The loopback however curl normalizes its spelling. */
            {"http://[0:0::1]:1", true, false},
            {"http://0x7f.0.0.1", true, false},
            {"http://127.1", true, false},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            if (cases[i].token)
                setenv("TWINFS_TOKEN", "envtok", 1);
            else
                unsetenv("TWINFS_TOKEN");
            CHECK_INT_EQ(PARSE(&o, (char *)cases[i].url, mnt), 0);
            CHECK_INT_EQ(mount_options_finish(&o, err, sizeof(err)), 0);
            if (o.token_in_clear != cases[i].clear) {
                fprintf(stderr, "token_in_clear wrong for %s\n", cases[i].url);
                exit(1);
            }
            mount_options_free(&o);
        }
    }

    /* token_file wins over the environment. */
    write_file(tok, "filetok\n", 0600);
    setenv("TWINFS_TOKEN", "envtok", 1);
    finish_with_token(&o, 0);
    CHECK_STR_EQ(o.token, "filetok");
    mount_options_free(&o);
    unsetenv("TWINFS_TOKEN");
}

static void test_help_lists_every_option(void)
{
    static const char *names[] = {"token_file=",
                                  "cacert=",
                                  "tracker=",
                                  "schemas=",
                                  "no_t2",
                                  "t2_timeout=",
                                  "max_pending=",
                                  "start=beginning|now",
                                  "materialize_delay=",
                                  "entry_timeout=",
                                  "max_t2_open=",
                                  "config=",
                                  "t2_max_data=",
                                  "assets=GLOB",
                                  "shard=K/N",
                                  "logfile=FILE",
                                  "default: 4M)",
                                  "-f",
                                  "-d",
                                  "-s",
                                  "--help",
                                  "--version",
                                  "default: 10)",
                                  "default: 10000)",
                                  "default: 86400)",
                                  "default: 64)",
                                  "default: 100)"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    CHECK(f);
    mount_options_print_help(f, "twinfs");
    fclose(f);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strstr(buf, names[i])) {
            fprintf(stderr, "--help lacks %s\n", names[i]);
            exit(1);
        }
    }
    free(buf);
}

static void cleanup(void)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
    CHECK(mkdtemp(tmpdir));
    atexit(cleanup);
    RUN(test_defaults);
    RUN(test_good_values);
    RUN(test_flags);
    RUN(test_mount_helper_options);
    RUN(test_bad_values);
    RUN(test_selection);
    RUN(test_config_text);
    RUN(test_config_precedence);
    RUN(test_urls);
    RUN(test_default_tracker);
    RUN(test_finish);
    RUN(test_token);
    RUN(test_help_lists_every_option);
    fprintf(stderr, "test_options: ok\n");
    return 0;
}
