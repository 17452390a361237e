/* test_event_schema: AVRO binary -> JSON for every type, and bad data refused without harm. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "event_schema.h"
#include "unit.h"

/* ---- a tiny AVRO encoder for crafting inputs ---- */

struct enc {
    unsigned char buf[8192];
    size_t n;
};

static void enc_raw(struct enc *e, const void *p, size_t n)
{
    CHECK(e->n + n <= sizeof(e->buf));
    memcpy(e->buf + e->n, p, n);
    e->n += n;
}

static void enc_long(struct enc *e, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
    do {
        unsigned char b = z & 0x7f;
        z >>= 7;
        if (z)
            b |= 0x80;
        enc_raw(e, &b, 1);
    } while (z);
}

static void enc_bytes(struct enc *e, const void *p, size_t n)
{
    enc_long(e, (int64_t)n);
    enc_raw(e, p, n);
}

static void enc_str(struct enc *e, const char *s)
{
    enc_bytes(e, s, strlen(s));
}

static void enc_double(struct enc *e, double d)
{
    enc_raw(e, &d, 8); /* little-endian host */
}

static void enc_float(struct enc *e, float f)
{
    enc_raw(e, &f, 4);
}

static struct event_schema *parse(const char *text)
{
    struct event_schema *s = NULL;
    const char *err = NULL;
    int r = event_schema_parse(text, strlen(text), &s, &err);
    if (r != 0)
        fprintf(stderr, "schema parse failed: %s\n", err ? err : "?");
    CHECK_INT_EQ(r, 0);
    CHECK(s != NULL);
    return s;
}

/* Decodes and compares with the expected JSON text. */
static void expect_json(const struct event_schema *s, const void *data, size_t len,
                        const char *want)
{
    json_t *got = NULL, *exp;
    const char *err = NULL;
    json_error_t jerr;
    int r = event_schema_decode(s, data, len, &got, &err);

    if (r != 0)
        fprintf(stderr, "decode failed: %s\n", err ? err : "?");
    CHECK_INT_EQ(r, 0);
    exp = json_loads(want, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    CHECK(exp != NULL);
    if (!json_equal(got, exp)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY);
        fprintf(stderr, "got:  %s\nwant: %s\n", g, want);
        free(g);
    }
    CHECK(json_equal(got, exp));
    json_decref(got);
    json_decref(exp);
}

static void expect_bad(const struct event_schema *s, const void *data, size_t len)
{
    json_t *got = NULL;
    const char *err = NULL;
    int r = event_schema_decode(s, data, len, &got, &err);

    CHECK_INT_EQ(r, -EBADMSG);
    CHECK(got == NULL);
    CHECK(err != NULL && *err);
}

/* Written by python3-avro (tests/fuzz/corpus holds the same bytes): every type, nested
 * records, named types in unions, logical types. */
static const char all_schema[] =
    "{\"type\": \"record\", \"name\": \"All\", \"namespace\": \"com.example\", \"fields\": ["
    "{\"name\": \"s\", \"type\": \"string\"}, {\"name\": \"b\", \"type\": \"bytes\"},"
    "{\"name\": \"i\", \"type\": \"int\"}, {\"name\": \"l\", \"type\": \"long\"},"
    "{\"name\": \"f\", \"type\": \"float\"}, {\"name\": \"d\", \"type\": \"double\"},"
    "{\"name\": \"t\", \"type\": \"boolean\"}, {\"name\": \"n\", \"type\": \"null\"},"
    "{\"name\": \"e\", \"type\": {\"type\": \"enum\", \"name\": \"Color\", \"symbols\": "
    "[\"RED\", \"GREEN\", \"BLUE\"]}},"
    "{\"name\": \"fx\", \"type\": {\"type\": \"fixed\", \"name\": \"Four\", \"size\": 4}},"
    "{\"name\": \"arr\", \"type\": {\"type\": \"array\", \"items\": \"long\"}},"
    "{\"name\": \"m\", \"type\": {\"type\": \"map\", \"values\": \"string\"}},"
    "{\"name\": \"u1\", \"type\": [\"null\", \"string\"]},"
    "{\"name\": \"u2\", \"type\": [\"null\", \"string\"]},"
    "{\"name\": \"u3\", \"type\": [\"null\", \"Color\", {\"type\": \"record\", \"name\": "
    "\"Inner\", \"namespace\": \"other.ns\", \"fields\": [{\"name\": \"x\", \"type\": "
    "\"int\"}]}]},"
    "{\"name\": \"nested\", \"type\": {\"type\": \"record\", \"name\": \"Nested\", \"fields\": "
    "[{\"name\": \"inner\", \"type\": \"other.ns.Inner\"}, {\"name\": \"list\", \"type\": "
    "{\"type\": \"array\", \"items\": \"other.ns.Inner\"}}]}},"
    "{\"name\": \"date\", \"type\": {\"type\": \"int\", \"logicalType\": \"date\"}},"
    "{\"name\": \"ts\", \"type\": {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}},"
    "{\"name\": \"dec\", \"type\": {\"type\": \"bytes\", \"logicalType\": \"decimal\", "
    "\"precision\": 5, \"scale\": 2}},"
    "{\"name\": \"uuid\", \"type\": {\"type\": \"string\", \"logicalType\": \"uuid\"}}]}";

