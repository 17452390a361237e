/* log: the daemon's one log, to stderr (foreground), syslog (daemonized) or a file (logfile=,
 * or the fallback when no syslog listens).
 *
 * Core and fs report problems; this is where they are written, once: a message identical to
 * the previous one within LOG_REPEAT_WINDOW_S is counted, not repeated, and the count is
 * written with the next different message. Every message is escaped (core/text.h: control
 * characters and bytes that are not UTF-8 become \xNN), so text from the twin or a user can
 * neither forge a line nor reach a terminal as an escape sequence. Thread-safe.
 *
 * A log file gets one line per message, "TIME twinfs[PID]: LEVEL: message", written with one
 * write(2) on an O_APPEND descriptor: lines of several processes never mix, and a file that
 * logrotate's copytruncate truncates is written from its new end, without a hole. */
#pragma once
#include <stdbool.h>
#include <stdio.h>

#define LOG_REPEAT_WINDOW_S 60

/* Chooses the destination; before this, messages go to stderr. debug lets LOG_DEBUG through.
 * A file opened by log_to_file wins over both. */
void log_init(bool use_syslog, bool debug);

/* Opens path (absolute) for appending, made mode 0600 if missing, and makes it the log's
 * destination. The file must be a regular file, not reached through a symbolic link. Returns
 * 0, -ELOOP (a symbolic link), -EINVAL (not a regular file), -ENAMETOOLONG or -errno. */
int log_to_file(const char *path);

/* What a failure r (a negative errno) of log_to_file means, for a message. */
const char *log_file_error(int r);

/* With a log file: SIGHUP reopens it by its path (logrotate's postrotate `kill -HUP`), from the
 * signal handler; a failed reopen is reported in the old file with the next message. Installed
 * over any disposition (also an inherited SIG_IGN), so libfuse does not take SIGHUP as a stop.
 * Returns 0, -EINVAL without a log file, or -errno. */
int log_reopen_on_hup(void);

/* Whether the log is a file (log_to_file). */
bool log_is_file(void);

/* Whether a syslog daemon listens on the syslog socket (/dev/log): without one, syslog(3)
 * drops every message. */
bool log_syslog_listens(void);

/* Writes one message (printf format) at a syslog priority, prefixed "twinfs: " on stderr. */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The twinfs_log_fn / fuse_log hook: writes message (a trailing newline is dropped). */
void log_hook(int prio, const char *message);

/* Writes into out (size bytes) the form of message that the log writes: without a trailing
 * newline, escaped, cut to fit. */
void log_escape(const char *message, char *out, size_t size);

/* Writes the count of a repeated message, then closes syslog or the log file. */
void log_close(void);
