/* test_proc_mem.c - remote reads, read from this very process: ranges merged
 * or not, in any order, arrive where they were asked to, and a range that
 * is not mapped fails the whole read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pyspyc/proc.h"

#define PAGES 8
#define PG 4096

static uint8_t *map_pattern(void)
{
	uint8_t *p = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t i;

	assert_true(p != MAP_FAILED);
	for (i = 0; i < PAGES * PG; i++)
		p[i] = (uint8_t)(i * 7 + i / 251);
	return p;
}

struct req {
	size_t off, len;
};

/* Read the ranges of src given by r[] into separate buffers with one
 * rmem_readv and check every byte; returns the remote ranges issued. */
static uint64_t read_check(const uint8_t *src, const struct req *r, size_t n)
{
	struct iovec l[16], rem[16];
	uint8_t *bufs[16];
	struct rmem m;
	size_t i;

	assert_true(n <= 16);
	rmem_init(&m, getpid());
	for (i = 0; i < n; i++) {
		bufs[i] = malloc(r[i].len + 1);
		assert_non_null(bufs[i]);
		memset(bufs[i], 0xee, r[i].len + 1);
		l[i] = (struct iovec){ bufs[i], r[i].len };
		rem[i] = (struct iovec){ (void *)(src + r[i].off), r[i].len };
	}
	assert_int_equal(rmem_readv(&m, l, rem, n), 0);
	for (i = 0; i < n; i++) {
		assert_memory_equal(bufs[i], src + r[i].off, r[i].len);
		assert_int_equal(bufs[i][r[i].len], 0xee); /* nothing past the end */
		free(bufs[i]);
	}
	assert_int_equal(m.reads, 1);
	return m.ranges;
}

static void test_same_page_ranges_merge(void **state)
{
	uint8_t *p = map_pattern();
	/* Out of order, with gaps, all within page 0. */
	struct req r[] = { { 3000, 8 }, { 16, 360 }, { 500, 184 }, { 700, 184 } };

	(void)state;
	assert_int_equal(read_check(p, r, 4), 1);
	munmap(p, PAGES * PG);
}

static void test_neighbouring_pages_merge(void **state)
{
	uint8_t *p = map_pattern();
	/* The end of page 1 and the end of page 2; then, past page 3 that
	 * nobody asked for, one range across pages 4-5 and one on page 5. */
	struct req r[] = { { 2 * PG - 8, 8 }, { 2 * PG + 4000, 16 },
			   { 5 * PG - 100, 200 }, { 5 * PG + 300, 50 } };

	(void)state;
	assert_int_equal(read_check(p, r, 4), 2);
	munmap(p, PAGES * PG);
}

static void test_distant_pages_stay_apart(void **state)
{
	uint8_t *p = map_pattern();
	/* A page between them that nobody asked for is never read. */
	struct req r[] = { { 7 * PG + 10, 10 }, { 10, 10 }, { 2 * PG + 10, 10 },
			   { 4 * PG + 10, 10 } };

	(void)state;
	assert_int_equal(read_check(p, r, 4), 4);
	munmap(p, PAGES * PG);
}

static void test_overlapping_and_empty_ranges(void **state)
{
	uint8_t *p = map_pattern();
	struct req r[] = { { 100, 300 }, { 200, 50 }, { 100, 300 }, { 900, 0 },
			   { 5 * PG, 20 } };

	(void)state;
	assert_true(read_check(p, r, 5) >= 2);
	munmap(p, PAGES * PG);
}

static void test_unmapped_range_fails_whole_read(void **state)
{
	uint8_t *p = map_pattern(), a[8], b[8];
	struct iovec l[2] = { { a, 8 }, { b, 8 } };
	struct iovec r[2] = { { p + 10, 8 }, { p + 3 * PG + 10, 8 } };
	struct rmem m;

	(void)state;
	/* Page 3 goes away: the read that needs it fails, merged or not. */
	assert_int_equal(munmap(p + 3 * PG, PG), 0);
	rmem_init(&m, getpid());
	assert_int_equal(rmem_readv(&m, l, r, 2), -EFAULT);
	r[1].iov_base = p + PG + 10; /* neighbouring page: merged, mapped */
	assert_int_equal(rmem_readv(&m, l, r, 2), 0);
	assert_memory_equal(b, p + PG + 10, 8);
	r[1].iov_base = p + 4 * PG - 4; /* straddles into the hole */
	r[0].iov_base = p + 3 * PG - 8;
	assert_int_equal(rmem_readv(&m, l, r, 2), -EFAULT);
	munmap(p, 3 * PG);
	munmap(p + 4 * PG, (PAGES - 4) * PG);
}

static void test_many_ranges(void **state)
{
	uint8_t *p = map_pattern();
	static uint8_t dst[RMEM_MAX_IOV][4];
	static struct iovec l[RMEM_MAX_IOV], r[RMEM_MAX_IOV];
	struct rmem m;
	size_t i;

	(void)state;
	/* Every fourth 4-byte word, backwards: 1024 ranges in 4 pages read
	 * as one, and the limit itself is accepted. */
	for (i = 0; i < RMEM_MAX_IOV; i++) {
		size_t off = (RMEM_MAX_IOV - 1 - i) * 16;

		l[i] = (struct iovec){ dst[i], 4 };
		r[i] = (struct iovec){ p + off, 4 };
	}
	rmem_init(&m, getpid());
	assert_int_equal(rmem_readv(&m, l, r, RMEM_MAX_IOV), 0);
	for (i = 0; i < RMEM_MAX_IOV; i++)
		assert_memory_equal(dst[i], p + (RMEM_MAX_IOV - 1 - i) * 16, 4);
	munmap(p, PAGES * PG);
}

static void test_more_ranges_than_one_call_takes(void **state)
{
	enum { N = 2 * RMEM_MAX_IOV + 300 };
	uint8_t *p = map_pattern();
	static uint8_t dst[N][4];
	static struct iovec l[N], r[N];
	struct rmem m;
	size_t i;

	(void)state;
	/* More pairs than one call takes (IOV_MAX): read in batches, one
	 * call each, every range arriving where asked. */
	for (i = 0; i < N; i++) {
		size_t off = (i % 3) * 3 * PG + (i / 3) * 4;

		l[i] = (struct iovec){ dst[i], 4 };
		r[i] = (struct iovec){ p + off, 4 };
	}
	rmem_init(&m, getpid());
	assert_int_equal(rmem_readv(&m, l, r, N), 0);
	for (i = 0; i < N; i++)
		assert_memory_equal(dst[i], r[i].iov_base, 4);
	assert_int_equal(m.reads, 3);
	/* A failing range in the last batch fails the whole read. */
	r[N - 1].iov_base = NULL;
	assert_int_equal(rmem_readv(&m, l, r, N), -EFAULT);
	munmap(p, PAGES * PG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_page_ranges_merge),
		cmocka_unit_test(test_neighbouring_pages_merge),
		cmocka_unit_test(test_distant_pages_stay_apart),
		cmocka_unit_test(test_overlapping_and_empty_ranges),
		cmocka_unit_test(test_unmapped_range_fails_whole_read),
		cmocka_unit_test(test_many_ranges),
		cmocka_unit_test(test_more_ranges_than_one_call_takes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
