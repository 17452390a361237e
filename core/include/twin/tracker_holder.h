/* tracker_holder: a short note the process that holds a tracker leaves with it, so that another
 * process that finds the tracker in use (follower_new's -EBUSY) can tell who holds it and what
 * for. The follower neither writes nor reads it and the text is the holder's own: the lock on
 * the journal decides who holds the tracker, the note is only what the holder said about
 * itself.
 *
 * The note is an extended attribute of the journal's directory ("user.twinfs.holder." and the
 * journal's name), reached through the same checked walk as the journal (docs/follower.md,
 * "Acks and the tracker"): it adds no file next to the journal, and stays across compaction,
 * which replaces the journal's file. A filesystem without user extended attributes keeps no
 * note: -EOPNOTSUPP. */
#pragma once
#include <stddef.h>
#include <sys/types.h>

/* The longest note (filesystems may keep less: ext4 about 4000 bytes). */
#define TRACKER_HOLDER_MAX 4096

/* Replaces the note of the tracker at tracker_path with text, in one step (a reader sees one
 * note or the other, whole). For the process that holds the tracker, after follower_new.
 * Returns 0, -EMSGSIZE (text longer than TRACKER_HOLDER_MAX), -ENOENT (no such tracker
 * directory), -EPERM (the way breaks the rules), -EOPNOTSUPP, -errno. */
int tracker_holder_write(const char *tracker_path, const char *text);

/* Reads the note of the tracker at tracker_path into buf, NUL-terminated and cut to size - 1.
 * Returns its length, -ENOENT (no note), -EPERM (the way breaks the rules), -EOPNOTSUPP,
 * -errno. */
ssize_t tracker_holder_read(const char *tracker_path, char *buf, size_t size);
