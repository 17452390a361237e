/* event_file: see event_file.h. */
#include "event_file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#define EVENT_OFFSET_DIGITS 20 /* UINT64_MAX has 20 digits: every offset sorts by name */

int event_file_name(uint64_t offset, const char *type_name, char *buf, size_t size)
{
    int r = snprintf(buf, size, "%0*" PRIu64 "-%s.json", EVENT_OFFSET_DIGITS, offset, type_name);

    if (r < 0 || (size_t)r >= size || r > 255)
        return -ENAMETOOLONG;
    return r;
}

int event_file_parse_name(const char *name, uint64_t *ret_offset)
{
    uint64_t v = 0;

    for (int i = 0; i < EVENT_OFFSET_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -ENOENT;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ENOENT;
        v = v * 10 + d;
    }
    if (name[EVENT_OFFSET_DIGITS] != '-')
        return -ENOENT;
    *ret_offset = v;
    return 0;
}
