/* mountinfo: this namespace's mounts (mountinfo.h).
 *
 * A line of /proc/self/mountinfo: "ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL
 * FIELDS...] - FSTYPE SOURCE SUPER_OPTIONS", paths with octal escapes (\040 for a space). */
#include "mountinfo.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mount_line {
    uint64_t id;
    unsigned major, minor;
    const char *point;  /* unescaped */
    const char *fstype; /* "" if the line has none */
};

/* Undoes the octal escapes of a mountinfo path, in place. */
static void unescape_mount_path(char *s)
{
    char *out = s;

    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
            s += 4;
        } else {
            *out++ = *s++;
        }
    }
    *out = '\0';
}

/* Splits line (changed in place) into m. Returns false for a line it cannot read. */
static bool parse_line(char *line, struct mount_line *m)
{
    char *field, *point, *sep;
    int n = 0;

    if (sscanf(line, "%" SCNu64 " %*u %u:%u %n", &m->id, &m->major, &m->minor, &n) != 3 || !n)
        return false;
    field = strchr(line + n, ' '); /* after ROOT */
    if (!field)
        return false;
    point = field + 1;
    field = strchr(point, ' ');
    if (!field)
        return false;
    *field++ = '\0';
    sep = strstr(field, " - ");
    m->fstype = "";
    if (sep) {
        char *type = sep + 3;
        type[strcspn(type, " \n")] = '\0';
        m->fstype = type;
    }
    unescape_mount_path(point);
    m->point = point;
    return true;
}

/* Calls match on each mount until it returns true. Returns whether one did. */
static bool any_mount(bool (*match)(const struct mount_line *, const void *), const void *arg)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char *line = NULL;
    size_t cap = 0;
    bool found = false;

    if (!f)
        return false;
    while (!found && getline(&line, &cap, f) > 0) {
        struct mount_line m;
        found = parse_line(line, &m) && match(&m, arg);
    }
    free(line);
    fclose(f);
    return found;
}

static bool point_is(const struct mount_line *m, const void *path)
{
    return strcmp(m->point, path) == 0;
}

bool mountinfo_is_mount_point(const char *path)
{
    return any_mount(point_is, path);
}

struct fuse_wanted {
    uint64_t id;
    unsigned major, minor;
    const char *path;
};

static bool is_wanted_fuse(const struct mount_line *m, const void *arg)
{
    const struct fuse_wanted *w = arg;

    return m->id == w->id && m->major == w->major && m->minor == w->minor &&
           strcmp(m->point, w->path) == 0 &&
           (strcmp(m->fstype, "fuse") == 0 || strncmp(m->fstype, "fuse.", 5) == 0);
}

bool mountinfo_has_fuse(uint64_t id, unsigned dev_major, unsigned dev_minor, const char *path)
{
    struct fuse_wanted w = {id, dev_major, dev_minor, path};

    return any_mount(is_wanted_fuse, &w);
}