static const char all_hex[] =
    "1e68c3a96c6c6f202277c3b6726c64220a0001ff8041ff880f82808080808080200000c03f0000000000"
    "0002c00102deadbeef060203d8040004046b31047631046b3204763200000206796573040e0204040600f0a8"
    "02f6a1abfef9620430394831323365343536372d653839622d313264332d613435362d343236363134313734"
    "303030";

static const char all_json[] =
    "{\"s\": \"h\\u00e9llo \\\"w\\u00f6rld\\\"\", \"b\": \"\\u0000\\u0001\\u00ff\\u0080A\","
    " \"i\": -123456, \"l\": 9007199254740993, \"f\": 1.5, \"d\": -2.25, \"t\": true,"
    " \"n\": null, \"e\": \"GREEN\", \"fx\": \"\\u00de\\u00ad\\u00be\\u00ef\","
    " \"arr\": [1, -2, 300], \"m\": {\"k1\": \"v1\", \"k2\": \"v2\"}, \"u1\": null,"
    " \"u2\": {\"string\": \"yes\"}, \"u3\": {\"other.ns.Inner\": {\"x\": 7}},"
    " \"nested\": {\"inner\": {\"x\": 1}, \"list\": [{\"x\": 2}, {\"x\": 3}]},"
    " \"date\": 19000, \"ts\": 1700000000123, \"dec\": \"09\","
    " \"uuid\": \"123e4567-e89b-12d3-a456-426614174000\"}";

static size_t unhex(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    CHECK(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        CHECK(sscanf(hex + 2 * i, "%2x", &v) == 1);
        out[i] = (unsigned char)v;
    }
    return n;
}

static void test_all_types(void)
{
    struct event_schema *s = parse(all_schema);
    unsigned char data[512];
    size_t n = unhex(all_hex, data, sizeof(data));

    expect_json(s, data, n, all_json);
    /* every strict prefix is truncated data, and one byte more is trailing garbage */
    for (size_t k = 0; k < n; k++)
        expect_bad(s, data, k);
    data[n] = 0;
    expect_bad(s, data, n + 1);
    event_schema_free(s);
}

static void test_unions(void)
{
    struct event_schema *s = parse("[\"null\", \"long\", \"double\", {\"type\": \"enum\", "
                                   "\"name\": \"E\", \"namespace\": \"a.b\", \"symbols\": "
                                   "[\"X\"]}, {\"type\": \"array\", \"items\": \"int\"}, "
                                   "{\"type\": \"map\", \"values\": \"int\"}]");
    struct enc e = {0};

    enc_long(&e, 0);
    expect_json(s, e.buf, e.n, "null");
    e.n = 0;
    enc_long(&e, 1);
    enc_long(&e, -5);
    expect_json(s, e.buf, e.n, "{\"long\": -5}");
    e.n = 0;
    enc_long(&e, 2);
    enc_double(&e, 0.5);
    expect_json(s, e.buf, e.n, "{\"double\": 0.5}");
    e.n = 0;
    enc_long(&e, 3);
    enc_long(&e, 0);
    expect_json(s, e.buf, e.n, "{\"a.b.E\": \"X\"}");
    e.n = 0;
    enc_long(&e, 4);
    enc_long(&e, 1);
    enc_long(&e, 9);
    enc_long(&e, 0);
    expect_json(s, e.buf, e.n, "{\"array\": [9]}");
    e.n = 0;
    enc_long(&e, 5);
    enc_long(&e, 0);
    expect_json(s, e.buf, e.n, "{\"map\": {}}");
    /* bad union indexes */
    e.n = 0;
    enc_long(&e, 6);
    expect_bad(s, e.buf, e.n);
    e.n = 0;
    enc_long(&e, -1);
    expect_bad(s, e.buf, e.n);
    e.n = 0;
    enc_long(&e, INT64_MAX);
    expect_bad(s, e.buf, e.n);
    event_schema_free(s);
}

