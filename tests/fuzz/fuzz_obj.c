/* fuzz_obj.c - Python objects and text read out of a fake image
 * (py_obj.h), for every layout.
 *
 * Input (image.h): u8 layout, u8 fail_after, u8 output size, u64 object,
 * u64 frame, u64 its code object, u64 interpreter state; then the image.
 * py_obj_repr, py_obj_frame_locals and py_obj_thread_names must give
 * printable UTF-8 that fits, whatever the objects hold.  The pure
 * formatters get the image's bytes too: as UTF-8, as code points, as the
 * digits of an int and as a double.
 */
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "pyspyc/py_obj.h"
#include "pyspyc/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* NUL-terminated, valid UTF-8, no control characters. */
static void check_text(const char *s, size_t size)
{
	size_t len = strnlen(s, size), i = 0;

	FUZZ_CHECK(len < size);
	while (i < len) {
		uint32_t c;
		size_t k = utf8_seq((const unsigned char *)s + i, len - i, &c);

		FUZZ_CHECK(k > 0 && c >= 0x20 && c != 0x7f && !(c >= 0x80 && c < 0xa0));
		i += k;
	}
}

static int on_local(const char *name, uint64_t value, int is_arg, void *ctx)
{
	int *n = ctx;

	(void)value;
	(void)is_arg;
	check_text(name, PY_OBJ_MAX_NAME * 8);
	return ++*n >= 64; /* enough: stop the walk */
}

static void pure(const uint8_t *b, size_t len)
{
	uint32_t cp[256];
	char out[2048];
	size_t n, i;
	double d;

	n = py_text_printable((const char *)b, len, out, sizeof(out));
	FUZZ_CHECK(n < sizeof(out));
	check_text(out, sizeof(out));
	n = py_text_decode_utf8(b, len, cp, 256, NULL);
	FUZZ_CHECK(n <= 256);
	py_text_format(cp, n, len, "b", PY_TEXT_QUOTE, out, len % sizeof(out) + 1);
	check_text(out, len % sizeof(out) + 1);
	for (i = 0; i < 256 && 4 * i + 4 <= len; i++)
		memcpy(&cp[i], b + 4 * i, 4);
	py_text_format(cp, i, i + (len & 1), "", len & 2 ? PY_TEXT_QUOTE : 0, out,
		       sizeof(out));
	check_text(out, sizeof(out));
	py_int_format(cp, i, len ? 1 + b[0] % 31 : 30, len & 4, 60, out, sizeof(out));
	if (len >= 8) {
		memcpy(&d, b, sizeof(d));
		py_float_format(d, out, 64);
		check_text(out, 64);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct py_thread_name names[8];
	uint64_t obj, frame, code;
	struct py_target t;
	struct image im;
	struct rmem m;
	char out[512];
	size_t osize, rest;
	int n = 0, k, i;

	image_init(&im, data, size);
	image_target(&t, image_u8(&im));
	im.fail_after = image_u8(&im);
	osize = 1 + image_u8(&im) % sizeof(out);
	obj = image_u64(&im);
	frame = image_u64(&im);
	code = image_u64(&im);
	t.interp = image_u64(&im);
	rest = im.pos;
	image_load(&im);
	rmem_init(&m, t.pid);
	image_attach(&im, &m);
	py_obj_repr(&t, &m, obj, out, osize);
	check_text(out, osize);
	py_obj_frame_locals(&t, &m, frame, code, on_local, &n);
	k = py_obj_thread_names(&t, &m, names, 8);
	FUZZ_CHECK(k <= 8);
	for (i = 0; i < k; i++)
		check_text(names[i].name, sizeof(names[i].name));
	pure(data + rest, size - rest);
	return 0;
}
