/* name: the path-component rule (twin/name.h). */
#include "twin/name.h"

#include <string.h>

bool twin_name_is_safe(const char *s)
{
    size_t len;

    if (!s)
        return false;
    len = strnlen(s, TWIN_NAME_MAX + 1);
    return len >= 1 && len <= TWIN_NAME_MAX && !strchr(s, '/') && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}
