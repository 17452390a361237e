/* base64: RFC 4648 standard alphabet, with padding. */
#pragma once
#include <stddef.h>

/* Decodes len bytes of text into a new buffer (*ret, *ret_len; NUL-terminated for convenience).
 * Whitespace is not accepted. Returns 0, -EINVAL for bad input, -ENOMEM. */
int base64_decode(const char *text, size_t len, unsigned char **ret, size_t *ret_len);

/* Encodes len bytes into a new NUL-terminated string (*ret). Returns 0 or -ENOMEM. */
int base64_encode(const void *data, size_t len, char **ret);
