/* image.c - a fake process memory image for the fuzzers (see image.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "image.h"

void image_init(struct image *im, const uint8_t *data, size_t size)
{
	memset(im, 0, sizeof(*im));
	im->in = data;
	im->size = size;
}

static uint64_t take(struct image *im, unsigned int bytes)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < bytes && im->pos < im->size; i++)
		v |= (uint64_t)im->in[im->pos++] << (8 * i);
	return v;
}

uint8_t image_u8(struct image *im)
{
	return (uint8_t)take(im, 1);
}

uint32_t image_u32(struct image *im)
{
	return (uint32_t)take(im, 4);
}

uint64_t image_u64(struct image *im)
{
	return take(im, 8);
}

void image_load(struct image *im)
{
	while (im->n < IMAGE_MAX_REGIONS && im->size - im->pos >= 11) {
		struct image_region *r = &im->r[im->n++];
		size_t left;

		r->addr = image_u64(im);
		r->len = (uint32_t)take(im, 2);
		r->samples = image_u8(im);
		left = im->size - im->pos;
		if (r->len > left)
			r->len = (uint32_t)left;
		r->data = im->in + im->pos;
		im->pos += r->len;
	}
}

void image_set_sample(struct image *im, unsigned int sample)
{
	im->sample = sample & 7;
}

#define PAGE 4096u

/* The region holding addr in the current sample, or NULL.  Memory is
 * mapped in pages: *zeros is set to how many bytes from addr read as 0
 * because they share a page with some region but lie in none. */
static const struct image_region *region_at(const struct image *im, uint64_t addr,
					    size_t *zeros)
{
	uint64_t page = addr / PAGE, end = (page + 1) * PAGE;
	int mapped = 0;
	uint32_t i;

	for (i = 0; i < im->n; i++) {
		const struct image_region *r = &im->r[i];

		if (!r->len || (r->samples && !(r->samples >> im->sample & 1)))
			continue;
		if (addr >= r->addr && addr - r->addr < r->len)
			return r;
		if (r->addr / PAGE <= page && (r->addr + r->len - 1) / PAGE >= page)
			mapped = 1;
		if (r->addr > addr && r->addr < end)
			end = r->addr;
	}
	*zeros = mapped ? (size_t)(end - addr) : 0;
	return NULL;
}

/* process_vm_readv over the image: remote ranges in order, scattered into
 * the local buffers in order, stopping at the first unmapped byte. */
static ssize_t image_readv(void *ctx, const struct iovec *local, unsigned long nl,
			   const struct iovec *remote, unsigned long nr)
{
	struct image *im = ctx;
	unsigned long li = 0, ri;
	size_t loff = 0, done = 0;

	if (im->fail_after && ++im->reads > im->fail_after) {
		errno = ESRCH;
		return -1;
	}
	for (ri = 0; ri < nr; ri++) {
		uint64_t a = (uint64_t)(uintptr_t)remote[ri].iov_base;
		size_t left = remote[ri].iov_len;

		while (left) {
			size_t n, zeros;
			const struct image_region *r = region_at(im, a, &zeros);

			if (!r && !zeros)
				goto out;
			n = r ? r->len - (size_t)(a - r->addr) : zeros;
			if (n > left)
				n = left;
			while (n) {
				size_t k;

				while (li < nl && loff == local[li].iov_len) {
					li++;
					loff = 0;
				}
				if (li == nl)
					goto out;
				k = local[li].iov_len - loff;
				if (k > n)
					k = n;
				if (r)
					memcpy((uint8_t *)local[li].iov_base + loff,
					       r->data + (a - r->addr), k);
				else
					memset((uint8_t *)local[li].iov_base + loff, 0, k);
				loff += k;
				a += k;
				n -= k;
				left -= k;
				done += k;
			}
		}
	}
out:
	if (!done && nr && remote[0].iov_len) {
		errno = EFAULT;
		return -1;
	}
	return (ssize_t)done;
}

void image_attach(struct image *im, struct rmem *m)
{
	m->fake = image_readv;
	m->fake_ctx = im;
}

void image_target(struct py_target *t, uint8_t sel)
{
	static const uint32_t versions[] = { 0x0207, 0x0306, 0x0307, 0x0308, 0x0309,
					     0x030a, 0x030b, 0x030c, 0x030d, 0x030e,
					     0x030f };
	uint32_t v = versions[sel % (sizeof(versions) / sizeof(versions[0]))];
	const struct py_layout *L = py_layout_find(v);

	memset(t, 0, sizeof(*t));
	FUZZ_CHECK(L);
	t->pid = getpid();
	t->version_hex = (v >> 8) << 24 | (v & 0xff) << 16;
	t->layout_buf = *L;
	t->layout = &t->layout_buf;
}