static void test_enum(void)
{
    struct event_schema *s =
        parse("{\"type\": \"enum\", \"name\": \"C\", \"symbols\": [\"A\", \"B\"]}");
    struct enc e = {0};

    enc_long(&e, 1);
    expect_json(s, e.buf, e.n, "\"B\"");
    e.n = 0;
    enc_long(&e, 2);
    expect_bad(s, e.buf, e.n);
    e.n = 0;
    enc_long(&e, -1);
    expect_bad(s, e.buf, e.n);
    event_schema_free(s);
}

static void test_floats(void)
{
    struct event_schema *d = parse("\"double\"");
    struct event_schema *f = parse("\"float\"");
    struct enc e = {0};

    enc_double(&e, NAN);
    expect_json(d, e.buf, e.n, "\"NaN\"");
    e.n = 0;
    enc_double(&e, -INFINITY);
    expect_json(d, e.buf, e.n, "\"-Infinity\"");
    e.n = 0;
    enc_float(&e, INFINITY);
    expect_json(f, e.buf, e.n, "\"Infinity\"");
    e.n = 0;
    enc_float(&e, -0.25f);
    expect_json(f, e.buf, e.n, "-0.25");
    expect_bad(f, e.buf, 3);
    expect_bad(d, e.buf, 4);
    event_schema_free(d);
    event_schema_free(f);
}

static void test_primitives_bad(void)
{
    struct event_schema *b = parse("\"boolean\"");
    struct event_schema *i = parse("\"int\"");
    struct event_schema *l = parse("\"long\"");
    struct event_schema *str = parse("\"string\"");
    struct event_schema *by = parse("\"bytes\"");
    struct event_schema *n = parse("\"null\"");
    struct enc e = {0};
    unsigned char two = 2, one = 1;

    expect_json(b, &one, 1, "true");
    expect_bad(b, &two, 1);
    expect_bad(b, NULL, 0);
    expect_json(n, NULL, 0, "null");
    expect_bad(n, &one, 1);

    enc_long(&e, (int64_t)INT32_MAX + 1);
    expect_bad(i, e.buf, e.n);
    e.n = 0;
    enc_long(&e, INT32_MIN);
    expect_json(i, e.buf, e.n, "-2147483648");
    e.n = 0;
    enc_long(&e, INT64_MIN);
    expect_json(l, e.buf, e.n, "-9223372036854775808");
    /* a varint of 11 bytes */
    e.n = 0;
    for (int k = 0; k < 10; k++)
        enc_raw(&e, "\xff", 1);
    enc_raw(&e, "\x01", 1);
    expect_bad(l, e.buf, e.n);

    /* absurd lengths: avro-c would try to allocate them */
    e.n = 0;
    enc_long(&e, (int64_t)1 << 60);
    enc_raw(&e, "abc", 3);
    expect_bad(str, e.buf, e.n);
    expect_bad(by, e.buf, e.n);
    e.n = 0;
    enc_long(&e, INT64_MAX);
    expect_bad(str, e.buf, e.n);
    e.n = 0;
    enc_long(&e, -3);
    enc_raw(&e, "abc", 3);
    expect_bad(by, e.buf, e.n);
    e.n = 0;
    enc_long(&e, 4);
    enc_raw(&e, "abc", 3); /* one byte short */
    expect_bad(str, e.buf, e.n);

    /* strings must be UTF-8; embedded NUL is fine */
    e.n = 0;
    enc_bytes(&e, "a\xff", 2);
    expect_bad(str, e.buf, e.n);
    expect_json(by, e.buf, e.n, "\"a\\u00ff\"");
    e.n = 0;
    enc_bytes(&e, "a\0b", 3);
    expect_json(str, e.buf, e.n, "\"a\\u0000b\"");
    e.n = 0;
    enc_str(&e, "");
    expect_json(str, e.buf, e.n, "\"\"");
    expect_json(by, e.buf, e.n, "\"\"");

    event_schema_free(b);
    event_schema_free(i);
    event_schema_free(l);
    event_schema_free(str);
    event_schema_free(by);
    event_schema_free(n);
}

