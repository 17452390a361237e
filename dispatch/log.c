/* log: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "twin/text.h"

#define LOG_INPUT  ((size_t)4096)
#define PREFIX_MAX ((size_t)1024)
#define LOG_TAG    "twinfs-dispatch: "

static void write_line(const char *prefix, const char *text, size_t n)
{
    char line[sizeof(LOG_TAG) + 4u * PREFIX_MAX + 4u * LOG_INPUT + 8u];
    size_t len = sizeof(LOG_TAG) - 1;

    memcpy(line, LOG_TAG, len);
    if (prefix) {
        text_escape(prefix, strnlen(prefix, PREFIX_MAX), line + len, 4u * PREFIX_MAX + 1u, 0);
        len += strlen(line + len);
        line[len++] = ':';
        line[len++] = ' ';
    }
    text_escape(text, n, line + len, sizeof(line) - len - 1, 0);
    len += strlen(line + len);
    line[len++] = '\n';
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

void log_msg(const char *fmt, ...)
{
    char text[LOG_INPUT];
    va_list ap;

    va_start(ap, fmt);
    int n =
        vsnprintf(text, sizeof(text), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    if (n < 0)
        return;
    write_line(NULL, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

void log_text(const char *prefix, const char *text, size_t n)
{
    write_line(prefix, text, n < LOG_INPUT ? n : LOG_INPUT);
}
