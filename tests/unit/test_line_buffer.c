/* test_line_buffer: NDJSON framing across arbitrary splits, CRLF, and the line length bound. */
#include <errno.h>
#include <stdint.h>

#include "line_buffer.h"
#include "unit.h"

struct got {
    char text[8192]; /* lines joined with '|', dropped ones as "<dropped N>" */
    size_t n;
    int lines, dropped;
    int stop_after; /* return -EPIPE after this many lines (0: never) */
};

static int collect(void *u, const char *line, size_t len)
{
    struct got *g = u;
    int k;

    if (line) {
        CHECK(g->n + len + 1 < sizeof(g->text));
        memcpy(g->text + g->n, line, len);
        g->n += len;
        g->text[g->n++] = '|';
        g->lines++;
    } else {
        k = snprintf(g->text + g->n, sizeof(g->text) - g->n, "<dropped %zu>|", len);
        g->n += (size_t)k;
        g->dropped++;
    }
    g->text[g->n] = '\0';
    if (g->stop_after && g->lines >= g->stop_after)
        return -EPIPE;
    return 0;
}

/* Feeds input in pieces of every size from 1 to its length: the result must not change. */
static void check_all_splits(size_t max_line, const char *input, const char *want)
{
    size_t len = strlen(input);
    for (size_t step = 1; step <= len; step++) {
        struct line_buffer *lb = line_buffer_new(max_line);
        struct got g = {0};
        CHECK(lb != NULL);
        for (size_t off = 0; off < len; off += step) {
            size_t n = len - off < step ? len - off : step;
            CHECK_INT_EQ(line_buffer_feed(lb, input + off, n, collect, &g), 0);
        }
        if (strcmp(g.text, want) != 0)
            fprintf(stderr, "step %zu: got \"%s\" want \"%s\"\n", step, g.text, want);
        CHECK_STR_EQ(g.text, want);
        line_buffer_free(lb);
    }
}

static void test_framing(void)
{
    check_all_splits(100, "", "");
    check_all_splits(100, "a\nbb\nccc\n", "a|bb|ccc|");
    check_all_splits(100, "a\r\nbb\r\n", "a|bb|");
    check_all_splits(100, "a\r\r\n", "a\r|");     /* only one trailing \r is stripped */
    check_all_splits(100, "\n\n\r\nx\n\n", "x|"); /* blank lines are skipped */
    check_all_splits(100, "partial", "");         /* an unfinished line waits */
    check_all_splits(100, "one\ntwo", "one|");
}

static void test_bound(void)
{
    /* exactly max_line is fine, with or without \r; one more is dropped and reported once */
    check_all_splits(5, "12345\n123456\nab\n", "12345|<dropped 6>|ab|");
    check_all_splits(5, "12345\r\n123456\r\nab\n", "12345|<dropped 6>|ab|");
    check_all_splits(3, "abcdefghijkl\nxyz\n", "<dropped 12>|xyz|");
    check_all_splits(0, "a\n\nb\n", "<dropped 1>|<dropped 1>|");
}

static void test_big_line_memory(void)
{
    /* a 10 MB line through a 1 KiB bound: dropped, never held */
    struct line_buffer *lb = line_buffer_new(1024);
    struct got g = {0};
    char chunk[4096];

    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 2500; i++)
        CHECK_INT_EQ(line_buffer_feed(lb, chunk, sizeof(chunk), collect, &g), 0);
    CHECK_INT_EQ(line_buffer_feed(lb, "\n{}\n", 4, collect, &g), 0);
    CHECK_STR_EQ(g.text, "<dropped 10240000>|{}|");
    line_buffer_free(lb);
}

static void test_stop_and_reset(void)
{
    struct line_buffer *lb = line_buffer_new(100);
    struct got g = {.stop_after = 2};

    CHECK_INT_EQ(line_buffer_feed(lb, "a\nb\nc\n", 6, collect, &g), -EPIPE);
    CHECK_STR_EQ(g.text, "a|b|");
    /* after a reconnect the partial line is forgotten */
    g = (struct got){0};
    line_buffer_reset(lb);
    CHECK_INT_EQ(line_buffer_feed(lb, "half of a li", 12, collect, &g), 0);
    line_buffer_reset(lb);
    CHECK_INT_EQ(line_buffer_feed(lb, "new\n", 4, collect, &g), 0);
    CHECK_STR_EQ(g.text, "new|");
    /* reset also ends a drop in progress */
    g = (struct got){0};
    line_buffer_free(lb);
    lb = line_buffer_new(2);
    CHECK_INT_EQ(line_buffer_feed(lb, "toolong", 7, collect, &g), 0);
    line_buffer_reset(lb);
    CHECK_INT_EQ(line_buffer_feed(lb, "ok\n", 3, collect, &g), 0);
    CHECK_STR_EQ(g.text, "ok|");
    line_buffer_free(lb);
    line_buffer_free(NULL);
    CHECK(line_buffer_new(SIZE_MAX) == NULL);
}

int main(void)
{
    RUN(test_framing);
    RUN(test_bound);
    RUN(test_big_line_memory);
    RUN(test_stop_and_reset);
    return 0;
}
