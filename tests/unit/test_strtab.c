/* test_strtab.c - the lock-free string interning table.
 *
 * Single-threaded tests pin the contract (round trips, dense ids, binary
 * keys, the two -ENOSPC bounds, orphans); the concurrency test has several
 * threads intern overlapping key sets at once and then checks that the table
 * is a bijection between the distinct keys and the non-orphan ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyspyc/strtab.h"

/* ---- helpers ----------------------------------------------------------- */

/* Set by the _lasting runs: the tests' tables are strtab_new_lasting's. */
static int lasting;

static struct strtab *new_table(uint32_t max_keys, size_t arena)
{
	struct strtab *t = NULL;

	assert_int_equal((lasting ? strtab_new_lasting : strtab_new)(&t, max_keys, arena), 0);
	assert_non_null(t);
	return t;
}

static uint32_t intern_ok(struct strtab *t, const void *key, size_t len)
{
	uint32_t id = UINT32_MAX;

	assert_int_equal(strtab_intern(t, key, len, &id), 0);
	assert_int_not_equal(id, UINT32_MAX);
	return id;
}

/* Assert that id holds exactly key[0..len) followed by a NUL. */
static void expect_bytes(const struct strtab *t, uint32_t id, const void *key,
			 size_t len)
{
	const void *got = NULL;
	size_t glen = (size_t)-1;

	assert_int_equal(strtab_get(t, id, &got, &glen), 0);
	assert_non_null(got);
	assert_int_equal(glen, len);
	if (len)
		assert_memory_equal(got, key, len);
	assert_int_equal(((const char *)got)[len], '\0');
}

static void expect_noent(const struct strtab *t, uint32_t id)
{
	const void *got = NULL;
	size_t glen = 0;

	assert_int_equal(strtab_get(t, id, &got, &glen), -ENOENT);
}

/* ---- basic contract ------------------------------------------------------ */

static void test_new_rejects_bad_bounds(void **state)
{
	struct strtab *t = (struct strtab *)&t; /* must be reset to NULL */

	(void)state;
	assert_int_equal(strtab_new(&t, 0, 4096), -EINVAL);
	assert_null(t);
	assert_int_equal(strtab_new(&t, 16, 0), -EINVAL);
	assert_null(t);
	assert_int_equal(strtab_new(&t, (1u << 30) + 1, 4096), -EINVAL);
	assert_null(t);
	strtab_free(NULL);
}

static void test_round_trip(void **state)
{
	static const char *const words[] = {
		"main", "app.py", "<module>", "a", "Class.method", "x y z",
		"\xc3\xa9t\xc3\xa9", "/usr/lib/python3.12/threading.py",
	};
	const size_t n = sizeof(words) / sizeof(words[0]);
	struct strtab *t = new_table(64, 4096);
	uint32_t ids[8];
	size_t i;

	(void)state;
	for (i = 0; i < n; i++)
		ids[i] = intern_ok(t, words[i], strlen(words[i]));
	for (i = 0; i < n; i++) {
		char copy[64];

		expect_bytes(t, ids[i], words[i], strlen(words[i]));
		/* Interning again, from a different buffer, gives the same id. */
		memcpy(copy, words[i], strlen(words[i]) + 1);
		assert_int_equal(intern_ok(t, copy, strlen(copy)), ids[i]);
	}
	assert_int_equal(strtab_count(t), n);
	assert_true(strtab_bytes(t) > 0);
	strtab_free(t);
}

static void test_dense_ids(void **state)
{
	struct strtab *t = new_table(2000, 2000 * 32);
	char key[32];
	uint32_t i;

	(void)state;
	for (i = 0; i < 1500; i++) {
		int n = snprintf(key, sizeof(key), "key-%u", i);

		assert_int_equal(intern_ok(t, key, (size_t)n), i);
		assert_int_equal(strtab_count(t), i + 1);
	}
	/* Re-interning in another order hands out no new ids. */
	for (i = 1500; i-- > 0;) {
		int n = snprintf(key, sizeof(key), "key-%u", i);

		assert_int_equal(intern_ok(t, key, (size_t)n), i);
	}
	assert_int_equal(strtab_count(t), 1500);
	for (i = 0; i < 1500; i++) {
		int n = snprintf(key, sizeof(key), "key-%u", i);

		expect_bytes(t, i, key, (size_t)n);
	}
	strtab_free(t);
}