static void test_arrays_maps(void)
{
    struct event_schema *an = parse("{\"type\": \"array\", \"items\": \"null\"}");
    struct event_schema *al = parse("{\"type\": \"array\", \"items\": \"long\"}");
    struct event_schema *m = parse("{\"type\": \"map\", \"values\": \"long\"}");
    struct event_schema *er = parse("{\"type\": \"array\", \"items\": {\"type\": \"record\", "
                                    "\"name\": \"Empty\", \"fields\": []}}");
    struct enc e = {0};

    /* a block with its byte size (negative count), then a plain block */
    enc_long(&e, -2);
    enc_long(&e, 2);
    enc_long(&e, 1);
    enc_long(&e, 2);
    enc_long(&e, 1);
    enc_long(&e, 3);
    enc_long(&e, 0);
    expect_json(al, e.buf, e.n, "[1, 2, 3]");

    /* billions of items that take no bytes: refused before avro-c loops over them */
    e.n = 0;
    enc_long(&e, (int64_t)1 << 40);
    enc_long(&e, 0);
    expect_bad(an, e.buf, e.n);
    expect_bad(er, e.buf, e.n);
    e.n = 0;
    enc_long(&e, 3);
    enc_long(&e, 0);
    expect_json(an, e.buf, e.n, "[null, null, null]");
    /* avro-c cannot hold arrays of zero-size records ("Couldn't expand array"): an error,
     * not a crash (documented in event_schema.h) */
    expect_bad(er, e.buf, e.n);
    /* many items with bytes are claimed but not present */
    e.n = 0;
    enc_long(&e, (int64_t)1 << 40);
    enc_long(&e, 1);
    expect_bad(al, e.buf, e.n);
    /* INT64_MIN as a block count, and a block size past the end */
    e.n = 0;
    enc_long(&e, INT64_MIN);
    expect_bad(al, e.buf, e.n);
    e.n = 0;
    enc_long(&e, -1);
    enc_long(&e, 100);
    enc_long(&e, 1);
    enc_long(&e, 0);
    expect_bad(al, e.buf, e.n);
    /* missing terminating block */
    e.n = 0;
    enc_long(&e, 1);
    enc_long(&e, 1);
    expect_bad(al, e.buf, e.n);

    e.n = 0;
    enc_long(&e, 2);
    enc_str(&e, "a");
    enc_long(&e, 1);
    enc_str(&e, "b\xc3\xa9");
    enc_long(&e, 2);
    enc_long(&e, 0);
    expect_json(m, e.buf, e.n, "{\"a\": 1, \"b\\u00e9\": 2}");
    e.n = 0;
    enc_long(&e, 1);
    enc_bytes(&e, "\xff", 1);
    enc_long(&e, 1);
    enc_long(&e, 0);
    expect_bad(m, e.buf, e.n); /* key not UTF-8 */
    e.n = 0;
    enc_long(&e, 1);
    enc_long(&e, (int64_t)1 << 50);
    expect_bad(m, e.buf, e.n); /* absurd key length */

    event_schema_free(an);
    event_schema_free(al);
    event_schema_free(m);
    event_schema_free(er);
}

static void test_recursive_depth(void)
{
    struct event_schema *s = parse("{\"type\": \"record\", \"name\": \"Node\", \"fields\": ["
                                   "{\"name\": \"v\", \"type\": \"int\"},"
                                   "{\"name\": \"next\", \"type\": [\"null\", \"Node\"]}]}");
    struct enc e = {0};

    /* 3 deep: fine */
    for (int k = 0; k < 3; k++) {
        enc_long(&e, k);
        enc_long(&e, 1);
    }
    enc_long(&e, 3);
    enc_long(&e, 0);
    expect_json(s, e.buf, e.n,
                "{\"v\": 0, \"next\": {\"Node\": {\"v\": 1, \"next\": {\"Node\": {\"v\": 2, "
                "\"next\": {\"Node\": {\"v\": 3, \"next\": null}}}}}}}");
    /* 2000 deep: refused, no stack overflow */
    e.n = 0;
    for (int k = 0; k < 2000; k++) {
        enc_long(&e, 0);
        enc_long(&e, 1);
    }
    enc_long(&e, 0);
    enc_long(&e, 0);
    expect_bad(s, e.buf, e.n);
    event_schema_free(s);
}

