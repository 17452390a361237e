/* base64: strict RFC 4648 (standard alphabet, padded, canonical) encoder and decoder. */
#include "twin/base64.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6-bit value of c, or -1. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int base64_decode(const char *text, size_t len, unsigned char **ret, size_t *ret_len)
{
    const unsigned char *in = (const unsigned char *)text;
    size_t pad = 0, out_len, o = 0;
    unsigned char *out;

    if (len % 4 != 0)
        return -EINVAL;
    if (len > 0 && in[len - 1] == '=')
        pad = (len > 1 && in[len - 2] == '=') ? 2 : 1;
    out_len = len / 4 * 3 - pad;
    out = malloc(out_len + 1);
    if (!out)
        return -ENOMEM;

    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int last = (i + 4 == len);
        for (int k = 0; k < 4; k++) {
            if (last && in[i + k] == '=' && k >= 4 - (int)pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_value(in[i + k]);
            if (v[k] < 0)
                goto fail;
        }
        uint32_t n =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if (last && pad == 2) {
            if (n & 0xffff) /* non-canonical: the unused bits must be zero */
                goto fail;
            out[o++] = (unsigned char)(n >> 16);
        } else if (last && pad == 1) {
            if (n & 0xff)
                goto fail;
            out[o++] = (unsigned char)(n >> 16);
            out[o++] = (unsigned char)(n >> 8);
        } else {
            out[o++] = (unsigned char)(n >> 16);
            out[o++] = (unsigned char)(n >> 8);
            out[o++] = (unsigned char)n;
        }
    }
    out[o] = '\0';
    *ret = out;
    *ret_len = o;
    return 0;

fail:
    free(out);
    return -EINVAL;
}

int base64_encode(const void *data, size_t len, char **ret)
{
    const unsigned char *in = data;
    size_t out_len, o = 0, i = 0;
    char *out;

    if (len > (SIZE_MAX - 1) / 4 * 3)
        return -ENOMEM;
    out_len = (len + 2) / 3 * 4;
    out = malloc(out_len + 1);
    if (!out)
        return -ENOMEM;
    for (; i + 3 <= len; i += 3) {
        uint32_t n = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[n >> 18 & 63];
        out[o++] = alphabet[n >> 12 & 63];
        out[o++] = alphabet[n >> 6 & 63];
        out[o++] = alphabet[n & 63];
    }
    if (len - i == 1) {
        uint32_t n = (uint32_t)in[i] << 16;
        out[o++] = alphabet[n >> 18 & 63];
        out[o++] = alphabet[n >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t n = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[n >> 18 & 63];
        out[o++] = alphabet[n >> 12 & 63];
        out[o++] = alphabet[n >> 6 & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    *ret = out;
    return 0;
}