/* A large lasting table's first keys are in a few pages of its index: the
 * agent's long-lived tables (2^20 keys) once grew by a page a key. */
static void test_few_keys_few_pages(void **state)
{
	struct strtab *t = NULL;
	char key[32];
	uint32_t i;

	(void)state;
	assert_int_equal(strtab_new_lasting(&t, 1u << 20, (size_t)1 << 24), 0);
	assert_int_equal(strtab_slot_bytes(t), 0);
	for (i = 0; i < 2000; i++) {
		int n = snprintf(key, sizeof(key), "frame-%u", i);

		assert_int_equal(intern_ok(t, key, (size_t)n), i);
	}
	/* 2000 keys at random in 2^21 slots (4096 pages) touch about 1600
	 * pages; the small levels hold them in under 100. */
	assert_true(strtab_slot_bytes(t) <= 400u << 10);
	for (i = 0; i < 2000; i++) {
		int n = snprintf(key, sizeof(key), "frame-%u", i);

		assert_int_equal(intern_ok(t, key, (size_t)n), i);
		expect_bytes(t, i, key, (size_t)n);
	}
	/* Past the small levels every key still goes in, once. */
	for (i = 2000; i < 300000; i++) {
		int n = snprintf(key, sizeof(key), "frame-%u", i);

		assert_int_equal(intern_ok(t, key, (size_t)n), i);
	}
	for (i = 0; i < 300000; i += 7) {
		int n = snprintf(key, sizeof(key), "frame-%u", i);

		assert_int_equal(intern_ok(t, key, (size_t)n), i);
	}
	assert_int_equal(strtab_count(t), 300000);
	strtab_reset(t);
	assert_int_equal(strtab_slot_bytes(t), 0);
	strtab_free(t);
}

static void test_empty_key(void **state)
{
	struct strtab *t = new_table(8, 256);
	uint32_t e, z;

	(void)state;
	e = intern_ok(t, "", 0);
	expect_bytes(t, e, "", 0);
	assert_int_equal(intern_ok(t, "", 0), e);
	/* A key of one NUL byte is a different key. */
	z = intern_ok(t, "\0", 1);
	assert_int_not_equal(z, e);
	expect_bytes(t, z, "\0", 1);
	/* Empty key from an unrelated pointer. */
	assert_int_equal(intern_ok(t, "zzz", 0), e);
	strtab_free(t);
}

static void test_binary_keys(void **state)
{
	static const struct {
		const char *k;
		size_t len;
	} keys[] = {
		{ "a", 1 },           { "a\0", 2 },        { "a\0b", 3 },
		{ "a\0c", 3 },        { "\0a", 2 },        { "\0\0", 2 },
		{ "\0\0\0", 3 },      { "\0\0\0\0\0\0\0\0", 8 },
		{ "\0\0\0\0\0\0\0\0\0", 9 },
		{ "\xff\xfe\0\x01", 4 },
		{ "12345678\0abc", 12 }, { "12345678\0abd", 12 },
	};
	const size_t n = sizeof(keys) / sizeof(keys[0]);
	struct strtab *t = new_table(64, 4096);
	uint32_t ids[sizeof(keys) / sizeof(keys[0])];
	size_t i, j;

	(void)state;
	for (i = 0; i < n; i++)
		ids[i] = intern_ok(t, keys[i].k, keys[i].len);
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			assert_int_not_equal(ids[i], ids[j]);
		expect_bytes(t, ids[i], keys[i].k, keys[i].len);
		assert_int_equal(intern_ok(t, keys[i].k, keys[i].len), ids[i]);
	}
	assert_int_equal(strtab_count(t), n);
	strtab_free(t);
}