static void test_bad_schemas(void)
{
    const char *bad[] = {"",
                         "{",
                         "{\"type\": \"nonsense\"}",
                         "42",
                         "{\"type\": \"record\", \"name\": \"R\"}",
                         "{\"type\": \"enum\", \"name\": \"E\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct event_schema *s = NULL;
        const char *err = NULL;
        int r = event_schema_parse(bad[i], strlen(bad[i]), &s, &err);
        if (r != -EINVAL)
            fprintf(stderr, "schema %zu: %s accepted\n", i, bad[i]);
        CHECK_INT_EQ(r, -EINVAL);
        CHECK(s == NULL);
        CHECK(err != NULL);
    }
    event_schema_free(NULL);
}

struct thread_arg {
    const struct event_schema *s;
    const unsigned char *data;
    size_t len;
    const json_t *want;
    int failures;
};

static void *decode_loop(void *p)
{
    struct thread_arg *a = p;
    for (int k = 0; k < 2000; k++) {
        json_t *got = NULL;
        if (event_schema_decode(a->s, a->data, a->len, &got, NULL) != 0 ||
            !json_equal(got, a->want))
            a->failures++;
        json_decref(got);
    }
    return NULL;
}

static void test_threads(void)
{
    struct event_schema *s = parse(all_schema);
    unsigned char data[512];
    size_t n = unhex(all_hex, data, sizeof(data));
    json_t *want = json_loads(all_json, JSON_ALLOW_NUL, NULL);
    pthread_t th[4];
    struct thread_arg args[4];

    CHECK(want != NULL);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){.s = s, .data = data, .len = n, .want = want};
        CHECK_INT_EQ(pthread_create(&th[i], NULL, decode_loop, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT_EQ(args[i].failures, 0);
    }
    json_decref(want);
    event_schema_free(s);
}

/* ---- the work of one decode is bounded ---- */

/* Record Ri of a chain: R1 has fanout[0] null fields; Ri has fanout[i-1] fields of type
 * R(i-1), the first defining it, the others referring to it by name. */
static void chain_record(FILE *f, const unsigned *fanout, unsigned i)
{
    fprintf(f, "{\"type\": \"record\", \"name\": \"R%u\", \"fields\": [", i);
    for (unsigned j = 0; j < fanout[i - 1]; j++) {
        fprintf(f, "%s{\"name\": \"f%u\", \"type\": ", j ? ", " : "", j);
        if (i == 1)
            fprintf(f, "\"null\"");
        else if (j == 0)
            chain_record(f, fanout, i - 1);
        else
            fprintf(f, "\"R%u\"", i - 1);
        fprintf(f, "}");
    }
    fprintf(f, "]}");
}

/* The schema of records R1..Rk: the empty value of Rk holds the product of fanout. */
static char *chain_schema(const unsigned *fanout, unsigned k)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);

    CHECK(f != NULL);
    chain_record(f, fanout, k);
    CHECK(fclose(f) == 0);
    return text;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void expect_over(const struct event_schema *s, const void *data, size_t len,
                        const struct event_schema_limits *lim, int want_r, const char *want_err)
{
    json_t *got = NULL;
    const char *err = NULL;
    int r = event_schema_decode_limited(s, data, len, lim, &got, &err);

    if (r != want_r)
        fprintf(stderr, "decode: %d (%s), want %d\n", r, err ? err : "ok", want_r);
    CHECK_INT_EQ(r, want_r);
    CHECK(got == NULL);
    if (want_err)
        CHECK_STR_EQ(err, want_err);
    else
        CHECK(err != NULL && *err);
}

/* The schema of the attack: records of 1000 fields referring to the previous record by name,
 * an empty value expanding to 10^7, 10^9 and 10^12 nulls (the data takes no byte). avro-c
 * aborted building 10^9 and the walker ran for ever over 10^12: now the schema is refused
 * when it is parsed, in time linear in its text, and every decode fails at once. */
