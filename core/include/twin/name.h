/* name: the one rule for a name that becomes one path component of the file system (an asset
 * id, an event name, a T2 request type or name).
 *
 * A safe name is 1 to TWIN_NAME_MAX bytes, holds no '/' (nor NUL: it is a C string) and is
 * neither "." nor "..". Names the twin sends must also be valid UTF-8 (record.h adds that). */
#pragma once
#include <stdbool.h>

#define TWIN_NAME_MAX 255

/* True if s (NULL is not) is a safe name. */
bool twin_name_is_safe(const char *s);
