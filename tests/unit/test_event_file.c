/* test_event_file: the event file's names, in its asset's events/ and in /events. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "event_file.h"
#include "twin/follower.h"
#include "twin/name.h"
#include "unit.h"

/* The asset's part of a flat name cut to fit 255 bytes is cut between two characters of the
 * asset's shown name: what is left is itself a shown form (twin_name_unshown takes it), never
 * half of an escaped character. The cut falls at every position of a two-byte escaped C1
 * control (%C2%85), of a kept two-byte character and of an escaped '%'. */
static void test_flat_name_cut_between_characters(void)
{
    static const char *const middles[] = {"\xc2\x85", "\xc3\xa9", "%"};
    for (size_t mi = 0; mi < sizeof(middles) / sizeof(middles[0]); mi++) {
        for (int lead = 200; lead <= 228; lead++) {
            char id[300], shown[TWIN_NAME_MAX + 1], fname[TWIN_NAME_MAX + 1];
            char flat[TWIN_NAME_MAX + 1], part[TWIN_NAME_MAX + 1], back[TWIN_NAME_MAX + 1];
            memset(id, 'x', (size_t)lead);
            snprintf(id + lead, sizeof(id) - (size_t)lead, "%syyyy", middles[mi]);
            if (twin_name_shown(id, shown, sizeof(shown)) < 0)
                continue; /* not shown at all */
            struct follower_event ev = {.seq = 7, .asset = id, .offset = 3, .name = "Ping"};
            event_file_names(&ev, shown, fname, flat);
            size_t len = strlen(flat), tail = strlen("-Ping.json");
            CHECK(len <= TWIN_NAME_MAX && len > EVENT_OFFSET_DIGITS + 1 + tail);
            CHECK(strcmp(flat + len - tail, "-Ping.json") == 0);
            size_t plen = len - tail - (EVENT_OFFSET_DIGITS + 1);
            memcpy(part, flat + EVENT_OFFSET_DIGITS + 1, plen);
            part[plen] = '\0';
            CHECK(strncmp(part, shown, plen) == 0); /* a prefix of the directory's name */
            if (plen > 0 && twin_name_unshown(part, back, sizeof(back)) < 0) {
                fprintf(stderr, "cut inside a character: lead %d, part ends \"%s\"\n", lead,
                        part + (plen > 8 ? plen - 8 : 0));
                CHECK(false);
            }
        }
    }
}

/* Names that fit are whole: the offset's and the seq's 20 digits, the shown asset and name. */
static void test_names_that_fit(void)
{
    char fname[TWIN_NAME_MAX + 1], flat[TWIN_NAME_MAX + 1];
    struct follower_event ev = {.seq = 42, .asset = "nl\nname", .offset = 7, .name = "Odd/Name%"};
    event_file_names(&ev, "nl%0Aname", fname, flat);
    CHECK(strcmp(fname, "00000000000000000007-Odd%2FName%25.json") == 0);
    CHECK(strcmp(flat, "00000000000000000042-nl%0Aname-Odd%2FName%25.json") == 0);
    uint64_t key = 0;
    CHECK_INT_EQ(event_file_parse_name(flat, &key), 0);
    CHECK_INT_EQ(key, 42);
}

int main(void)
{
    RUN(test_names_that_fit);
    RUN(test_flat_name_cut_between_characters);
    return 0;
}
