/* spawnloop: the process-start floor of the dispatch benchmark. Starts PROGRAM N times, one
 * after the other, each with vfork and execve and waited for, as twinfs-dispatch starts a
 * handler, and prints the starts per second. Run alone and as two copies at once, it shows how
 * many handler starts per second the machine allows with one job and with two: the ceiling of
 * `twinfs-dispatch -j 2` against `-j 1` with a handler that only exits.
 *
 *     spawnloop N PROGRAM */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    long n;

    if (argc != 3 || (n = strtol(argv[1], NULL, 10)) <= 0) {
        fprintf(stderr, "usage: spawnloop N PROGRAM\n");
        return 2;
    }
    char *child_argv[] = {argv[2], NULL};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        int status;
        pid_t pid = vfork();
        if (pid == 0) {
            execve(argv[2], child_argv, environ);
            _exit(127);
        }
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "spawnloop: %s did not run and exit 0\n", argv[2]);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.1f\n", (double)n / s);
    return 0;
}
