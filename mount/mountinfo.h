/* mountinfo: this mount namespace's mounts, as /proc/self/mountinfo lists them. Read rather
 * than stat'ed: stat on a dead FUSE mount hangs or fails. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Whether path (absolute, resolved) is a mount point. */
bool mountinfo_is_mount_point(const char *path);

/* Whether the mount with this id (mountinfo's first field) and device is mounted on path and
 * is a FUSE mount (type "fuse" or "fuse.SUBTYPE"). */
bool mountinfo_has_fuse(uint64_t id, unsigned dev_major, unsigned dev_minor, const char *path);
