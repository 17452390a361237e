/* test_name: the path-component rule and the shared FNV-1a hash. */
#include <stdint.h>
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
    RUN(test_fnv1a);
    return 0;
}
