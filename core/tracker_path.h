/* tracker_path: where the tracker's journal lives, and the rules for the way to it (tracker.h:
 * ssh's StrictModes for every directory from / to the journal's, and for the journal itself).
 * tracker.c opens the journal through it; tracker_check is its answer for messages. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* Splits path into its directory and the journal's name (*ret_base, malloc'd), resolves the
 * directory from / one component at a time, checking each directory and symlink on the way,
 * and opens it into *ret_dirfd. Missing directories are made (mode 0700) when create is set;
 * otherwise the walk stops at the first missing one with 0 and *ret_dirfd = -1. shown gets the
 * resolved directory, for messages. Returns 0, or -EPERM (or the errno of the step that
 * failed) with why (may be NULL) set to "PATH: reason"; then *ret_base is NULL. */
int tracker_path_open(const char *path, bool create, int *ret_dirfd, char **ret_base, char *shown,
                      size_t shown_size, char *why, size_t why_size);

/* Checks the journal base in directory dir, as st describes it: a regular file owned by this
 * user, not writable by group or others. Returns 0, or -EPERM with why (may be NULL) set. */
int tracker_path_check_journal(const struct stat *st, const char *dir, const char *base, char *why,
                               size_t why_size);
