/* Unit tests of dispatch/handler.c: the handler-name rule on a real directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handler.h"
#include "unit.h"

static int dirfd_;
static char dir[] = "/tmp/test_dispatch_handler.XXXXXX";

static void make(const char *name, mode_t mode)
{
    int fd = openat(dirfd_, name, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, mode);
    CHECK(fd >= 0);
    CHECK(fchmodat(dirfd_, name, mode, 0) == 0);
    close(fd);
}

static const char *lookup(const char *event)
{
    static char buf[300];
    int r = handler_for_event(dirfd_, event, buf, sizeof(buf));
    CHECK(r >= 0);
    CHECK_INT_EQ(r, buf[0] != '\0');
    return buf;
}

static void test_rule(void)
{
    CHECK_STR_EQ(lookup("NewDocSet"), ""); /* nothing at all */
    make("on_event_unmatched", 0755);
    CHECK_STR_EQ(lookup("NewDocSet"), "on_event_unmatched");
    make("do_newdocset", 0755);
    CHECK_STR_EQ(lookup("NewDocSet"), "do_newdocset"); /* the seed's lower-case form */
    make("do_NewDocSet", 0755);
    CHECK_STR_EQ(lookup("NewDocSet"), "do_NewDocSet"); /* the exact name first */
    CHECK_STR_EQ(lookup("newdocset"), "do_newdocset");
    CHECK_STR_EQ(lookup("NEWDOCSET"), "do_newdocset");
    CHECK_STR_EQ(lookup("SensorReading"), "on_event_unmatched");
}

static void test_not_handlers(void)
{
    make("do_Plain", 0644); /* not executable */
    CHECK_STR_EQ(lookup("Plain"), "on_event_unmatched");
    CHECK(mkdirat(dirfd_, "do_Dir", 0755) == 0); /* a directory */
    CHECK_STR_EQ(lookup("Dir"), "on_event_unmatched");
    CHECK(symlinkat("do_NewDocSet", dirfd_, "do_Link") == 0); /* a link to a handler is one */
    CHECK_STR_EQ(lookup("Link"), "do_Link");
    CHECK(symlinkat("nowhere", dirfd_, "do_Dangling") == 0);
    CHECK_STR_EQ(lookup("Dangling"), "on_event_unmatched");
    CHECK(!handler_exists(dirfd_, "do_Plain"));
    CHECK(handler_exists(dirfd_, "do_NewDocSet"));
    /* non-ASCII bytes are kept as they are: only A-Z are lower-cased */
    make("do_\xc3\x84x", 0755);
    CHECK_STR_EQ(lookup("\xc3\x84X"), "do_\xc3\x84x");
}

static void test_limits(void)
{
    char small[8];
    CHECK_INT_EQ(handler_for_event(dirfd_, "NewDocSet", small, sizeof(small)), -ENAMETOOLONG);
    CHECK_STR_EQ(small, "");
    char name[300];
    memset(name, 'A', 260);
    name[260] = '\0';
    CHECK_STR_EQ(lookup(name), "on_event_unmatched"); /* do_AAA... is too long for a file */
    CHECK(unlinkat(dirfd_, "on_event_unmatched", 0) == 0);
    CHECK_STR_EQ(lookup(name), "");
}

int main(void)
{
    CHECK(mkdtemp(dir));
    dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dirfd_ >= 0);
    RUN(test_rule);
    RUN(test_not_handlers);
    RUN(test_limits);
    close(dirfd_);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return 0;
}
