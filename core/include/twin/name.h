/* name: the one rule for a name that becomes one path component of the file system (an asset
 * id, an event name, a T2 request type or name).
 *
 * A safe name is 1 to TWIN_NAME_MAX bytes, holds no '/' (nor NUL: it is a C string) and is
 * neither "." nor "..". Names the twin sends must also be valid UTF-8 (record.h adds that).
 *
 * The shown form of a name is what a directory listing holds. It is safe for line-based tools:
 * `ls | while read f`, `find | xargs` and inotifywait loops split on newlines, and a terminal
 * acts on escape sequences, so no control character may reach them. In the shown form
 *   - every byte below 0x20, 0x7f, '%' and '/' is "%XX" (two uppercase hex digits);
 *   - a C1 control U+0080..U+009F (UTF-8 bytes C2 80..C2 9F) is "%C2%XX";
 *   - the whole names "." and ".." are "%2E" and "%2E%2E";
 *   - every other byte is kept: UTF-8, spaces and a leading '-' stay as they are.
 * '%' is escaped too, so the form is reversible and each name has exactly one shown form. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define TWIN_NAME_MAX 255

/* True if s (NULL is not) is a safe name. */
bool twin_name_is_safe(const char *s);

/* Writes the shown form of id into buf (size bytes), NUL-terminated. The shown form is always
 * a safe name. Returns its length, -EINVAL for NULL or an empty id, -ENAMETOOLONG when it is
 * longer than TWIN_NAME_MAX bytes or does not fit in size. buf is untouched on failure. */
int twin_name_shown(const char *id, char *buf, size_t size);

/* The inverse of twin_name_shown: writes the name whose shown form is shown into buf (size
 * bytes), NUL-terminated. Only the exact shown form is accepted (uppercase hex, no escape of a
 * byte that is kept, no raw byte that is escaped), so no second spelling reaches the same name.
 * Returns the name's length, -EINVAL for NULL, the empty string or anything that is not a shown
 * form, -ENAMETOOLONG when shown is longer than TWIN_NAME_MAX bytes or the name does not fit
 * in size. buf is untouched on failure. */
int twin_name_unshown(const char *shown, char *buf, size_t size);
