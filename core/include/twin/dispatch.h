/* dispatch: the NamedEventMixin of the seed, as a table.
 *
 * An event goes to the handler whose name equals the event's name, compared without regard to
 * case (the seed routes NewDocSet to do_newdocset), else to the unmatched handler. */
#pragma once
#include <stddef.h>

struct follower_event;

typedef void (*dispatch_fn)(void *userdata, const struct follower_event *ev);

struct dispatch_entry {
    const char *name;
    dispatch_fn handle;
};

/* Calls the matching handler of table[0..n) or unmatched (may be NULL). Returns 1 if a named
 * handler ran, 0 otherwise. */
int dispatch_event(const struct dispatch_entry *table, size_t n, dispatch_fn unmatched,
                   void *userdata, const struct follower_event *ev);
