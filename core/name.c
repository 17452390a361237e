/* name: the path-component rule and the shown form (twin/name.h). */
#include "twin/name.h"

#include <errno.h>
#include <stdint.h>
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

static bool byte_is_escaped(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '%' || c == '/';
}

static bool byte_is_c1_tail(unsigned char c)
{
    return c >= 0x80 && c <= 0x9f;
}

/* Appends c to out[*n], as "%XX" when escape is set. False when the shown form would be longer
 * than TWIN_NAME_MAX. */
static bool put(char *out, size_t *n, unsigned char c, bool escape)
{
    static const char hex[] = "0123456789ABCDEF";

    if (*n + (escape ? 3 : 1) > TWIN_NAME_MAX)
        return false;
    if (escape) {
        out[(*n)++] = '%';
        out[(*n)++] = hex[c >> 4];
        out[(*n)++] = hex[c & 0xf];
    } else {
        out[(*n)++] = (char)c;
    }
    return true;
}

/* Writes the shown form of id (not NULL, not empty) into out[TWIN_NAME_MAX + 1]. Returns its
 * length or -ENAMETOOLONG. */
static int encode(const char *id, char *out)
{
    const unsigned char *s = (const unsigned char *)id;
    bool dots = strcmp(id, ".") == 0 || strcmp(id, "..") == 0;
    size_t n = 0;

    for (size_t i = 0; s[i]; i++) {
        bool ok;

        if (s[i] == 0xc2 && byte_is_c1_tail(s[i + 1])) {
            ok = put(out, &n, s[i], true) && put(out, &n, s[i + 1], true);
            i++;
        } else {
            ok = put(out, &n, s[i], dots || byte_is_escaped(s[i]));
        }
        if (!ok)
            return -ENAMETOOLONG;
    }
    out[n] = '\0';
    return (int)n;
}

int twin_name_shown(const char *id, char *buf, size_t size)
{
    char out[TWIN_NAME_MAX + 1];
    int n;

    if (!id || !buf || !*id)
        return -EINVAL;
    n = encode(id, out);
    if (n < 0)
        return n;
    if ((size_t)n >= size)
        return -ENAMETOOLONG;
    memcpy(buf, out, (size_t)n + 1);
    return n;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int twin_name_unshown(const char *shown, char *buf, size_t size)
{
    char name[TWIN_NAME_MAX + 1], again[TWIN_NAME_MAX + 1];
    size_t len, n = 0;

    if (!shown || !buf || !*shown)
        return -EINVAL;
    len = strnlen(shown, TWIN_NAME_MAX + 1);
    if (len > TWIN_NAME_MAX)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;

        if (shown[i] != '%') {
            name[n++] = shown[i];
            continue;
        }
        hi = i + 2 < len ? hex_value(shown[i + 1]) : -1;
        lo = hi >= 0 ? hex_value(shown[i + 2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) /* malformed, or "%00" */
            return -EINVAL;
        name[n++] = (char)(hi << 4 | lo);
        i += 2;
    }
    name[n] = '\0';
    /* Any other spelling than the one shown form of the name (a kept byte escaped, an escaped
     * byte raw, "." or "..") re-encodes differently. */
    if (encode(name, again) != (int)len || memcmp(again, shown, len) != 0)
        return -EINVAL;
    if (n >= size)
        return -ENAMETOOLONG;
    memcpy(buf, name, n + 1);
    return (int)n;
}