/* Keys are arrays of frame ids that callers read in place. */
static void test_keys_are_aligned(void **state)
{
	struct strtab *t = new_table(64, 4096);
	uint32_t arr[3] = { 1, 2, 3 };
	size_t len;
	int i;

	(void)state;
	for (i = 1; i <= 13; i++) {
		const void *got;
		uint32_t id = intern_ok(t, "abcdefghijklm", (size_t)i);

		assert_int_equal(strtab_get(t, id, &got, &len), 0);
		assert_int_equal((uintptr_t)got % 8, 0);
	}
	{
		const void *got;
		uint32_t id = intern_ok(t, arr, sizeof(arr));

		assert_int_equal(strtab_get(t, id, &got, &len), 0);
		assert_int_equal((uintptr_t)got % 8, 0);
		assert_int_equal(((const uint32_t *)got)[2], 3);
	}
	strtab_free(t);
}

static void test_long_key(void **state)
{
	const size_t len = 100000;
	struct strtab *t = new_table(4, 2 * len + 64);
	unsigned char *k = malloc(len);
	uint32_t id;
	size_t i;

	(void)state;
	assert_non_null(k);
	for (i = 0; i < len; i++)
		k[i] = (unsigned char)(i * 131u);
	id = intern_ok(t, k, len);
	expect_bytes(t, id, k, len);
	assert_int_equal(intern_ok(t, k, len), id);
	/* Same bytes but one shorter is another key. */
	assert_int_not_equal(intern_ok(t, k, len - 1), id);
	free(k);
	strtab_free(t);
}

static void test_hash(void **state)
{
	(void)state;
	assert_int_equal(strtab_hash("abc", 3), strtab_hash("abc", 3));
	assert_int_not_equal(strtab_hash("abc", 3), strtab_hash("abd", 3));
	/* Runs of zeros of different lengths must not collide. */
	assert_int_not_equal(strtab_hash("", 0), strtab_hash("\0", 1));
	assert_int_not_equal(strtab_hash("\0", 1), strtab_hash("\0\0", 2));
	assert_int_not_equal(strtab_hash("\0\0\0\0\0\0\0\0", 8),
			     strtab_hash("\0\0\0\0\0\0\0\0\0", 9));
}

/* ---- bounds -------------------------------------------------------------- */

static void test_enospc_max_keys(void **state)
{
	struct strtab *t = new_table(4, 4096);
	uint32_t ids[4], id = 12345;
	char key[8];
	int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ids[i] = intern_ok(t, key, strlen(key));
	}
	/* Every new key fails, repeatedly, without touching *id. */
	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "n%d", i);
		assert_int_equal(strtab_intern(t, key, strlen(key), &id), -ENOSPC);
		assert_int_equal(id, 12345);
	}
	assert_int_equal(strtab_count(t), 4);
	/* What was there is intact and still found. */
	for (i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		expect_bytes(t, ids[i], key, strlen(key));
		assert_int_equal(intern_ok(t, key, strlen(key)), ids[i]);
	}
	expect_noent(t, 4);
	expect_noent(t, 5);
	expect_noent(t, UINT32_MAX);
	strtab_free(t);
}

static void test_enospc_arena(void **state)
{
	/* 7-byte keys take 8 bytes of arena each (key + NUL, 8-aligned). */
	struct strtab *t = new_table(100, 64);
	uint32_t ids[8], id, burnt;
	char key[8];
	int i;

	(void)state;
	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "key%04d", i);
		ids[i] = intern_ok(t, key, 7);
	}
	assert_int_equal(strtab_bytes(t), 64);
	burnt = strtab_count(t);
	assert_int_equal(burnt, 8);
	assert_int_equal(strtab_intern(t, "another", 7, &id), -ENOSPC);
	assert_int_equal(strtab_intern(t, "", 0, &id), -ENOSPC);
	/* A key bigger than the whole arena. */
	{
		char big[200];

		memset(big, 'x', sizeof(big));
		assert_int_equal(strtab_intern(t, big, sizeof(big), &id), -ENOSPC);
	}
	/* The ids reserved by the failed inserts are orphans. */
	assert_true(strtab_count(t) > burnt);
	for (id = burnt; id < strtab_count(t) + 2; id++)
		expect_noent(t, id);
	assert_true(strtab_bytes(t) <= 64);
	/* Nothing that was there is damaged. */
	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "key%04d", i);
		expect_bytes(t, ids[i], key, 7);
		assert_int_equal(intern_ok(t, key, 7), ids[i]);
	}
	strtab_free(t);
}

