/*
 * Intrusive chained hash table and list for muond. The daemon indexes
 * sessions, publications, topics and watches by key so that a change costs
 * the same whether ten or a hundred thousand publications are registered.
 * Entries embed a node; callers compare their own keys along a chain.
 */
#ifndef MUOND_HASH_H
#define MUOND_HASH_H

#include <stddef.h>
#include <stdint.h>

struct muond_hnode {
	struct muond_hnode *next;
	uint64_t hash;
};

struct muond_hash {
	struct muond_hnode **b;
	size_t nb; /* buckets, a power of two or 0 */
	size_t n;
};

/* Room for `n` entries without a failure on insert. 0 or -1 (ENOMEM). */
int muond_hash_reserve(struct muond_hash *h, size_t n);
/* Insert; grows when needed. 0 or -1 when growing was needed and failed. */
int muond_hash_insert(struct muond_hash *h, struct muond_hnode *e,
		      uint64_t hash);
void muond_hash_remove(struct muond_hash *h, struct muond_hnode *e);
void muond_hash_fini(struct muond_hash *h);

static inline struct muond_hnode *muond_hash_chain(const struct muond_hash *h,
						   uint64_t hash)
{
	return h->nb ? h->b[hash & (h->nb - 1)] : NULL;
}

/* Visit every entry; the visitor may remove the entry it is given. */
#define MUOND_HASH_EACH(h, node, tmp, i)                                   \
	for ((i) = 0; (i) < (h)->nb; (i)++)                                \
		for ((node) = (h)->b[i], (tmp) = (node) ? (node)->next : NULL; \
		     (node);                                               \
		     (node) = (tmp), (tmp) = (node) ? (node)->next : NULL)

uint64_t muond_hash_u64(uint64_t x);
#define MUOND_FNV_BASIS 14695981039346656037ull
static inline uint64_t muond_fnv_step(uint64_t h, unsigned char c)
{
	return (h ^ c) * 1099511628211ull;
}
uint64_t muond_hash_str(const char *s, size_t n);

/* Circular doubly-linked list with a sentinel head. */
struct muond_list {
	struct muond_list *prev, *next;
};

static inline void muond_list_init(struct muond_list *l)
{
	l->prev = l->next = l;
}
static inline int muond_list_empty(const struct muond_list *l)
{
	return l->next == l;
}
static inline void muond_list_add_tail(struct muond_list *head,
				       struct muond_list *e)
{
	e->prev = head->prev;
	e->next = head;
	head->prev->next = e;
	head->prev = e;
}
/* Insert `e` right after `pos`. */
static inline void muond_list_add_after(struct muond_list *pos,
					struct muond_list *e)
{
	e->prev = pos;
	e->next = pos->next;
	pos->next->prev = e;
	pos->next = e;
}
static inline void muond_list_del(struct muond_list *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = e;
}

#define MUOND_CONTAINER(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
