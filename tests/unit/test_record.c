/* test_record: stream lines parsed, and every kind of bad line refused without a crash. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include "record.h"
#include "unit.h"

static int parse(const char *line, struct record *r, const char **err)
{
    return record_parse(line, strlen(line), r, err);
}

static void expect_fail(const char *line, int want)
{
    struct record r;
    const char *err = NULL;
    int got = parse(line, &r, &err);

    if (got != want)
        fprintf(stderr, "line %s: got %d\n", line, got);
    CHECK_INT_EQ(got, want);
    CHECK(err != NULL && *err);
    /* already cleared; clearing again is harmless */
    CHECK(r.asset == NULL && r.name == NULL && r.data == NULL && r.time == NULL);
    record_clear(&r);
}

static void test_event(void)
{
    struct record r;
    const char *err = "x";

    CHECK_INT_EQ(parse("{\"seq\":42,\"kind\":\"event\",\"asset\":\"pump-1\",\"offset\":0,"
                       "\"name\":\"NewDocSet\",\"version\":3,\"source\":\"integ\","
                       "\"time\":\"2024-01-01T00:00:00Z\",\"systime\":null,\"data\":\"AAEC/w==\"}",
                       &r, &err),
                 0);
    CHECK(err == NULL);
    CHECK_INT_EQ(r.kind, RECORD_EVENT);
    CHECK_INT_EQ(r.seq, 42);
    CHECK_STR_EQ(r.asset, "pump-1");
    CHECK_INT_EQ(r.offset, 0);
    CHECK_STR_EQ(r.name, "NewDocSet");
    CHECK_INT_EQ(r.version, 3);
    CHECK_STR_EQ(r.source, "integ");
    CHECK_STR_EQ(r.time, "2024-01-01T00:00:00Z");
    CHECK(r.systime == NULL);
    CHECK_INT_EQ(r.data_len, 4);
    CHECK(memcmp(r.data, "\x00\x01\x02\xff", 4) == 0);
    record_clear(&r);
    CHECK(r.asset == NULL && r.seq == 0);

    /* optional members absent, empty data, big numbers, unicode asset */
    CHECK_INT_EQ(parse("{\"seq\":18446744073709551615,\"kind\":\"event\",\"asset\":\"caf\\u00e9\","
                       "\"offset\":9223372036854775807,\"name\":\"a.b-c_9\",\"version\":-1,"
                       "\"data\":\"\",\"unknown_member\":[1,2]}",
                       &r, &err),
                 -EBADMSG); /* seq above INT64_MAX is not a JSON integer jansson holds */
    CHECK_INT_EQ(parse("{\"seq\":9007199254740991,\"kind\":\"event\",\"asset\":\"caf\\u00e9\","
                       "\"offset\":9007199254740991,\"name\":\"a.b-c_9\",\"version\":-1,"
                       "\"data\":\"\",\"unknown_member\":[1,2]}",
                       &r, &err),
                 0);
    CHECK_INT_EQ(r.seq, RECORD_MAX_SEQ);
    CHECK_STR_EQ(r.asset, "caf\xc3\xa9");
    CHECK_INT_EQ(r.offset, RECORD_MAX_SEQ);
    CHECK_INT_EQ(r.version, -1);
    CHECK(r.source == NULL && r.time == NULL && r.systime == NULL);
    CHECK_INT_EQ(r.data_len, 0);
    CHECK(r.data_not_b64 == NULL);
    record_clear(&r);

    /* data that is not base64 keeps the event: it is shown with the string as sent */
    CHECK_INT_EQ(parse("{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N\","
                       "\"version\":1,\"data\":\"AAA\"}",
                       &r, &err),
                 0);
    CHECK(r.data == NULL && r.data_len == 0);
    CHECK_INT_EQ(r.data_not_b64_len, 3);
    CHECK_STR_EQ(r.data_not_b64, "AAA");
    record_clear(&r);
    CHECK_INT_EQ(parse("{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N\","
                       "\"version\":1,\"data\":\"AA==\\n\"}",
                       &r, &err),
                 0);
    CHECK(r.data == NULL);
    CHECK_STR_EQ(r.data_not_b64, "AA==\n");
    record_clear(&r);
    CHECK(r.data_not_b64 == NULL);
}