static void test_get_unknown_ids(void **state)
{
	struct strtab *t = new_table(16, 1024);

	(void)state;
	expect_noent(t, 0);
	expect_noent(t, 1);
	intern_ok(t, "one", 3);
	expect_bytes(t, 0, "one", 3);
	expect_noent(t, 1);
	expect_noent(t, 15);
	expect_noent(t, 16);
	expect_noent(t, 1u << 31);
	expect_noent(t, UINT32_MAX);
	strtab_free(t);
}

/* ---- concurrency ----------------------------------------------------------- */

#define NTHREADS 6
#define NKEYS 50000
#define ROUNDS 4

enum order { ORDER_SHUFFLED, ORDER_SAME };

struct shared {
	struct strtab *t;
	pthread_barrier_t go;
	char (*keys)[24];
	uint8_t *lens;
	enum order order;
};

struct worker {
	struct shared *sh;
	int idx;
	uint64_t seed;
	uint32_t *order;   /* key indexes in insertion order */
	uint32_t *ids;     /* per key: id got, or UINT32_MAX when not inserted */
	int err;           /* first failure, as a line number */
};

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Thread w inserts key k unless (k + w) % 4 == 0: with 4 or more threads
 * every key is inserted by three quarters of them. */
static int takes_key(int w, uint32_t k)
{
	return (k + (uint32_t)w) % 4 != 0;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	uint32_t i, n = 0;

	for (i = 0; i < NKEYS; i++) {
		w->ids[i] = UINT32_MAX;
		if (takes_key(w->idx, i))
			w->order[n++] = i;
	}
	if (sh->order == ORDER_SHUFFLED) {
		for (i = n; i > 1; i--) {
			uint32_t j = (uint32_t)(xorshift(&w->seed) % i), tmp;

			tmp = w->order[i - 1];
			w->order[i - 1] = w->order[j];
			w->order[j] = tmp;
		}
	}
	pthread_barrier_wait(&sh->go);
	for (i = 0; i < n; i++) {
		uint32_t k = w->order[i], id = UINT32_MAX;
		const void *got;
		size_t len;

		if (strtab_intern(sh->t, sh->keys[k], sh->lens[k], &id)) {
			w->err = __LINE__;
			break;
		}
		/* A completed intern's id is readable at once, during inserts. */
		if (strtab_get(sh->t, id, &got, &len) || len != sh->lens[k] ||
		    memcmp(got, sh->keys[k], len)) {
			w->err = __LINE__;
			break;
		}
		w->ids[k] = id;
	}
	return NULL;
}

