/* handler: which executable in the handlers directory takes an event.
 *
 * The seed's NamedEventMixin rule for files: an event named Name goes to do_Name if that is a
 * handler, else to do_name (Name with ASCII letters lower-cased: the seed's method name), else
 * to on_event_unmatched. A handler is a regular file (or a symbolic link to one) that the
 * dispatcher may execute; anything else in the directory is ignored. The directory is read at
 * each lookup, so a handler added or removed takes effect at once. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define HANDLER_UNMATCHED "on_event_unmatched"
#define HANDLER_CREATED   "on_asset_created"
#define HANDLER_DELETED   "on_asset_deleted"
#define HANDLER_INTERNAL  "on_event_internal"

/* True if dirfd/name is a handler (an executable regular file). */
bool handler_exists(int dirfd, const char *name);

/* Writes into buf (size bytes) the handler's name for an event named event_name. Returns 1 when
 * one was found, 0 when there is none (buf is then empty), -ENAMETOOLONG when size is too small
 * for do_<event_name>. */
int handler_for_event(int dirfd, const char *event_name, char *buf, size_t size);
