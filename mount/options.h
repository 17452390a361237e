/* options: the twinfs command line and config file.
 *
 * `twinfs URL MOUNTPOINT [-o opt[,opt...]] [-f] [-d] [-s] [-h] [-V]` in the conventions of
 * sshfs and libfuse: twinfs's own -o options are taken out, every other option is kept in
 * fuse_args for fuse_session_new (which rejects the unknown ones). `config=FILE` reads the same
 * keys from a file (`key=value` lines, `#` comments); a key given on the command line wins over
 * the file, wherever config= stands.
 *
 * Nothing in here touches the network or the mountpoint; mount_options_finish only reads the
 * token and config files and turns paths absolute. No FUSE session, no core (libcurl only for
 * its URL parser): the parser is a small library that the unit test and the fuzz target link
 * on their own. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <fuse_opt.h>

#include "twin/defaults.h"

/* Exit statuses of twinfs (documented in docs/twinfs.1). */
#define MOUNT_EXIT_OK      0
#define MOUNT_EXIT_FAILURE 1 /* the twin, the mountpoint, a file, the system */
#define MOUNT_EXIT_USAGE   2 /* the command line or the config file is wrong */

/* The options' defaults, for the parser, --help and the man page's numbers: twin/defaults.h's. */
#define MOUNT_DEFAULT_T2_TIMEOUT_S      TWIN_DEFAULT_T2_TIMEOUT_S
#define MOUNT_DEFAULT_MAX_PENDING       TWIN_DEFAULT_MAX_PENDING
#define MOUNT_DEFAULT_MAX_PENDING_MB    TWIN_DEFAULT_MAX_PENDING_MB
#define MOUNT_DEFAULT_MATERIALIZE_DELAY TWIN_DEFAULT_MATERIALIZE_DELAY_MS
#define MOUNT_DEFAULT_ENTRY_TIMEOUT_S   TWIN_DEFAULT_ENTRY_TIMEOUT_S
#define MOUNT_DEFAULT_MAX_T2_OPEN       TWIN_DEFAULT_MAX_T2_OPEN
#define MOUNT_DEFAULT_T2_MAX_DATA       TWIN_DEFAULT_T2_MAX_DATA
#define MOUNT_MAX_ASSET_GLOBS           64
#define MOUNT_MAX_SHARDS                65536
#define MOUNT_MAX_TOKEN_BYTES           4096
#define MOUNT_MAX_CONFIG_BYTES          65536 /* 64 KiB */
#define MOUNT_MAX_URL_BYTES             2048

enum mount_start {
    MOUNT_START_BEGINNING, /* a new tracker replays the twin's whole log */
    MOUNT_START_NOW,       /* a new tracker starts at the twin's head */
};

/* The parsed invocation. Strings are malloc'd and owned by the struct. */
struct mount_options {
    char *url;        /* normalized: no trailing '/' */
    char *mountpoint; /* as given; mount_options_finish makes it absolute */
    char *token_file;
    char *cacert;
    char *tracker;
    char *schemas;
    char *config;
    bool t2;
    bool events_dir; /* MOUNTPOINT/events shown */
    bool read_only;  /* ro: unlink (the ack) is refused; the kernel mount stays writable */
    double t2_timeout_s;
    unsigned max_pending;
    unsigned max_pending_mb;
    enum mount_start start;
    unsigned materialize_delay_ms;
    double entry_timeout_s;
    unsigned max_t2_open;
    size_t t2_max_data; /* bytes of request data written to a T2 file before its first read */
    char **assets;      /* assets=GLOB, in the order given: fnmatch(3) patterns over asset ids */
    size_t n_assets;    /* 0: every asset */
    unsigned shard_k;   /* shard=K/N: this mount follows shard K (1..N) of N; shard_n 0: all */
    unsigned shard_n;
    char *logfile; /* the backgrounded daemon's log; NULL: syslog */

    bool foreground; /* -f, or -d */
    bool debug;      /* -d */
    bool single_thread;
    bool show_help;
    bool show_version;

    char *token; /* from token_file or $TWINFS_TOKEN, read by mount_options_finish; wiped on free */
    bool token_file_shared; /* the token file is readable by group or others */
    bool token_in_clear;    /* a token and a plain http:// URL whose host is not the loopback */

    struct fuse_args fuse_args; /* argv[0] and the options for fuse_session_new */
    unsigned set_mask;          /* internal: which keys the command line gave */
};

/* Parses argv into *ret (initialized here, defaults first, then the config file, then the
 * command line on top). Returns 0, or -EINVAL with a one-line message in err (no "twinfs: "
 * prefix, e.g. "max_pending=abc: not a number"), or -errno if the config file cannot be read.
 * With -h or -V, ret->show_help/show_version is set and the positional arguments are not
 * required. *ret must be passed to mount_options_free in every case. */
int mount_options_parse(int argc, char **argv, struct mount_options *ret, char *err, size_t errlen);

/* Applies the text of a config file (source names it in messages, e.g. the path). Keys the
 * command line set are skipped. Returns 0, or -EINVAL with "SOURCE:LINE: message" in err. */
int mount_options_apply_config(struct mount_options *o, const char *text, size_t len,
                               const char *source, char *err, size_t errlen);

/* Sets one twinfs option (value NULL for a flag such as t2). from_cmdline records it so that a
 * config file cannot override it. Returns 0, -ENOENT if key is not a twinfs option (a FUSE
 * option then), or -EINVAL with a message in err. */
int mount_options_set(struct mount_options *o, const char *key, const char *value,
                      bool from_cmdline, char *err, size_t errlen);

/* Checks that URL and MOUNTPOINT were given and the URL is well formed, makes every path
 * absolute against the current directory, picks the default tracker path (its directories are
 * made by tracker_open, which checks each on the way), and reads the token (token_file, else
 * $TWINFS_TOKEN, whose value in the environment block is wiped). Returns 0, -EINVAL (usage,
 * message in err) or -errno (message in err). */
int mount_options_finish(struct mount_options *o, char *err, size_t errlen);

/* The default tracker path for url: $XDG_STATE_HOME/twinfs/<host>-<port>-<hash>.journal, with
 * XDG_STATE_HOME defaulting to $HOME/.local/state. Returns a malloc'd string or NULL (ENOMEM,
 * or no HOME, or a bad URL). */
char *mount_default_tracker_path(const char *url);

/* Checks a twin URL as libcurl, which connects to it, parses it: http:// or https://, a host
 * (an IPv6 address in brackets), an optional port 1-65535, no user:password@, no query or
 * fragment, no spaces or control characters. Returns 0, -EINVAL with the reason in err, or
 * -ENOMEM. */
int mount_check_url(const char *url, char *err, size_t errlen);

/* Prints the usage and every twinfs option with its default to f. */
void mount_options_print_help(FILE *f, const char *progname);

/* Frees the strings and fuse_args, wipes the token. Accepts a zeroed struct. */
void mount_options_free(struct mount_options *o);
