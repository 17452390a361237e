/* dispatch: routes an event to the handler named like it (case-insensitive). */
#include "twin/dispatch.h"

#include <strings.h>

#include "twin/follower.h"

int dispatch_event(const struct dispatch_entry *table, size_t n, dispatch_fn unmatched,
                   void *userdata, const struct follower_event *ev)
{
    if (ev && ev->name) {
        for (size_t i = 0; i < n; i++) {
            if (table[i].name && table[i].handle && strcasecmp(table[i].name, ev->name) == 0) {
                table[i].handle(userdata, ev);
                return 1;
            }
        }
    }
    if (unmatched)
        unmatched(userdata, ev);
    return 0;
}
