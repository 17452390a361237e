/* event_file: the event file's format: its names, "<offset zero-padded to 20 digits>-<Name>.json"
 * in its asset's events/ and "<seq zero-padded to 20 digits>-<asset>-<Name>.json" in /events
 * (names sort in the twin's order), and its content, the event as one indented JSON object. */
#pragma once
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "twin/follower.h"

#define EVENT_OFFSET_DIGITS 20 /* UINT64_MAX has 20 digits: every offset sorts by name */

/* Writes ev's file names, each at most 255 bytes, into fname (its asset's events/) and flat
 * (/events), each of 256 bytes: asset_shown is the asset's directory name, and the event's name
 * is shown in the same way (twin/name.h). A name too long is cut between two characters, the
 * asset's part first in flat; the leading number keeps names unique. */
void event_file_names(const struct follower_event *ev, const char *asset_shown, char *fname,
                      char *flat);

/* Writes the event file name of offset and type_name into buf. Returns the length, or
 * -ENAMETOOLONG. */
int event_file_name(uint64_t offset, const char *type_name, char *buf, size_t size);

/* Parses the leading number (the offset, or in /events the seq) out of an event file name.
 * Returns 0 or -ENOENT (not such a name). */
int event_file_parse_name(const char *name, uint64_t *ret_offset);

/* Renders ev as the content of its file: a JSON object with asset, offset, name, version,
 * source, time, systime and data (decoded) or, when decoding failed, data_b64 (the bytes in
 * base64, or the string as sent if it was not base64) and error instead of data; indented,
 * ending in "\n". At most max bytes (0: no bound); the dump stops as soon as it passes max or
 * *stop (may be NULL) is set. Returns 0 (*ret malloc'd, NUL-terminated, *ret_len without the
 * NUL), -EFBIG, -ECANCELED, -ENOMEM; *ret is untouched on failure. ev->content is ignored.
 * This is the follower's render_event. */
int event_file_render(const struct follower_event *ev, size_t max, const atomic_bool *stop,
                      char **ret, size_t *ret_len);
