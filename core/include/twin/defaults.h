/* defaults: the one definition of each default and limit that core, fs/ and mount/ share.
 *
 * A config field left 0 means the default here (follower.h, twinfs.h), and mount/'s options
 * start from the same values, so --help, the man page and the library never disagree. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* The twin's link: the wait for a T2 answer's first byte, the silence after which the stream
 * is dead, the cap of the reconnect backoff, the total time of one request/answer call. */
#define TWIN_DEFAULT_T2_TIMEOUT_S        10.0
#define TWIN_DEFAULT_HEARTBEAT_TIMEOUT_S 15.0
#define TWIN_DEFAULT_RECONNECT_MAX_S     5.0
#define TWIN_DEFAULT_CALL_TIMEOUT_MS     10000L

/* What the twin may send: the longest stream line, the largest event rendered as a file. */
#define TWIN_DEFAULT_MAX_RECORD_BYTES ((size_t)16 * 1024 * 1024)
#define TWIN_DEFAULT_MAX_EVENT_BYTES  ((size_t)64 * 1024 * 1024)

/* Flow control: events delivered and not acked, and their bytes. */
#define TWIN_DEFAULT_MAX_PENDING       10000u
#define TWIN_DEFAULT_MAX_PENDING_MB    256u
#define TWIN_DEFAULT_MAX_PENDING_BYTES ((uint64_t)TWIN_DEFAULT_MAX_PENDING_MB * 1024 * 1024)

/* T2 files open at once in a mount (default), and T2 streams open at once in a process (the
 * bound; max_t2_open cannot exceed it). */
#define TWIN_DEFAULT_MAX_T2_OPEN 64u
#define TWIN_MAX_T2_OPEN         4096u
/* Request data written to a T2 file before its first read, at most (bytes). */
#define TWIN_DEFAULT_T2_MAX_DATA ((size_t)4 * 1024 * 1024)
#define TWIN_MAX_T2_MAX_DATA     ((size_t)1024 * 1024 * 1024)

/* The file system: the kernel's cache of names and attributes, and the wait after a new asset
 * directory before its events are made. */
#define TWIN_DEFAULT_ENTRY_TIMEOUT_S      86400.0
#define TWIN_DEFAULT_MATERIALIZE_DELAY_MS 100u