static void test_other_kinds(void)
{
    struct record r;
    const char *err;

    CHECK_INT_EQ(
        parse("{\"seq\":1,\"kind\":\"asset_created\",\"asset\":\"A\",\"time\":\"t\"}", &r, &err),
        0);
    CHECK_INT_EQ(r.kind, RECORD_ASSET_CREATED);
    CHECK_INT_EQ(r.seq, 1);
    CHECK_STR_EQ(r.asset, "A");
    CHECK_STR_EQ(r.time, "t");
    record_clear(&r);
    CHECK_INT_EQ(parse("{\"seq\":2,\"kind\":\"asset_deleted\",\"asset\":\"A\"}", &r, &err), 0);
    CHECK_INT_EQ(r.kind, RECORD_ASSET_DELETED);
    CHECK(r.time == NULL);
    record_clear(&r);
    CHECK_INT_EQ(parse("  {\"kind\":\"caught_up\",\"head\":0}  ", &r, &err), 0);
    CHECK_INT_EQ(r.kind, RECORD_CAUGHT_UP);
    CHECK_INT_EQ(r.head, 0);
    CHECK_INT_EQ(r.seq, 0);
    record_clear(&r);
    CHECK_INT_EQ(parse("{\"kind\":\"heartbeat\",\"head\":77}", &r, &err), 0);
    CHECK_INT_EQ(r.kind, RECORD_HEARTBEAT);
    CHECK_INT_EQ(r.head, 77);
    record_clear(&r);
}

