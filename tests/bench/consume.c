/* consume: the handler loop of the consume benchmark, in C. Lists DIR once, then for each
 * regular entry: open, read to EOF, close, unlink. Prints "consumed N SECONDS BYTES ERRORS".
 *
 *   consume DIR [MAX]
 *
 * The listing is part of the timed loop (a handler lists, then works through the list). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    char buf[65536];
    unsigned long max = argc > 2 ? strtoul(argv[2], NULL, 10) : (unsigned long)-1;
    unsigned long n = 0, cap = 1024, done = 0, errors = 0;
    unsigned long long bytes = 0;
    char **names = malloc(cap * sizeof(*names));

    if (argc < 2 || !names) {
        fprintf(stderr, "usage: consume DIR [MAX]\n");
        return 2;
    }
    double t0 = now();
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        free(names);
        return 1;
    }
    int dfd = dirfd(d);
    struct dirent *de;
    while (n < max && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap *= 2;
            char **nn = realloc(names, cap * sizeof(*names));
            if (!nn) {
                free(names);
                closedir(d);
                return 1;
            }
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) {
            free(names);
            closedir(d);
            return 1; /* a benchmark helper: the names already copied go with the process */
        }
        n++;
    }
    for (unsigned long i = 0; i < n; i++) {
        int fd = openat(dfd, names[i], O_RDONLY);
        if (fd < 0) {
            errors++;
            continue;
        }
        ssize_t r;
        while ((r = read(fd, buf, sizeof(buf))) > 0)
            bytes += (unsigned long long)r;
        if (r < 0)
            errors++;
        close(fd);
        if (unlinkat(dfd, names[i], 0) < 0)
            errors++;
        else
            done++;
        free(names[i]);
    }
    double t = now() - t0;
    closedir(d);
    free(names);
    printf("consumed %lu %.6f %llu %lu\n", done, t, bytes, errors);
    return 0;
}
