/* log: see log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "twin/text.h"

/* log_msg formats up to LOG_MAX_INPUT bytes; escaped, each may take 4. */
#define LOG_MAX_INPUT 512

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool log_syslog;
static bool log_debug;
static char last_msg[4 * LOG_MAX_INPUT + 1];
static time_t last_time;
static unsigned long repeats;

void log_init(bool use_syslog, bool debug)
{
    pthread_mutex_lock(&log_lock);
    if (use_syslog && !log_syslog)
        openlog("twinfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_syslog = use_syslog;
    log_debug = debug;
    pthread_mutex_unlock(&log_lock);
}

static void write_line(int prio, const char *msg)
{
    if (log_syslog)
        syslog(prio, "%s", msg);
    else
        fprintf(stderr, "twinfs: %s\n", msg);
}

void log_escape(const char *message, char *out, size_t size)
{
    size_t n = message ? strlen(message) : 0;

    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
        n--;
    text_escape(message ? message : "", n, out, size, 0);
}

void log_hook(int prio, const char *message)
{
    char msg[sizeof(last_msg)];
    time_t now = time(NULL);

    if (prio >= LOG_DEBUG && !log_debug)
        return;
    /* Names and messages come from the twin and from users: escaped, none can start a line
     * of its own or reach a terminal as an escape sequence. */
    log_escape(message, msg, sizeof(msg));

    pthread_mutex_lock(&log_lock);
    /* A twin that is down produces the same failure every retry: say it once a minute. */
    if (strcmp(msg, last_msg) == 0 && now - last_time < LOG_REPEAT_WINDOW_S) {
        repeats++;
        pthread_mutex_unlock(&log_lock);
        return;
    }
    if (repeats > 0) {
        char note[sizeof(last_msg) + 64];

        snprintf(note, sizeof(note), "last message repeated %lu times: %s", repeats, last_msg);
        write_line(LOG_INFO, note);
        repeats = 0;
    }
    memcpy(last_msg, msg, sizeof(last_msg));
    last_time = now;
    write_line(prio, msg);
    pthread_mutex_unlock(&log_lock);
}

void log_msg(int prio, const char *fmt, ...)
{
    char msg[LOG_MAX_INPUT + 1];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
    va_end(ap);
    log_hook(prio, msg);
}

void log_close(void)
{
    pthread_mutex_lock(&log_lock);
    if (repeats > 0) {
        char note[sizeof(last_msg) + 64];

        snprintf(note, sizeof(note), "last message repeated %lu times: %s", repeats, last_msg);
        write_line(LOG_INFO, note);
        repeats = 0;
    }
    if (log_syslog)
        closelog();
    log_syslog = false;
    pthread_mutex_unlock(&log_lock);
}
