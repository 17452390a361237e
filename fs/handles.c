/* handles: the list of open T2 and status files (see fs_internal.h). The kernel sends no
 * release for the files still open when the session ends, so twinfs_free closes those. */
#include "fs_internal.h"

void handles_track(struct twinfs *fs, struct open_handle *h, void (*destroy)(struct open_handle *h))
{
    h->destroy = destroy;
    pthread_mutex_lock(&fs->handles_lock);
    h->next = &fs->handles;
    h->prev = fs->handles.prev;
    h->prev->next = h;
    fs->handles.prev = h;
    pthread_mutex_unlock(&fs->handles_lock);
}

/* Unlinks h from the open files and destroys it. */
void handles_release(struct twinfs *fs, struct open_handle *h)
{
    pthread_mutex_lock(&fs->handles_lock);
    h->prev->next = h->next;
    h->next->prev = h->prev;
    pthread_mutex_unlock(&fs->handles_lock);
    h->destroy(h);
}

void handles_close_all(struct twinfs *fs)
{
    pthread_mutex_lock(&fs->handles_lock);
    while (fs->handles.next != &fs->handles) {
        struct open_handle *h = fs->handles.next;
        h->prev->next = h->next;
        h->next->prev = h->prev;
        pthread_mutex_unlock(&fs->handles_lock);
        h->destroy(h);
        pthread_mutex_lock(&fs->handles_lock);
    }
    pthread_mutex_unlock(&fs->handles_lock);
}