static void run_round(struct shared *sh, struct worker *ws, uint64_t round)
{
	pthread_t th[NTHREADS];
	uint32_t *owner, count, live = 0, i;
	int w;

	/* Room for every id an orphan might burn. */
	sh->t = new_table(NKEYS * NTHREADS, (size_t)NKEYS * NTHREADS * 32);
	assert_int_equal(pthread_barrier_init(&sh->go, NULL, NTHREADS), 0);
	for (w = 0; w < NTHREADS; w++) {
		ws[w].sh = sh;
		ws[w].idx = w;
		ws[w].seed = 0x9e3779b97f4a7c15ull * (round * NTHREADS + (uint64_t)w + 1);
		ws[w].err = 0;
		assert_int_equal(pthread_create(&th[w], NULL, worker_run, &ws[w]), 0);
	}
	for (w = 0; w < NTHREADS; w++)
		assert_int_equal(pthread_join(th[w], NULL), 0);
	pthread_barrier_destroy(&sh->go);
	for (w = 0; w < NTHREADS; w++)
		assert_int_equal(ws[w].err, 0);

	count = strtab_count(sh->t);
	assert_true(count >= NKEYS);
	owner = malloc(count * sizeof(*owner));
	assert_non_null(owner);
	for (i = 0; i < count; i++)
		owner[i] = UINT32_MAX;

	for (i = 0; i < NKEYS; i++) {
		uint32_t id = UINT32_MAX;

		/* Every thread that inserted key i got the same id... */
		for (w = 0; w < NTHREADS; w++) {
			if (!takes_key(w, i)) {
				assert_int_equal(ws[w].ids[i], UINT32_MAX);
				continue;
			}
			if (id == UINT32_MAX)
				id = ws[w].ids[i];
			assert_int_equal(ws[w].ids[i], id);
		}
		assert_true(id < count);
		/* ...no other key has that id... */
		assert_int_equal(owner[id], UINT32_MAX);
		owner[id] = i;
		/* ...it holds the key's bytes, and a fresh lookup agrees. */
		expect_bytes(sh->t, id, sh->keys[i], sh->lens[i]);
		assert_int_equal(intern_ok(sh->t, sh->keys[i], sh->lens[i]), id);
	}
	/* Every id that is not an orphan belongs to one of the keys. */
	for (i = 0; i < count; i++) {
		const void *got;
		size_t len;

		if (strtab_get(sh->t, i, &got, &len) == 0) {
			assert_int_not_equal(owner[i], UINT32_MAX);
			live++;
		} else {
			assert_int_equal(owner[i], UINT32_MAX);
		}
	}
	assert_int_equal(live, NKEYS);
	assert_int_equal(strtab_count(sh->t), count); /* lookups added none */
	print_message("round %u (%s): %u orphan ids\n", (unsigned)round,
		      sh->order == ORDER_SAME ? "same order" : "shuffled",
		      count - live);
	free(owner);
	strtab_free(sh->t);
	sh->t = NULL;
}

static void test_concurrent_intern(void **state)
{
	struct shared sh = { 0 };
	struct worker ws[NTHREADS];
	uint64_t seed = 42;
	uint32_t i;
	int w, round;

	(void)state;
	sh.keys = malloc((size_t)NKEYS * sizeof(*sh.keys));
	sh.lens = malloc(NKEYS);
	assert_non_null(sh.keys);
	assert_non_null(sh.lens);
	/* Keys of varied lengths (0..23), some with NULs and high bytes. */
	for (i = 0; i < NKEYS; i++) {
		int n = snprintf(sh.keys[i], sizeof(sh.keys[i]), "k%u.", i);
		uint32_t extra = (uint32_t)(xorshift(&seed) % (sizeof(sh.keys[i]) - (size_t)n));
		uint32_t j;

		for (j = 0; j < extra; j++)
			sh.keys[i][n + (int)j] = (char)(xorshift(&seed) & 0xff);
		sh.lens[i] = (uint8_t)(n + (int)extra);
	}
	/* One empty key to make sure it survives races too. */
	sh.lens[0] = 0;
	for (w = 0; w < NTHREADS; w++) {
		ws[w].order = malloc(NKEYS * sizeof(uint32_t));
		ws[w].ids = malloc(NKEYS * sizeof(uint32_t));
		assert_non_null(ws[w].order);
		assert_non_null(ws[w].ids);
	}
	/* Shuffled rounds spread the work; same-order rounds make threads
	 * race for the same key at the same moment and so leave orphans. */
	for (round = 0; round < ROUNDS; round++) {
		sh.order = round % 2 ? ORDER_SAME : ORDER_SHUFFLED;
		run_round(&sh, ws, (uint64_t)round);
	}
	for (w = 0; w < NTHREADS; w++) {
		free(ws[w].order);
		free(ws[w].ids);
	}
	free(sh.keys);
	free(sh.lens);
}

/* Threads that fill a small table concurrently: each either gets an id or
 * -ENOSPC, ids stay unique, and the table holds at most max_keys keys. */
#define SMALL_KEYS 256