static void test_named_type_expansion(void)
{
    static const unsigned sizes[][4] = {
        {10, 1000, 1000, 0}, {1000, 1000, 1000, 0}, {1000, 1000, 1000, 1000}};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        unsigned k = sizes[t][3] ? 4 : 3;
        char *text = chain_schema(sizes[t], k);
        double t0 = now_s();
        struct event_schema *s = parse(text);
        for (int i = 0; i < 3; i++)
            expect_over(s, "", 0, NULL, -EFBIG,
                        "schema expands to more values than one event may decode");
        fprintf(stderr, "%u records, %zu bytes of schema: parsed and refused in %.3f s\n", k,
                strlen(text), now_s() - t0);
        event_schema_free(s);
        free(text);
    }

    /* the same shape within the budget decodes: 8 x 8 x 8 nulls */
    static const unsigned small[] = {8, 8, 8};
    char *text = chain_schema(small, 3);
    struct event_schema *s = parse(text);
    json_t *got = NULL;
    CHECK_INT_EQ(event_schema_decode(s, "", 0, &got, NULL), 0);
    CHECK_INT_EQ(json_object_size(got), 8);
    json_t *mid = json_object_get(got, "f7");
    CHECK(json_is_object(mid) && json_object_size(mid) == 8);
    CHECK(json_is_null(json_object_get(json_object_get(mid, "f3"), "f0")));
    json_decref(got);
    /* a caller's tighter budget counts the empty value too: 1 + 8 + 64 + 512 values */
    struct event_schema_limits lim = {.max_values = 584};
    expect_over(s, "", 0, &lim, -EFBIG, NULL);
    lim.max_values = 585;
    CHECK_INT_EQ(event_schema_decode_limited(s, "", 0, &lim, &got, NULL), 0);
    json_decref(got);
    event_schema_free(s);
    free(text);
}

/* Records that contain themselves, or nest deeper than the walker allows whatever the data,
 * are refused without building anything (avro-c would recurse until the stack ends). */
static void test_eager_nesting(void)
{
    struct event_schema *s =
        parse("{\"type\": \"record\", \"name\": \"Self\", \"fields\": ["
              "{\"name\": \"v\", \"type\": \"int\"}, {\"name\": \"me\", \"type\": \"Self\"}]}");
    expect_over(s, "\x02", 1, NULL, -EBADMSG, "schema nests deeper than 64 levels");
    event_schema_free(s);

    unsigned ones[70];
    for (size_t i = 0; i < 70; i++)
        ones[i] = 1;
    for (unsigned k = 60; k <= 70; k += 10) {
        char *text = chain_schema(ones, k);
        s = parse(text);
        json_t *got = NULL;
        int r = event_schema_decode(s, "", 0, &got, NULL);
        /* k records nest k - 1 levels below the root, the null leaf one more */
        CHECK_INT_EQ(r, k <= 64 ? 0 : -EBADMSG);
        json_decref(got);
        event_schema_free(s);
        free(text);
    }
}

/* The values of the data count too: 2000 items that take no byte, each a record of 1000
 * nulls, are 2 million values from 3 bytes. */
static void test_value_budget(void)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    CHECK(f != NULL);
    fprintf(f, "{\"type\": \"array\", \"items\": {\"type\": \"record\", \"name\": \"Wide\", "
               "\"fields\": [");
    for (int i = 0; i < 1000; i++)
        fprintf(f, "%s{\"name\": \"n%d\", \"type\": \"null\"}", i ? ", " : "", i);
    fprintf(f, "]}}");
    CHECK(fclose(f) == 0);
    struct event_schema *s = parse(text);
    struct enc e = {0};
    enc_long(&e, 2000);
    enc_long(&e, 0);
    double t0 = now_s();
    expect_over(s, e.buf, e.n, NULL, -EFBIG, "data holds more values than one event may decode");
    fprintf(stderr, "2000 x 1000 nulls refused in %.3f s\n", now_s() - t0);
    /* within the budget: 100 of them */
    e.n = 0;
    enc_long(&e, 100);
    enc_long(&e, 0);
    json_t *got = NULL;
    CHECK_INT_EQ(event_schema_decode(s, e.buf, e.n, &got, NULL), 0);
    CHECK_INT_EQ(json_array_size(got), 100);
    json_decref(got);
    event_schema_free(s);
    free(text);

    /* a caller's budget: 1 array + n items */
    s = parse("{\"type\": \"array\", \"items\": \"long\"}");
    e.n = 0;
    enc_long(&e, 300);
    for (int i = 0; i < 300; i++)
        enc_long(&e, i);
    enc_long(&e, 0);
    struct event_schema_limits lim = {.max_values = 300};
    expect_over(s, e.buf, e.n, &lim, -EFBIG, "data holds more values than one event may decode");
    lim.max_values = 301;
    CHECK_INT_EQ(event_schema_decode_limited(s, e.buf, e.n, &lim, &got, NULL), 0);
    json_decref(got);
    event_schema_free(s);
}

