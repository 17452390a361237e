/* tree_internal: what tree.c (tables, life cycle, T2 nodes) shares with tree_entries.c (assets
 * and events). Not for other modules. Every function expects the tree lock held. */
#pragma once
#include <stdbool.h>
#include "tree.h"

/* A new node (state PENDING, nlookup 0) under parent, in the inode table; in the name table
 * too when named is true. Returns NULL on ENOMEM. */
struct node *tree_node_new(struct tree *t, struct node *parent, enum node_kind kind,
                           const char *name, bool named);

/* Takes n out of the name table (a linked asset stays there until its name goes), not out of
 * its directory's index, and marks it REMOVED; frees it if nothing else holds it. */
void tree_node_remove(struct tree *t, struct node *n);

/* Takes n out of the name table, if it is there. */
void tree_name_tab_remove(struct tree *t, struct node *n);
