/* text: see text.h. */
#include "twin/text.h"

#include <stdbool.h>

size_t text_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (n >= 2 && (s[1] & 0xc0) == 0x80) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0) /* overlong */
            return 0;
        if (c == 0xed && s[1] >= 0xa0) /* surrogate */
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90) /* overlong */
            return 0;
        if (c == 0xf4 && s[1] >= 0x90) /* above U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

/* True when the n-byte character at s is written as it is. */
static bool kept(const unsigned char *s, size_t n, unsigned flags)
{
    if (n == 0)
        return false;
    if (n == 1)
        return s[0] >= 0x20 && s[0] != 0x7f;
    if (flags & TEXT_ESCAPE_ASCII)
        return false;
    return !(n == 2 && s[0] == 0xc2 && s[1] < 0xa0); /* C1 controls: U+0080..U+009F */
}

bool text_is_utf8(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t n = text_utf8_len((const unsigned char *)s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t text_escape(const char *in, size_t len, char *out, size_t out_size, unsigned flags)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;

    while (i < len) {
        size_t n = text_utf8_len(s + i, len - i);
        if (kept(s + i, n, flags)) {
            if (o + n >= out_size)
                break;
            for (size_t k = 0; k < n; k++)
                out[o++] = (char)s[i + k];
            i += n;
            continue;
        }
        /* Every byte of a character that is not kept is escaped on its own. */
        size_t bytes = n ? n : 1;
        if (o + 4 * bytes >= out_size)
            break;
        for (size_t k = 0; k < bytes; k++) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[s[i + k] >> 4];
            out[o++] = hex[s[i + k] & 0xf];
        }
        i += bytes;
    }
    out[o] = '\0';
    return i;
}
