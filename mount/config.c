/* config: the config file, `key=value` lines with `#` comments; see options.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "options_internal.h"

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
        return options_fail(err, errlen, -EINVAL, "%s: longer than %d bytes", source,
                            MOUNT_MAX_CONFIG_BYTES);
    if (memchr(text, '\0', len))
        return options_fail(err, errlen, -EINVAL, "%s: not a text file (NUL byte)", source);
    copy = strndup(text, len);
    if (!copy)
        return options_fail(err, errlen, -ENOMEM, "%s: out of memory", source);

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
            r = options_fail(err, errlen, -EINVAL, "%s:%u: unknown key '%s'", source, lineno, key);
            break;
        }
        if (r < 0) {
            options_fail(err, errlen, r, "%s:%u: %s", source, lineno, msg);
            break;
        }
    }
    free(copy);
    return r;
}

int options_read_file(const char *path, size_t max, char **ret, size_t *ret_len,
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
