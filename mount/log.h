/* log: the daemon's one log, to stderr (foreground) or syslog (daemonized).
 *
 * Core and fs report problems; this is where they are written, once: a message identical to
 * the previous one within LOG_REPEAT_WINDOW_S is counted, not repeated, and the count is
 * written with the next different message. Every message is escaped (core/text.h: control
 * characters and bytes that are not UTF-8 become \xNN), so text from the twin or a user can
 * neither forge a line nor reach a terminal as an escape sequence. Thread-safe. */
#pragma once
#include <stdbool.h>
#include <stdio.h>

#define LOG_REPEAT_WINDOW_S 60

/* Chooses the destination; before this, messages go to stderr. debug lets LOG_DEBUG through. */
void log_init(bool use_syslog, bool debug);

/* Writes one message (printf format) at a syslog priority, prefixed "twinfs: " on stderr. */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The twinfs_log_fn / fuse_log hook: writes message (a trailing newline is dropped). */
void log_hook(int prio, const char *message);

/* Writes into out (size bytes) the form of message that the log writes: without a trailing
 * newline, escaped, cut to fit. */
void log_escape(const char *message, char *out, size_t size);

/* Closes syslog if it was opened. */
void log_close(void);
