/* test_name: the path-component rule, the shown form of names and the shared FNV-1a hash. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "twin/hash.h"
#include "twin/name.h"
#include "unit.h"

static void test_name_rule(void)
{
    char name[TWIN_NAME_MAX + 2];

    CHECK(twin_name_is_safe("a"));
    CHECK(twin_name_is_safe("..."));
    CHECK(twin_name_is_safe(".hidden"));
    CHECK(twin_name_is_safe("with space"));
    CHECK(twin_name_is_safe("\xff\xfe")); /* bytes: UTF-8 is the record parser's rule */
    CHECK(!twin_name_is_safe(NULL));
    CHECK(!twin_name_is_safe(""));
    CHECK(!twin_name_is_safe("."));
    CHECK(!twin_name_is_safe(".."));
    CHECK(!twin_name_is_safe("/"));
    CHECK(!twin_name_is_safe("a/b"));
    CHECK(!twin_name_is_safe("a/"));

    memset(name, 'x', TWIN_NAME_MAX);
    name[TWIN_NAME_MAX] = '\0';
    CHECK(twin_name_is_safe(name));
    name[TWIN_NAME_MAX] = 'x';
    name[TWIN_NAME_MAX + 1] = '\0';
    CHECK(!twin_name_is_safe(name));
}

/* id shows as want, and want reads back as id. */
static void check_shown(const char *id, const char *want)
{
    char buf[TWIN_NAME_MAX + 1], back[TWIN_NAME_MAX + 1];

    CHECK_INT_EQ(twin_name_shown(id, buf, sizeof(buf)), strlen(want));
    CHECK_STR_EQ(buf, want);
    CHECK(twin_name_is_safe(buf));
    CHECK_INT_EQ(twin_name_unshown(buf, back, sizeof(back)), strlen(id));
    CHECK_STR_EQ(back, id);
}

static void test_shown(void)
{
    check_shown("a", "a");
    check_shown("pump-7", "pump-7");
    check_shown("-rf", "-rf");
    check_shown("with space", "with space");
    check_shown("nl\nname", "nl%0Aname");
    check_shown("\r\n", "%0D%0A");
    check_shown("\x01\x1f\x20\x7e\x7f", "%01%1F ~%7F");
    check_shown("\x1b[31mred", "%1B[31mred");
    check_shown("a/b", "a%2Fb");
    check_shown("/", "%2F");
    check_shown("100%", "100%25");
    check_shown("%0A", "%250A");
    check_shown(".", "%2E");
    check_shown("..", "%2E%2E");
    check_shown("...", "...");
    check_shown(".hidden", ".hidden");
    check_shown("a.", "a.");
    check_shown("./", ".%2F");
    /* UTF-8 is kept, C1 controls are not. */
    check_shown("gr\xc3\xbc\xc3\x9f"
                "e \xe3\x83\x86 \xf0\x9f\x98\x80",
                "gr\xc3\xbc\xc3\x9f"
                "e \xe3\x83\x86 \xf0\x9f\x98\x80");
    check_shown("\xc2\xa0", "\xc2\xa0"); /* U+00A0 is no control */
    check_shown("\xc2\x80", "%C2%80");
    check_shown("\xc2\x9f", "%C2%9F");
    check_shown("\xc2\x9b"
                "31m",
                "%C2%9B31m");
    check_shown("\xc2\xc2\x85", "\xc2%C2%85");
    check_shown("a\xc2", "a\xc2");       /* a truncated character: bytes are kept */
    check_shown("\x85\xff", "\x85\xff"); /* not UTF-8: record.c refuses such names */
}

