/* options: twinfs-dispatch's command line. */
#pragma once
#include <stdbool.h>

struct options {
    const char *mnt;
    const char *handlers;
    int jobs;
    char **globs; /* --asset, n_globs of them (pointers into argv) */
    int n_globs;
    bool once;
    unsigned retries;
    double backoff_s;
    double timeout_s;
    double stop_timeout_s;
    bool verbose;
};

/* Parses argv into o. Returns 0 to run, 1 when --help or --version was answered (exit 0), -EINVAL
 * on a usage error (reported on stderr; exit 2), -ENOMEM. o->globs is the caller's to free. */
int options_parse(int argc, char **argv, struct options *o);
