/* daemon: see daemon.h. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int report_fd = -1;

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the parent is gone: nobody to tell */
        p += n;
        len -= (size_t)n;
    }
}

/* The parent's side: the first byte is the exit status, the rest the message. */
static void __attribute__((noreturn)) parent_wait(int fd, pid_t child)
{
    char buf[1024];
    size_t len = 0;
    int status;

    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof(buf) - 1)
            break;
    }
    close(fd);
    if (len >= 1 && buf[0] == 0)
        _exit(0);
    if (len >= 1) {
        buf[len] = '\0';
        fprintf(stderr, "twinfs: %s\n", buf + 1);
        waitpid(child, NULL, 0);
        _exit((unsigned char)buf[0]);
    }
    /* No report at all: the child died before it could say anything. */
    if (waitpid(child, &status, 0) == child && WIFSIGNALED(status))
        fprintf(stderr, "twinfs: the daemon died before mounting (signal %d)\n", WTERMSIG(status));
    else
        fprintf(stderr, "twinfs: the daemon exited before mounting\n");
    _exit(1);
}

int daemon_detach(void)
{
    int fds[2];
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        int r = -errno;
        close(fds[0]);
        close(fds[1]);
        return r;
    }
    if (pid > 0) {
        close(fds[1]);
        parent_wait(fds[0], pid);
    }
    close(fds[0]);
    report_fd = fds[1];
    /* Out of the terminal's session, so its hangup and ^C no longer reach the daemon; out of
     * the caller's directory, so it can be removed or unmounted. */
    setsid();
    if (chdir("/") < 0)
        return -errno;
    return 0;
}

void daemon_report_ok(void)
{
    static const char ok = 0;
    int null;

    if (report_fd < 0)
        return;
    write_all(report_fd, &ok, 1);
    close(report_fd);
    report_fd = -1;
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
}

void daemon_report_error(int status, const char *message)
{
    unsigned char code = (unsigned char)(status > 0 && status < 256 ? status : 1);

    if (report_fd < 0)
        return;
    write_all(report_fd, &code, 1);
    write_all(report_fd, message, strlen(message));
    close(report_fd);
    report_fd = -1;
}

int daemon_report_pending(void)
{
    return report_fd >= 0;
}