struct small_worker {
	struct strtab *t;
	pthread_barrier_t *go;
	int idx;
	uint32_t ids[1024];
	int errs[1024];
};

static void *small_run(void *arg)
{
	struct small_worker *w = arg;
	char key[16];
	int i;

	pthread_barrier_wait(w->go);
	for (i = 0; i < 1024; i++) {
		int k = (i * 7 + w->idx * 3) % 1024;
		int n = snprintf(key, sizeof(key), "s%d", k);

		w->ids[k] = UINT32_MAX;
		w->errs[k] = strtab_intern(w->t, key, (size_t)n, &w->ids[k]);
	}
	return NULL;
}

static void test_concurrent_full(void **state)
{
	static struct small_worker ws[NTHREADS];
	pthread_barrier_t go;
	pthread_t th[NTHREADS];
	struct strtab *t = new_table(SMALL_KEYS, SMALL_KEYS * 16);
	uint32_t *owner = malloc(SMALL_KEYS * sizeof(*owner));
	uint32_t live = 0, i;
	int w, k;

	(void)state;
	assert_non_null(owner);
	for (i = 0; i < SMALL_KEYS; i++)
		owner[i] = UINT32_MAX;
	assert_int_equal(pthread_barrier_init(&go, NULL, NTHREADS), 0);
	for (w = 0; w < NTHREADS; w++) {
		ws[w].t = t;
		ws[w].go = &go;
		ws[w].idx = w;
		assert_int_equal(pthread_create(&th[w], NULL, small_run, &ws[w]), 0);
	}
	for (w = 0; w < NTHREADS; w++)
		assert_int_equal(pthread_join(th[w], NULL), 0);
	pthread_barrier_destroy(&go);
	assert_int_equal(strtab_count(t), SMALL_KEYS);
	for (w = 0; w < NTHREADS; w++) {
		for (k = 0; k < 1024; k++) {
			char key[16];
			int n = snprintf(key, sizeof(key), "s%d", k);
			uint32_t id = ws[w].ids[k];

			if (ws[w].errs[k]) {
				assert_int_equal(ws[w].errs[k], -ENOSPC);
				continue;
			}
			assert_true(id < SMALL_KEYS);
			assert_true(owner[id] == UINT32_MAX || owner[id] == (uint32_t)k);
			owner[id] = (uint32_t)k;
			expect_bytes(t, id, key, (size_t)n);
		}
	}
	for (i = 0; i < SMALL_KEYS; i++) {
		const void *got;
		size_t len;

		if (strtab_get(t, i, &got, &len) == 0) {
			/* Live ids were all handed to some thread. */
			assert_int_not_equal(owner[i], UINT32_MAX);
			live++;
		}
	}
	assert_true(live > 0 && live <= SMALL_KEYS);
	free(owner);
	strtab_free(t);
}

/* The same tests on lasting tables (levels before the main table). */
#define LASTING(name) \
	static void name##_lasting(void **state) \
	{ \
		lasting = 1; \
		name(state); \
		lasting = 0; \
	}
LASTING(test_round_trip)
LASTING(test_dense_ids)
LASTING(test_enospc_max_keys)
LASTING(test_concurrent_intern)
LASTING(test_concurrent_full)
#undef LASTING

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects_bad_bounds),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_dense_ids),
		cmocka_unit_test(test_few_keys_few_pages),
		cmocka_unit_test(test_empty_key),
		cmocka_unit_test(test_binary_keys),
		cmocka_unit_test(test_keys_are_aligned),
		cmocka_unit_test(test_long_key),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_enospc_max_keys),
		cmocka_unit_test(test_enospc_arena),
		cmocka_unit_test(test_get_unknown_ids),
		cmocka_unit_test(test_concurrent_intern),
		cmocka_unit_test(test_concurrent_full),
		cmocka_unit_test(test_round_trip_lasting),
		cmocka_unit_test(test_dense_ids_lasting),
		cmocka_unit_test(test_enospc_max_keys_lasting),
		cmocka_unit_test(test_concurrent_intern_lasting),
		cmocka_unit_test(test_concurrent_full_lasting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
