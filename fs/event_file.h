/* event_file: the event file's format, its name "<offset zero-padded to 20 digits>-<Name>.json"
 * (names sort in offset order) and its content, the event as one indented JSON object. */
#pragma once
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "follower.h"

/* Writes the event file name of offset and type_name into buf. Returns the length, or
 * -ENAMETOOLONG. */
int event_file_name(uint64_t offset, const char *type_name, char *buf, size_t size);

/* Parses the offset out of an event file name. Returns 0 or -ENOENT (not such a name). */
int event_file_parse_name(const char *name, uint64_t *ret_offset);
