/* libFuzzer target for the option parser (mount/options.c and its files): the input is a config
 * file, then (after the first NUL) NUL-separated command-line arguments. Asserts that nothing
 * crashes or leaks and that a failure always comes with a one-line message. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32

static void check_message(int r, const char *err)
{
    if (r < 0 && (err[0] == '\0' || strchr(err, '\n')))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t conf_len = nul ? (size_t)(nul - data) : size;
    char *argv[MAX_ARGS + 4];
    char *args = NULL;
    int argc = 0, r;
    struct mount_options o;
    char err[512];

    argv[argc++] = "twinfs";
    if (nul) {
        size_t rest = size - conf_len - 1;
        args = malloc(rest + 1);
        if (!args)
            return 0;
        memcpy(args, nul + 1, rest);
        args[rest] = '\0';
        for (char *p = args; p < args + rest && argc < MAX_ARGS; p += strlen(p) + 1) {
            /* config= would read whatever file the input names, /dev/stdin included. */
            if (strstr(p, "config=")) {
                free(args);
                return 0;
            }
            argv[argc++] = p;
        }
    }
    argv[argc] = NULL;

    /* The parser rejects -o options it does not know only in fuse_session_new, so what comes
     * back must be well-formed whatever the input. */
    err[0] = '\0';
    r = mount_options_parse(argc, argv, &o, err, sizeof(err));
    check_message(r, err);
    if (r == 0) {
        err[0] = '\0';
        r = mount_options_apply_config(&o, (const char *)data, conf_len, "fuzz", err, sizeof(err));
        check_message(r, err);
        if (o.max_pending < 1 || o.max_t2_open < 1 || !(o.t2_timeout_s > 0) ||
            !(o.entry_timeout_s > 0))
            abort();
    }
    /* The URL goes through libcurl's parser: a refused one names no tracker file. */
    if (o.url) {
        char *tracker;

        err[0] = '\0';
        r = mount_check_url(o.url, err, sizeof(err));
        check_message(r, err);
        tracker = mount_default_tracker_path(o.url);
        if (r < 0 && tracker)
            abort();
        free(tracker);
    }
    mount_options_free(&o);
    free(args);
    return 0;
}
