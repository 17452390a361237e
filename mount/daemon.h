/* daemon: going to the background without fuse_daemonize.
 *
 * fuse_daemonize forks after the fact, which loses every thread (the follower's stream thread
 * exists by then). So twinfs forks first, before any thread: the child does the work and
 * reports through a pipe; the parent waits for that report, so the command returns only once
 * the twin was checked and the mount made, with the child's one-line error if it failed.
 * One process has at most one of these, so the state is file-local. */
#pragma once

/* Forks. Never returns in the parent: it waits for the child's report and exits 0, or prints
 * "twinfs: MESSAGE" to stderr and exits with the child's status. Returns 0 in the child (now
 * a session leader in /), or -errno in the caller if the pipe or fork failed. */
int daemon_detach(void);

/* In the child: tells the parent all went well, then points stdin/out/err to /dev/null. */
void daemon_report_ok(void);

/* In the child: tells the parent what failed (one line) and with which exit status (1-255).
 * Does nothing if no report is pending (foreground, or already reported). */
void daemon_report_error(int status, const char *message);

/* True in a child of daemon_detach that has not reported yet. */
int daemon_report_pending(void);
