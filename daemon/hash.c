/*
 * Hash table for muond: see hash.h.
 */
#include <stdlib.h>

#include "daemon/hash.h"

static int rehash(struct muond_hash *h, size_t nb)
{
	struct muond_hnode **b = calloc(nb, sizeof(*b)), *e, *next;
	size_t i;

	if (!b)
		return -1;
	for (i = 0; i < h->nb; i++)
		for (e = h->b[i]; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(h->b);
	h->b = b;
	h->nb = nb;
	return 0;
}

int muond_hash_reserve(struct muond_hash *h, size_t n)
{
	size_t nb = h->nb ? h->nb : 8;

	/* Load factor at most one: chains stay short without tuning. */
	while (nb < n)
		nb *= 2;
	return nb == h->nb ? 0 : rehash(h, nb);
}

int muond_hash_insert(struct muond_hash *h, struct muond_hnode *e,
		      uint64_t hash)
{
	size_t i;

	if (h->n + 1 > h->nb && muond_hash_reserve(h, h->n + 1))
		return -1;
	i = hash & (h->nb - 1);
	e->hash = hash;
	e->next = h->b[i];
	h->b[i] = e;
	h->n++;
	return 0;
}

void muond_hash_remove(struct muond_hash *h, struct muond_hnode *e)
{
	struct muond_hnode **pp;

	if (!h->nb)
		return;
	for (pp = &h->b[e->hash & (h->nb - 1)]; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			e->next = NULL;
			h->n--;
			return;
		}
}

void muond_hash_fini(struct muond_hash *h)
{
	if (!h)
		return;
	free(h->b);
	h->b = NULL;
	h->nb = h->n = 0;
}

uint64_t muond_hash_u64(uint64_t x)
{
	/* splitmix64's finaliser: sequential ids spread over all buckets. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint64_t muond_hash_str(const char *s, size_t n)
{
	uint64_t h = MUOND_FNV_BASIS;
	size_t i;

	for (i = 0; i < n; i++)
		h = muond_fnv_step(h, (unsigned char)s[i]);
	return h;
}