/* 60 records nested around an array of booleans: one byte of data renders to a line of 130
 * bytes. The walker's lower bound of the JSON refuses it before anything is built, and never
 * exceeds the real size (the event file's format: indent 2, "data" one level in). */
static char *nested_bools_schema(int levels)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    CHECK(f != NULL);
    for (int i = 0; i < levels; i++)
        fprintf(f,
                "{\"type\": \"record\", \"name\": \"N%d\", \"fields\": [{\"name\": \"x\", "
                "\"type\": ",
                i);
    fprintf(f, "{\"type\": \"array\", \"items\": \"boolean\"}");
    for (int i = 0; i < levels; i++)
        fprintf(f, "}]}");
    CHECK(fclose(f) == 0);
    return text;
}

static size_t rendered_size(const json_t *data)
{
    json_t *o = json_pack("{s:s, s:O}", "asset", "a", "data", data);
    CHECK(o != NULL);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    CHECK(text != NULL);
    size_t n = strlen(text);
    free(text);
    json_decref(o);
    return n;
}

static void test_json_budget(void)
{
    char *text = nested_bools_schema(60);
    struct event_schema *s = parse(text);
    static struct enc e;
    e.n = 0;
    enc_long(&e, 1000);
    for (int i = 0; i < 1000; i++)
        enc_raw(&e, i % 3 ? "\x01" : "\x00", 1);
    enc_long(&e, 0);

    json_t *got = NULL;
    CHECK_INT_EQ(event_schema_decode(s, e.buf, e.n, &got, NULL), 0);
    size_t real = rendered_size(got);
    fprintf(stderr, "%zu bytes of data render to %zu bytes\n", e.n, real);
    CHECK(real > 100 * e.n);
    json_decref(got);
    /* the real size is enough; a tenth of it is not */
    struct event_schema_limits lim = {.max_json_bytes = real};
    CHECK_INT_EQ(event_schema_decode_limited(s, e.buf, e.n, &lim, &got, NULL), 0);
    json_decref(got);
    lim.max_json_bytes = real / 10;
    expect_over(s, e.buf, e.n, &lim, -EFBIG,
                "data renders to more JSON than one event file may hold");
    event_schema_free(s);
    free(text);

    /* the bound is below the real size for every type, unions and maps included */
    s = parse(all_schema);
    unsigned char data[512];
    size_t n = unhex(all_hex, data, sizeof(data));
    CHECK_INT_EQ(event_schema_decode(s, data, n, &got, NULL), 0);
    lim.max_json_bytes = rendered_size(got);
    json_decref(got);
    CHECK_INT_EQ(event_schema_decode_limited(s, data, n, &lim, &got, NULL), 0);
    json_decref(got);
    event_schema_free(s);
}

/* A decode gives up soon after its stop flag is set. */
static void test_stop(void)
{
    struct event_schema *s = parse("{\"type\": \"array\", \"items\": \"long\"}");
    static struct enc e;
    atomic_bool stop = false;
    struct event_schema_limits lim = {.stop = &stop};
    json_t *got = NULL;

    e.n = 0;
    enc_long(&e, 4000);
    for (int i = 0; i < 4000; i++)
        enc_long(&e, i);
    enc_long(&e, 0);
    CHECK_INT_EQ(event_schema_decode_limited(s, e.buf, e.n, &lim, &got, NULL), 0);
    CHECK_INT_EQ(json_array_size(got), 4000);
    json_decref(got);
    got = NULL;
    atomic_store(&stop, true);
    expect_over(s, e.buf, e.n, &lim, -ECANCELED, NULL);
    event_schema_free(s);
}

int main(void)
{
    RUN(test_all_types);
    RUN(test_unions);
    RUN(test_enum);
    RUN(test_floats);
    RUN(test_primitives_bad);
    RUN(test_arrays_maps);
    RUN(test_recursive_depth);
    RUN(test_bad_schemas);
    RUN(test_threads);
    RUN(test_named_type_expansion);
    RUN(test_eager_nesting);
    RUN(test_value_budget);
    RUN(test_json_budget);
    RUN(test_stop);
    return 0;
}