static void test_bad(void)
{
    static const char ev[] = "\"kind\":\"event\",\"asset\":\"A\",\"offset\":1,\"name\":\"N\","
                             "\"version\":1,\"data\":\"AA==\"";
    char line[512];

    expect_fail("", -EBADMSG);
    expect_fail("{", -EBADMSG);
    expect_fail("[1]", -EBADMSG);
    expect_fail("\"event\"", -EBADMSG);
    expect_fail("null", -EBADMSG);
    expect_fail("{} {}", -EBADMSG);
    expect_fail("{\"kind\":\"event\"", -EBADMSG);
    expect_fail("{\"seq\":1}", -EBADMSG);
    expect_fail("{\"kind\":5,\"seq\":1}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_renamed\",\"seq\":1,\"asset\":\"A\"}", -EINVAL);
    expect_fail("{\"kind\":\"caught_up\"}", -EBADMSG);
    expect_fail("{\"kind\":\"heartbeat\",\"head\":-1}", -EBADMSG);
    expect_fail("{\"kind\":\"heartbeat\",\"head\":\"5\"}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"asset\":\"A\"}", -EBADMSG);           /* no seq */
    expect_fail("{\"kind\":\"asset_created\",\"seq\":0,\"asset\":\"A\"}", -EBADMSG); /* seq 0 */
    expect_fail("{\"kind\":\"asset_created\",\"seq\":-3,\"asset\":\"A\"}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1.5,\"asset\":\"A\"}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"seq\":\"1\",\"asset\":\"A\"}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1,\"asset\":7}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1,\"asset\":\"A\",\"time\":5}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1,\"seq\":2,\"asset\":\"A\"}", -EBADMSG);
    /* unsafe asset names */
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1,\"asset\":\"\"}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1,\"asset\":\".\"}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1,\"asset\":\"..\"}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1,\"asset\":\"a/b\"}", -EBADMSG);
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1,\"asset\":\"a\\u0000b\"}", -EBADMSG);
    memset(line, 0, sizeof(line));
    snprintf(line, sizeof(line), "{\"kind\":\"asset_created\",\"seq\":1,\"asset\":\"%0256d\"}", 0);
    expect_fail(line, -EBADMSG);
    snprintf(line, sizeof(line), "{\"kind\":\"asset_created\",\"seq\":1,\"asset\":\"%0255d\"}", 0);
    {
        struct record r;
        const char *err;
        CHECK_INT_EQ(parse(line, &r, &err), 0);
        CHECK_INT_EQ(strlen(r.asset), 255);
        record_clear(&r);
    }
    /* invalid UTF-8 in the line itself */
    expect_fail("{\"kind\":\"asset_created\",\"seq\":1,\"asset\":\"\xff\"}", -EBADMSG);

    /* event members, one wrong at a time */
    const char *variants[] = {
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"name\":\"N\",\"version\":1,\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":-1,\"name\":\"N\",\"version\":1,"
        "\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":\"0\",\"name\":\"N\",\"version\":"
        "1,\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"version\":1,\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N X\",\"version\":1,"
        "\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N/X\",\"version\":1,"
        "\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"..\",\"version\":1,"
        "\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"caf\\u00e9\","
        "\"version\":1,\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N\",\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N\",\"version\":1.0,"
        "\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N\",\"version\":"
        "2147483648,\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N\",\"version\":1,"
        "\"source\":1,\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N\",\"version\":1,"
        "\"systime\":[],\"data\":\"\"}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N\",\"version\":1}",
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":0,\"name\":\"N\",\"version\":1,"
        "\"data\":null}",
    };
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
        expect_fail(variants[i], -EBADMSG);

    /* the same event with all members right parses (so the variants fail for their reason) */
    snprintf(line, sizeof(line), "{\"seq\":1,%s}", ev);
    {
        struct record r;
        const char *err;
        CHECK_INT_EQ(parse(line, &r, &err), 0);
        record_clear(&r);
    }
    /* a line with a NUL byte inside, and a length that cuts the JSON short */
    CHECK_INT_EQ(record_parse("{\"kind\":\"heartbeat\",\0\"head\":1}", 30, &(struct record){0},
                              &(const char *){NULL}),
                 -EBADMSG);
    {
        struct record r;
        const char *err;
        CHECK_INT_EQ(record_parse(line, 10, &r, &err), -EBADMSG);
        CHECK_INT_EQ(record_parse(line, strlen(line), &r, NULL), 0); /* ret_err may be NULL */
        record_clear(&r);
    }
    record_clear(NULL);
}

static void test_names(void)
{
    CHECK(record_name_is_safe("a"));
    CHECK(record_name_is_safe("...")); /* only . and .. are special */
    CHECK(record_name_is_safe(".hidden"));
    CHECK(record_name_is_safe("with space"));
    CHECK(record_name_is_safe("\xe6\x97\xa5\xe6\x9c\xac")); /* 日本 */
    CHECK(record_name_is_safe("\xf0\x9f\x98\x80"));         /* U+1F600 */
    CHECK(!record_name_is_safe(NULL));
    CHECK(!record_name_is_safe(""));
    CHECK(!record_name_is_safe("."));
    CHECK(!record_name_is_safe(".."));
    CHECK(!record_name_is_safe("/"));
    CHECK(!record_name_is_safe("a/"));
    CHECK(!record_name_is_safe("\xc0\xaf"));         /* overlong '/' */
    CHECK(!record_name_is_safe("\xe0\x80\xaf"));     /* overlong '/' */
    CHECK(!record_name_is_safe("\xed\xa0\x80"));     /* surrogate */
    CHECK(!record_name_is_safe("\xf4\x90\x80\x80")); /* above U+10FFFF */
    CHECK(!record_name_is_safe("\xe6\x97"));         /* truncated */
    CHECK(!record_name_is_safe("\x80"));
    char longname[300];
    memset(longname, 'x', sizeof(longname));
    longname[255] = '\0';
    CHECK(record_name_is_safe(longname));
    longname[255] = 'x';
    longname[256] = '\0';
    CHECK(!record_name_is_safe(longname));
}