static void test_shown_limits(void)
{
    char id[TWIN_NAME_MAX + 2], buf[TWIN_NAME_MAX + 1];

    CHECK_INT_EQ(twin_name_shown(NULL, buf, sizeof(buf)), -EINVAL);
    CHECK_INT_EQ(twin_name_shown("", buf, sizeof(buf)), -EINVAL);
    CHECK_INT_EQ(twin_name_shown("a", NULL, 10), -EINVAL);

    memset(id, 'x', TWIN_NAME_MAX);
    id[TWIN_NAME_MAX] = '\0';
    CHECK_INT_EQ(twin_name_shown(id, buf, sizeof(buf)), TWIN_NAME_MAX);
    id[TWIN_NAME_MAX] = 'x';
    id[TWIN_NAME_MAX + 1] = '\0';
    CHECK_INT_EQ(twin_name_shown(id, buf, sizeof(buf)), -ENAMETOOLONG);

    /* 85 newlines show as exactly 255 bytes; one byte more does not fit. */
    memset(id, '\n', 85);
    id[85] = '\0';
    CHECK_INT_EQ(twin_name_shown(id, buf, sizeof(buf)), TWIN_NAME_MAX);
    id[85] = 'x';
    id[86] = '\0';
    CHECK_INT_EQ(twin_name_shown(id, buf, sizeof(buf)), -ENAMETOOLONG);

    /* A C1 control (6 bytes shown) at the end: 249 + 6 fits, 250 + 6 does not. */
    memset(id, 'x', 249);
    memcpy(id + 249, "\xc2\x85", 3);
    CHECK_INT_EQ(twin_name_shown(id, buf, sizeof(buf)), TWIN_NAME_MAX);
    memset(id, 'x', 250);
    memcpy(id + 250, "\xc2\x85", 3);
    CHECK_INT_EQ(twin_name_shown(id, buf, sizeof(buf)), -ENAMETOOLONG);

    /* The limit holds whatever size the caller offers. */
    {
        char big[2 * TWIN_NAME_MAX];

        memset(id, 'x', TWIN_NAME_MAX);
        id[TWIN_NAME_MAX] = 'x';
        id[TWIN_NAME_MAX + 1] = '\0';
        CHECK_INT_EQ(twin_name_shown(id, big, sizeof(big)), -ENAMETOOLONG);
        memset(id, '/', 86);
        id[86] = '\0';
        CHECK_INT_EQ(twin_name_shown(id, big, sizeof(big)), -ENAMETOOLONG);
    }

    /* size: the form and its NUL must fit; on failure buf is untouched. */
    CHECK_INT_EQ(twin_name_shown("a\nb", buf, 6), 5);
    CHECK_STR_EQ(buf, "a%0Ab");
    memcpy(buf, "keep", 5);
    CHECK_INT_EQ(twin_name_shown("a\nb", buf, 5), -ENAMETOOLONG);
    CHECK_INT_EQ(twin_name_shown("a", buf, 0), -ENAMETOOLONG);
    CHECK_STR_EQ(buf, "keep");
}

static void check_unshown_fails(const char *shown, int err)
{
    char buf[TWIN_NAME_MAX + 1] = "keep";

    CHECK_INT_EQ(twin_name_unshown(shown, buf, sizeof(buf)), err);
    CHECK_STR_EQ(buf, "keep");
}

static void test_unshown(void)
{
    char shown[TWIN_NAME_MAX + 2], buf[TWIN_NAME_MAX + 1];

    check_unshown_fails(NULL, -EINVAL);
    check_unshown_fails("", -EINVAL);
    /* Malformed escapes. */
    check_unshown_fails("%", -EINVAL);
    check_unshown_fails("a%", -EINVAL);
    check_unshown_fails("%4", -EINVAL);
    check_unshown_fails("a%2", -EINVAL);
    check_unshown_fails("%G0", -EINVAL);
    check_unshown_fails("%0G", -EINVAL);
    check_unshown_fails("%0a", -EINVAL); /* lowercase hex is a second spelling */
    check_unshown_fails("%2f", -EINVAL);
    check_unshown_fails("%00", -EINVAL);
    check_unshown_fails("%%41", -EINVAL);
    /* Well-formed, but not the shown form of any name. */
    check_unshown_fails("%41", -EINVAL); /* "A" is kept */
    check_unshown_fails("a/b", -EINVAL);
    check_unshown_fails("a\nb", -EINVAL);
    check_unshown_fails("\x7f", -EINVAL);
    check_unshown_fails(".", -EINVAL);
    check_unshown_fails("..", -EINVAL);
    check_unshown_fails("%2E.", -EINVAL);
    check_unshown_fails("%2E%2E%2E", -EINVAL);
    check_unshown_fails("\xc2\x85", -EINVAL);
    check_unshown_fails("%C2\x85", -EINVAL);
    check_unshown_fails("\xc2%85", -EINVAL);
    check_unshown_fails("%C2a", -EINVAL);

    memset(shown, 'x', TWIN_NAME_MAX + 1);
    shown[TWIN_NAME_MAX + 1] = '\0';
    check_unshown_fails(shown, -ENAMETOOLONG);
    shown[TWIN_NAME_MAX] = '\0';
    CHECK_INT_EQ(twin_name_unshown(shown, buf, sizeof(buf)), TWIN_NAME_MAX);
    CHECK_INT_EQ(twin_name_unshown(shown, buf, TWIN_NAME_MAX), -ENAMETOOLONG);
    {
        char big[2 * TWIN_NAME_MAX + 2];

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        CHECK_INT_EQ(twin_name_unshown(big, buf, sizeof(buf)), -ENAMETOOLONG);
    }
    CHECK_INT_EQ(twin_name_unshown("a%0Ab", buf, 4), 3);
    CHECK_STR_EQ(buf, "a\nb");
    CHECK_INT_EQ(twin_name_unshown("a%0Ab", buf, 3), -ENAMETOOLONG);
    CHECK_INT_EQ(twin_name_unshown("a", NULL, 10), -EINVAL);
}

/* The rule written out once more, byte by byte, with no length limit: the model the random
 * test compares against. */
