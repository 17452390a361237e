/* tracker: the follower's durable record of which events it has acknowledged.
 *
 * Events are identified by their global seq. The tracker keeps a watermark W (every record
 * with seq <= W is handled) and the set of acked seqs above W, in an append-only journal:
 * tracker_ack writes its line with write(2) before it returns, so the ack survives a kill -9
 * of the process at any later moment. A torn last line (power loss mid-write) is ignored on
 * open; a lost ack only means the event is shown again (at-least-once). The journal is
 * compacted (rewritten to a new temporary file, fsync'd, renamed) when it grows. Not
 * thread-safe: the caller serializes.
 *
 * The journal must be out of other users' reach (ssh's StrictModes): each directory from / to
 * the journal's is owned by this process's user or root and not writable by group or others
 * unless sticky; the journal's own directory is not writable by group or others at all; a
 * symlink on the way is owned by the user or root; the journal is a regular file (never a
 * symlink) owned by the user and not writable by group or others. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct tracker;

/* Opens or creates the journal at path (missing directories are created, mode 0700). Takes an
 * exclusive lock on it: a second tracker on the same path gets -EBUSY. A path that breaks the
 * rules above gets -EPERM (tracker_check says why). Returns 0 or -errno. */
int tracker_open(const char *path, struct tracker **ret);

/* Checks path against the rules above without creating anything. Returns 0 (also when the
 * journal or some directories do not exist yet), or -EPERM (or the errno of the step that
 * failed) with why set to "PATH: reason" naming the offending file or directory. */
int tracker_check(const char *path, char *why, size_t why_size);

/* Closes, after tracker_flush. Accepts NULL. */
void tracker_close(struct tracker *t);

/* The watermark: resume the stream after this seq. 0 for a new journal. */
uint64_t tracker_watermark(const struct tracker *t);

/* True if seq <= watermark or seq was acked. */
bool tracker_is_acked(const struct tracker *t, uint64_t seq);

/* Records the ack of seq. Returns 0, -EALREADY if it was already acked (or is below the
 * watermark), or -errno if the journal could not be written (then the ack did not happen). */
int tracker_ack(struct tracker *t, uint64_t seq);

/* seq needs no ack (a record that is not an event, or an event whose asset is gone). Above the
 * watermark it closes the gap between the acks on either side, so they stay one range while
 * an older event waits for its ack. Memory only: it reaches the journal only inside a
 * compacted range, where it is harmless (nobody asks whether such a seq was acked). Returns 0
 * or -ENOMEM (then only the set is less compact). */
int tracker_note_handled(struct tracker *t, uint64_t seq);

/* Every record with seq <= w is handled (acked or needs no ack): moves the watermark up and
 * forgets acks below it. Cheap to call often: written lazily, durable by the next ack/flush. */
int tracker_advance(struct tracker *t, uint64_t w);

/* fsyncs the journal. Returns 0 or -errno. */
int tracker_flush(struct tracker *t);

/* Number of acked seqs held above the watermark (for status and tests). */
size_t tracker_acked_above(const struct tracker *t);

/* Rewrites the journal to its live content now (tracker_ack does this by itself when the
 * journal has grown past 1 MiB and 4x its live size). Returns 0 or -errno; on failure the
 * old journal stays in place and correct. */
int tracker_compact(struct tracker *t);