/* jansson's allocator, failing the fail_at-th allocation (1-based) after arming. */
static int allocations, fail_at;

static void *failing_malloc(size_t n)
{
    return ++allocations == fail_at ? NULL : malloc(n);
}

/* Out of memory is -ENOMEM or a success, never -EBADMSG: the stream skips a bad record (it is
 * lost) but reads this one again after a reconnect. Every allocation of the parse fails once. */
static void test_out_of_memory(void)
{
    static const char line[] =
        "{\"seq\":1,\"kind\":\"event\",\"asset\":\"a\",\"offset\":0,\"name\":\"Ping\","
        "\"version\":1,\"source\":\"s\",\"time\":\"t\",\"data\":\"AA==\"}";
    struct record rec;
    const char *why = NULL;
    int nomem = 0;

    json_set_alloc_funcs(failing_malloc, free);
    for (fail_at = 1; fail_at < 64; fail_at++) {
        allocations = 0;
        int r = record_parse(line, strlen(line), &rec, &why);
        if (r != 0 && r != -ENOMEM)
            fprintf(stderr, "allocation %d failed: %d %s\n", fail_at, r, why);
        CHECK(r == 0 || r == -ENOMEM);
        if (r == -ENOMEM) {
            CHECK_STR_EQ(why, "out of memory");
            nomem++;
        }
        record_clear(&rec);
    }
    json_set_alloc_funcs(malloc, free);
    CHECK(nomem > 0); /* the failures did hit */
    CHECK_INT_EQ(record_parse(line, strlen(line), &rec, &why), 0);
    record_clear(&rec);
}

/* Seqs, heads and offsets stop at 2^53 - 1: past it they are refused, so no seq + k or
 * offset + k downstream (readdir cookies, the seq to resume after) can overflow. */
static void test_number_bounds(void)
{
    static const char *const too_big[] = {
        "9007199254740992",    /* 2^53 */
        "9223372036854775804", /* 2^63 - 4 */
        "9223372036854775805", /* 2^63 - 3: its readdir cookie was 2^63 */
        "9223372036854775807", /* 2^63 - 1 */
    };
    char line[512];
    struct record r;
    const char *err;

    for (size_t i = 0; i < sizeof(too_big) / sizeof(too_big[0]); i++) {
        snprintf(line, sizeof(line), "{\"seq\":%s,\"kind\":\"asset_created\",\"asset\":\"A\"}",
                 too_big[i]);
        expect_fail(line, -EBADMSG);
        snprintf(line, sizeof(line),
                 "{\"seq\":1,\"kind\":\"event\",\"asset\":\"A\",\"offset\":%s,\"name\":\"N\","
                 "\"version\":1,\"data\":\"\"}",
                 too_big[i]);
        expect_fail(line, -EBADMSG);
        snprintf(line, sizeof(line), "{\"kind\":\"caught_up\",\"head\":%s}", too_big[i]);
        expect_fail(line, -EBADMSG);
        snprintf(line, sizeof(line), "{\"kind\":\"heartbeat\",\"head\":%s}", too_big[i]);
        expect_fail(line, -EBADMSG);
    }
    CHECK_INT_EQ(parse("{\"kind\":\"heartbeat\",\"head\":9007199254740991}", &r, &err), 0);
    CHECK_INT_EQ(r.head, RECORD_MAX_SEQ);
    record_clear(&r);
    CHECK_INT_EQ(
        parse("{\"seq\":9007199254740991,\"kind\":\"asset_deleted\",\"asset\":\"A\"}", &r, &err),
        0);
    CHECK_INT_EQ(r.seq, RECORD_MAX_SEQ);
    record_clear(&r);
}

int main(void)
{
    RUN(test_event);
    RUN(test_other_kinds);
    RUN(test_bad);
    RUN(test_number_bounds);
    RUN(test_names);
    RUN(test_out_of_memory);
    return 0;
}
