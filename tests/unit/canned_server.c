#include "canned_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"

static void *serve(void *arg)
{
    struct canned_server *s = arg;
    while (s->next < s->n_answers) {
        int cfd = accept(s->fd, NULL, NULL);
        if (cfd < 0)
            break;
        size_t got = 0;
        while (got + 1 < sizeof(s->last_request)) {
            ssize_t n = read(cfd, s->last_request + got, sizeof(s->last_request) - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            s->last_request[got] = '\0';
            if (strstr(s->last_request, "\r\n\r\n"))
                break;
        }
        const char *ans = s->answers[s->next++];
        if (ans) {
            ssize_t w = write(cfd, ans, strlen(ans));
            (void)w;
        } else {
            usleep(800000); /* silent: the client must time out */
        }
        close(cfd);
    }
    return NULL;
}

void canned_server_start(struct canned_server *s, const char *const *answers, size_t n)
{
    memset(s, 0, sizeof(*s));
    s->answers = answers;
    s->n_answers = n;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    CHECK(bind(s->fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(s->fd, 8) == 0);
    CHECK(getsockname(s->fd, (struct sockaddr *)&a, &len) == 0);
    s->port = ntohs(a.sin_port);
    CHECK_INT_EQ(pthread_create(&s->thread, NULL, serve, s), 0);
}

void canned_server_stop(struct canned_server *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}
