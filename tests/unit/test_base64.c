/* test_base64: RFC 4648 test vectors, strictness, and a round trip of every length. */
#include <errno.h>

#include "twin/base64.h"
#include "unit.h"

static void check_decode(const char *in, const char *want)
{
    unsigned char *out = NULL;
    size_t n = 99;

    CHECK_INT_EQ(base64_decode(in, strlen(in), &out, &n), 0);
    CHECK_INT_EQ(n, strlen(want));
    CHECK(memcmp(out, want, n) == 0);
    CHECK_INT_EQ(out[n], 0);
    free(out);
}

static void check_bad(const char *in, size_t len)
{
    unsigned char *out = (unsigned char *)"untouched";
    size_t n = 42;

    CHECK_INT_EQ(base64_decode(in, len, &out, &n), -EINVAL);
    CHECK_STR_EQ((char *)out, "untouched");
    CHECK_INT_EQ(n, 42);
}

static void test_vectors(void)
{
    /* RFC 4648 section 10 */
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *enc = NULL;
        check_decode(coded[i], plain[i]);
        CHECK_INT_EQ(base64_encode(plain[i], strlen(plain[i]), &enc), 0);
        CHECK_STR_EQ(enc, coded[i]);
        free(enc);
    }
    check_decode("+/+/", "\xfb\xff\xbf");
}

static void test_strict(void)
{
    check_bad("Zg=", 3);      /* not a multiple of 4 */
    check_bad("Zg", 2);       /* missing padding */
    check_bad("Zm9v\n", 5);   /* whitespace */
    check_bad("Zm 9", 4);     /* whitespace */
    check_bad("Zh==", 4);     /* non-zero unused bits */
    check_bad("Zm9=", 4);     /* non-zero unused bits */
    check_bad("Z===", 4);     /* too much padding */
    check_bad("====", 4);     /* only padding */
    check_bad("Zg==Zg==", 8); /* padding in the middle */
    check_bad("Z=g=", 4);     /* padding in the middle of a group */
    check_bad("Zm9v-_==", 8); /* URL alphabet */
    check_bad("Zm\0v", 4);    /* NUL */
    check_bad("Zm9v\xc3\xa9", 6);
}

static void test_round_trip(void)
{
    unsigned char data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof(data); len++) {
        char *enc = NULL;
        unsigned char *dec = NULL;
        size_t n = 0;
        CHECK_INT_EQ(base64_encode(data, len, &enc), 0);
        CHECK_INT_EQ(strlen(enc), (len + 2) / 3 * 4);
        CHECK_INT_EQ(base64_decode(enc, strlen(enc), &dec, &n), 0);
        CHECK_INT_EQ(n, len);
        CHECK(memcmp(dec, data, len) == 0);
        free(enc);
        free(dec);
    }
}

int main(void)
{
    RUN(test_vectors);
    RUN(test_strict);
    RUN(test_round_trip);
    return 0;
}
