/* log: see log.h. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <paths.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "twin/text.h"

/* log_msg formats up to LOG_MAX_INPUT bytes; escaped, each may take 4. */
#define LOG_MAX_INPUT 512
/* The file's line: a time, "twinfs[PID]: ", a level, and a message or a repeat count. */
#define LOG_LINE_MAX (4 * LOG_MAX_INPUT + 256)

#define LOG_FILE_FLAGS                                                                             \
    (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK)

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool log_syslog;
static bool log_debug;
static char last_msg[4 * LOG_MAX_INPUT + 1];
static time_t last_time;
static unsigned long repeats;

/* The log file: its path for the SIGHUP handler, and its descriptor, which the handler
 * replaces in place (dup3) with the reopened file. */
static char file_path[PATH_MAX];
static volatile sig_atomic_t file_fd = -1;
static volatile sig_atomic_t reopen_errno; /* the last failed reopen's errno, 0: none */

/* Opens the log file's path: a regular file, not a symbolic link, blocking once open (O_NONBLOCK
 * only keeps a FIFO put there from blocking the open). Async-signal-safe. Returns the
 * descriptor or -errno. */
static int open_file(const char *path)
{
    struct stat st;
    int fd = open(path, LOG_FILE_FLAGS, 0600);
    int r;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || fcntl(fd, F_SETFL, O_APPEND) < 0)
        r = -errno;
    else if (!S_ISREG(st.st_mode))
        r = -EINVAL;
    else
        return fd;
    close(fd);
    return r;
}

static void on_hup(int sig)
{
    int saved = errno;
    int fd = open_file(file_path);

    (void)sig;
    if (fd < 0) {
        reopen_errno = -fd;
    } else {
        if (file_fd >= 0 && dup3(fd, file_fd, O_CLOEXEC) < 0)
            reopen_errno = errno;
        close(fd);
    }
    errno = saved;
}

int log_to_file(const char *path)
{
    int fd;

    if (strlen(path) >= sizeof(file_path))
        return -ENAMETOOLONG;
    fd = open_file(path);
    if (fd < 0)
        return fd;
    pthread_mutex_lock(&log_lock);
    memcpy(file_path, path, strlen(path) + 1);
    file_fd = fd;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

int log_reopen_on_hup(void)
{
    struct sigaction sa = {.sa_handler = on_hup, .sa_flags = SA_RESTART};

    if (file_fd < 0)
        return -EINVAL;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGHUP, &sa, NULL) < 0 ? -errno : 0;
}

bool log_is_file(void)
{
    return file_fd >= 0;
}

bool log_syslog_listens(void)
{
    static const int types[] = {SOCK_DGRAM, SOCK_STREAM}; /* as syslog(3) tries them */
    struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = _PATH_LOG};

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
        bool ok;

        if (fd < 0)
            continue;
        ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (ok)
            return true;
    }
    return false;
}

void log_init(bool use_syslog, bool debug)
{
    pthread_mutex_lock(&log_lock);
    if (file_fd >= 0)
        use_syslog = false;
    if (use_syslog && !log_syslog)
        openlog("twinfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_syslog = use_syslog;
    log_debug = debug;
    pthread_mutex_unlock(&log_lock);
}

static const char *level_prefix(int prio)
{
    if (prio <= LOG_ERR)
        return "error: ";
    if (prio == LOG_WARNING)
        return "warning: ";
    if (prio >= LOG_DEBUG)
        return "debug: ";
    return "";
}

/* One line to the log file, "2026-11-23T21:44:01.123+0100 twinfs[PID]: LEVEL: msg", in one
 * write: an O_APPEND write of a line this short is not interleaved with another's. */
static void write_file_line(int prio, const char *msg)
{
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int m;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    m = snprintf(line + n, sizeof(line) - n, ".%03ld", ts.tv_nsec / 1000000);
    n += m > 0 ? (size_t)m : 0;
    n += strftime(line + n, sizeof(line) - n, "%z", &tm);
    m = snprintf(line + n, sizeof(line) - n, " twinfs[%ld]: %s%s\n", (long)getpid(),
                 level_prefix(prio), msg);
    if (m < 0)
        return;
    n = n + (size_t)m < sizeof(line) ? n + (size_t)m : sizeof(line) - 1; /* cut: still a line */
    line[n - 1] = '\n';
    for (size_t done = 0; done < n;) {
        ssize_t w = write(file_fd, line + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* a full disk: nowhere else to say it */
        done += (size_t)w;
    }
}

static void write_line(int prio, const char *msg)
{
    if (file_fd >= 0)
        write_file_line(prio, msg);
    else if (log_syslog)
        syslog(prio, "%s", msg);
    else
        fprintf(stderr, "twinfs: %s\n", msg);
}

/* Under log_lock: a reopen that failed in the SIGHUP handler, said in the file still open. */
const char *log_file_error(int r)
{
    switch (r) {
    case -ELOOP:
        return "a symbolic link (give the file it points to)";
    case -EINVAL:
        return "not a regular file";
    default:
        return strerror(-r);
    }
}

static void note_reopen_failure(void)
{
    char note[PATH_MAX + 128], msg[4 * sizeof(note)];
    int e = reopen_errno;

    if (e == 0)
        return;
    reopen_errno = 0;
    snprintf(note, sizeof(note), "logfile=%s: cannot reopen: %s; still writing to the old file",
             file_path, log_file_error(-e));
    log_escape(note, msg, sizeof(msg));
    write_line(LOG_ERR, msg);
}

void log_escape(const char *message, char *out, size_t size)
{
    size_t n = message ? strlen(message) : 0;

    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
        n--;
    text_escape(message ? message : "", n, out, size, 0);
}

/* Under log_lock: the count of the message repeated since it was written. */
static void flush_repeats(void)
{
    char note[sizeof(last_msg) + 64];

    if (repeats == 0)
        return;
    snprintf(note, sizeof(note), "last message repeated %lu times: %s", repeats, last_msg);
    write_line(LOG_INFO, note);
    repeats = 0;
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
    note_reopen_failure();
    /* A twin that is down produces the same failure every retry: say it once a minute. */
    if (strcmp(msg, last_msg) == 0 && now - last_time < LOG_REPEAT_WINDOW_S) {
        repeats++;
        pthread_mutex_unlock(&log_lock);
        return;
    }
    flush_repeats();
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
    flush_repeats();
    if (log_syslog)
        closelog();
    log_syslog = false;
    if (file_fd >= 0) {
        int fd = file_fd;

        signal(SIGHUP, SIG_IGN); /* no reopen into a closed slot */
        file_fd = -1;
        close(fd);
    }
    pthread_mutex_unlock(&log_lock);
}
