/* text: the one rule for writing text that came from the twin or a user where a line or a
 * terminal reads it (the log, xattrs).
 *
 * Control characters (bytes below 0x20, 0x7f, and the C1 controls U+0080..U+009F) and bytes
 * that are not part of valid UTF-8 become "\xNN", so such text can neither start a line of its
 * own nor send a terminal an escape sequence. Everything else is kept as it is. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* text_escape flags. */
#define TEXT_ESCAPE_ASCII 1u /* also escape every byte from 0x80 up (e.g. a media type) */

/* The length of the valid UTF-8 sequence at s (n bytes available): 1 to 4, or 0 when the bytes
 * there are not UTF-8 (truncated, overlong, a surrogate, above U+10FFFF). */
size_t text_utf8_len(const unsigned char *s, size_t n);

/* True if s[0..len) is valid UTF-8 throughout (text_utf8_len's rules). */
bool text_is_utf8(const char *s, size_t len);

/* Writes the escaped form of in[0..len) into out, NUL-terminated; out_size must be at least 1.
 * When out is too small the text is cut between two characters or escapes, never inside one.
 * Returns the number of bytes of in that were written (len when nothing was cut). */
size_t text_escape(const char *in, size_t len, char *out, size_t out_size, unsigned flags);