static size_t model_shown(const unsigned char *id, char *out)
{
    size_t n = 0;
    bool dots = strcmp((const char *)id, ".") == 0 || strcmp((const char *)id, "..") == 0;

    for (size_t i = 0; id[i]; i++) {
        unsigned char c = id[i];
        bool c1 = (c == 0xc2 && id[i + 1] >= 0x80 && id[i + 1] <= 0x9f) ||
                  (i > 0 && id[i - 1] == 0xc2 && c >= 0x80 && c <= 0x9f &&
                   !(i > 1 && id[i - 2] == 0xc2 && id[i - 1] >= 0x80 && id[i - 1] <= 0x9f));

        if (dots || c1 || c < 0x20 || c == 0x7f || c == '%' || c == '/')
            n += (size_t)snprintf(out + n, 4, "%%%02X", c);
        else
            out[n++] = (char)c;
    }
    out[n] = '\0';
    return n;
}

/* Bytes that matter to the rule come often, any other byte now and then. */
static unsigned char random_byte(void)
{
    static const unsigned char often[] = {'a', '.',  '%',  '/',  '\n', 0x1f, 0x7f, '-', 'A',
                                          '0', 0xc2, 0x80, 0x9f, 0xa0, 0xc3, 0xff, ' '};

    if (unit_rand(2))
        return often[unit_rand(sizeof(often))];
    return (unsigned char)(1 + unit_rand(255));
}

static void test_random_round_trip(void)
{
    unsigned char id[TWIN_NAME_MAX + 1];
    char model[4 * sizeof(id)], buf[TWIN_NAME_MAX + 1], back[TWIN_NAME_MAX + 1];
    int ok = 0, too_long = 0;

    for (int round = 0; round < 200000; round++) {
        size_t len = 1 + unit_rand(round % 10 == 0 ? sizeof(id) - 1 : 6);
        size_t want;
        int n;

        for (size_t i = 0; i < len; i++)
            id[i] = random_byte();
        id[len] = '\0';
        want = model_shown(id, model);
        n = twin_name_shown((const char *)id, buf, sizeof(buf));
        if (want > TWIN_NAME_MAX) {
            CHECK_INT_EQ(n, -ENAMETOOLONG);
            too_long++;
            continue;
        }
        CHECK_INT_EQ(n, want);
        CHECK_STR_EQ(buf, model);
        ok++;
        /* Safe for line-based tools: no '/', no control byte, no C1, not "." or "..". */
        CHECK(twin_name_is_safe(buf));
        for (int i = 0; i < n; i++) {
            unsigned char c = (unsigned char)buf[i];

            CHECK(c >= 0x20 && c != 0x7f && c != '/');
            CHECK(!(c == 0xc2 && (unsigned char)buf[i + 1] >= 0x80 &&
                    (unsigned char)buf[i + 1] <= 0x9f));
        }
        CHECK_INT_EQ(twin_name_unshown(buf, back, sizeof(back)), len);
        CHECK_STR_EQ(back, (const char *)id);
    }
    /* Both outcomes are exercised. */
    CHECK(ok > 100000);
    CHECK(too_long > 100);
}

/* Random strings of the shown alphabet: unshown never crashes, and what it accepts is the one
 * shown form of what it returns. */
static void test_random_unshown(void)
{
    static const char alphabet[] = "%%%%0123456789ABCDEFaf.C2x/\n\x7f\xc2\x85";
    char s[64], buf[TWIN_NAME_MAX + 1], again[TWIN_NAME_MAX + 1];
    int accepted = 0;

    for (int round = 0; round < 200000; round++) {
        size_t len = 1 + unit_rand(12);
        int n;

        for (size_t i = 0; i < len; i++)
            s[i] = alphabet[unit_rand(sizeof(alphabet) - 1)];
        s[len] = '\0';
        n = twin_name_unshown(s, buf, sizeof(buf));
        if (n < 0) {
            CHECK_INT_EQ(n, -EINVAL);
            continue;
        }
        accepted++;
        CHECK_INT_EQ(n, strlen(buf));
        CHECK_INT_EQ(twin_name_shown(buf, again, sizeof(again)), len);
        CHECK_STR_EQ(again, s);
    }
    CHECK(accepted > 1000);
}

/* The published FNV-1a 64 test vectors: the default tracker's file name depends on them. */
static void test_fnv1a(void)
{
    CHECK(twin_fnv1a(TWIN_FNV1A_INIT, "", 0) == 0xcbf29ce484222325ULL);
    CHECK(twin_fnv1a(TWIN_FNV1A_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL);
    CHECK(twin_fnv1a(TWIN_FNV1A_INIT, "foobar", 6) == 0x85944171f73967e8ULL);
    /* Extending is the same as hashing the concatenation. */
    CHECK(twin_fnv1a(twin_fnv1a(TWIN_FNV1A_INIT, "foo", 3), "bar", 3) ==
          twin_fnv1a(TWIN_FNV1A_INIT, "foobar", 6));
}

int main(void)
{
    RUN(test_name_rule);
    RUN(test_shown);
    RUN(test_shown_limits);
    RUN(test_unshown);
    RUN(test_random_round_trip);
    RUN(test_random_unshown);
    RUN(test_fnv1a);
    return 0;
}
