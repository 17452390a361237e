/* test_dispatch: handlers by event name without regard to case, and the unmatched fallback. */
#include "twin/dispatch.h"
#include "twin/follower.h"
#include "unit.h"

struct calls {
    int newdocset, other, unmatched;
    const struct follower_event *last;
};

static void on_newdocset(void *u, const struct follower_event *ev)
{
    struct calls *c = u;
    c->newdocset++;
    c->last = ev;
}

static void on_other(void *u, const struct follower_event *ev)
{
    struct calls *c = u;
    c->other++;
    c->last = ev;
}

static void on_unmatched(void *u, const struct follower_event *ev)
{
    struct calls *c = u;
    c->unmatched++;
    c->last = ev;
}

static void test_dispatch(void)
{
    const struct dispatch_entry table[] = {
        {"newdocset", on_newdocset},
        {NULL, on_other}, /* skipped */
        {"Other", NULL},  /* skipped */
        {"Other", on_other},
        {"NewDocSet", on_other}, /* the first match wins */
    };
    size_t n = sizeof(table) / sizeof(table[0]);
    struct calls c = {0};
    struct follower_event ev = {.seq = 1, .asset = "a", .name = "NewDocSet"};

    CHECK_INT_EQ(dispatch_event(table, n, on_unmatched, &c, &ev), 1);
    CHECK_INT_EQ(c.newdocset, 1);
    CHECK(c.last == &ev);
    ev.name = "NEWDOCSET";
    CHECK_INT_EQ(dispatch_event(table, n, on_unmatched, &c, &ev), 1);
    CHECK_INT_EQ(c.newdocset, 2);
    ev.name = "other";
    CHECK_INT_EQ(dispatch_event(table, n, on_unmatched, &c, &ev), 1);
    CHECK_INT_EQ(c.other, 1);
    ev.name = "NewDocSet2";
    CHECK_INT_EQ(dispatch_event(table, n, on_unmatched, &c, &ev), 0);
    CHECK_INT_EQ(c.unmatched, 1);
    ev.name = "NewDocSe";
    CHECK_INT_EQ(dispatch_event(table, n, on_unmatched, &c, &ev), 0);
    CHECK_INT_EQ(c.unmatched, 2);
    ev.name = NULL;
    CHECK_INT_EQ(dispatch_event(table, n, on_unmatched, &c, &ev), 0);
    CHECK_INT_EQ(c.unmatched, 3);
    /* no unmatched handler: nothing runs */
    ev.name = "Unknown";
    CHECK_INT_EQ(dispatch_event(table, n, NULL, &c, &ev), 0);
    CHECK_INT_EQ(c.unmatched, 3);
    CHECK_INT_EQ(dispatch_event(NULL, 0, on_unmatched, &c, &ev), 0);
    CHECK_INT_EQ(c.unmatched, 4);
    CHECK_INT_EQ(c.newdocset, 2);
    CHECK_INT_EQ(c.other, 1);
}

int main(void)
{
    RUN(test_dispatch);
    return 0;
}
