/* test_text: escaping of control characters and bytes that are not UTF-8, and cutting. */
#include "twin/text.h"
#include "unit.h"

static void check(const char *in, size_t len, unsigned flags, const char *want)
{
    char out[256];

    CHECK_INT_EQ(text_escape(in, len, out, sizeof(out), flags), len);
    CHECK_STR_EQ(out, want);
}

static void test_controls(void)
{
    check("plain text, 100%", 16, 0, "plain text, 100%");
    check("a\nb", 3, 0, "a\\x0ab");
    check("a\r\n[fake] b", 11, 0, "a\\x0d\\x0a[fake] b");
    check("\x1b[31mred\x1b[0m", 12, 0, "\\x1b[31mred\\x1b[0m");
    check("\x7f\x08\t\x01", 4, 0, "\\x7f\\x08\\x09\\x01");
    check("nul\0in", 6, 0, "nul\\x00in");
    check("", 0, 0, "");
}

static void test_utf8(void)
{
    check("gr\xc3\xbc\xc3\x9f"
          "e \xe3\x83\x86 \xf0\x9f\x98\x80",
          16, 0,
          "gr\xc3\xbc\xc3\x9f"
          "e \xe3\x83\x86 \xf0\x9f\x98\x80");
    check("\xff\xfe", 2, 0, "\\xff\\xfe");                   /* never UTF-8 */
    check("a\xc3", 2, 0, "a\\xc3");                          /* truncated */
    check("\xc0\xaf", 2, 0, "\\xc0\\xaf");                   /* overlong "/" */
    check("\xed\xa0\x80", 3, 0, "\\xed\\xa0\\x80");          /* a surrogate */
    check("\xf4\x90\x80\x80", 4, 0, "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
    check("\xc2\x9b"
          "31m",
          5, 0, "\\xc2\\x9b31m");        /* C1 CSI */
    check("\xc2\xa0", 2, 0, "\xc2\xa0"); /* U+00A0 is no control */
    check("x=\xc3\xa9", 4, TEXT_ESCAPE_ASCII, "x=\\xc3\\xa9");
    check("x=\xe9", 3, TEXT_ESCAPE_ASCII, "x=\\xe9");
}

static void test_cut(void)
{
    char out[8];

    /* "abcdefg" fits (7 + NUL); one more byte does not. */
    CHECK_INT_EQ(text_escape("abcdefgh", 8, out, sizeof(out), 0), 7);
    CHECK_STR_EQ(out, "abcdefg");
    /* An escape is never cut: "ab" + "\x1b" is 6, the next "\x1b" would make 10. */
    CHECK_INT_EQ(text_escape("ab\x1b\x1b", 4, out, sizeof(out), 0), 3);
    CHECK_STR_EQ(out, "ab\\x1b");
    /* Nor a UTF-8 character: 5 + 3 bytes does not fit in 7. */
    CHECK_INT_EQ(text_escape("abcde\xe3\x83\x86", 8, out, sizeof(out), 0), 5);
    CHECK_STR_EQ(out, "abcde");
    CHECK_INT_EQ(text_escape("abc", 3, out, 1, 0), 0);
    CHECK_STR_EQ(out, "");
}

static void test_is_utf8(void)
{
    CHECK(text_is_utf8("", 0));
    CHECK(text_is_utf8("plain", 5));
    CHECK(text_is_utf8("gr\xc3\xbc\xf0\x9f\x98\x80", 8));
    CHECK(text_is_utf8("nul\0in", 6));       /* NUL is a character; names are C strings anyway */
    CHECK(!text_is_utf8("\xc0\xaf", 2));     /* overlong '/' */
    CHECK(!text_is_utf8("\xed\xa0\x80", 3)); /* surrogate */
    CHECK(!text_is_utf8("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    CHECK(!text_is_utf8("ok\xe6\x97", 4));       /* truncated */
    CHECK(!text_is_utf8("\x80", 1));
}

int main(void)
{
    RUN(test_controls);
    RUN(test_utf8);
    RUN(test_cut);
    RUN(test_is_utf8);
    return 0;
}
