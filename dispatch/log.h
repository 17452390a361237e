/* log: the dispatcher's log lines, on stderr: "twinfs-dispatch: ...", one line each, control
 * characters and bytes that are not UTF-8 written "\xNN" (twin/text.h), each line one write. */
#pragma once
#include <stddef.h>

/* Logs a formatted line; what the format expands to is escaped. */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logs "PREFIX: TEXT" with text[0..n) escaped (a handler's stderr line). */
void log_text(const char *prefix, const char *text, size_t n);
