/* fuzz_elf.c - ELF symbols and sections (elf.h) of a file that is the
 * input, through libelf.
 *
 * The input is written to a memfd and opened by path, as a binary in a
 * target's /proc/PID/root would be; then every lookup py_runtime makes is
 * done on it: symbols, sections and their bytes, the load bias of a few
 * mappings and reads at the sections' addresses.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image.h"
#include "pyspyc/elf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const syms[] = { "_PyRuntime", "Py_Version", "PyCode_Type",
					    "interp_head", "_PyThreadState_Current" };
	static const char *const secs[] = { ".data", ".bss", ".PyRuntime", ".rodata",
					    ".text", "" };
	uint64_t addrs[5], sizes[5], addr, len, bias;
	struct elf_file *ef;
	const uint8_t *d;
	uint8_t buf[64];
	char path[64];
	size_t i, n;
	int fd;

	fd = memfd_create("fuzz_elf", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (elf_file_open(&ef, path)) {
		close(fd);
		return 0;
	}
	FUZZ_CHECK(elf_file_symbols(ef, syms, addrs, sizes, 5) <= 5);
	for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		if (elf_file_section_data(ef, secs[i], &d, &n) == 0 && n)
			sink = d[0] ^ d[n - 1]; /* readable to the end */
		if (elf_file_section(ef, secs[i], &addr, &len))
			continue;
		elf_file_read(ef, addr, buf, sizeof(buf));
		elf_file_read(ef, addr + len - 1, buf, 1);
		elf_file_bias(ef, 0x7f0000000000ull, addr & ~0xfffull, &bias);
	}
	for (i = 0; i < 5; i++)
		if (addrs[i])
			elf_file_read(ef, addrs[i], buf, sizes[i] < sizeof(buf) ? sizes[i] : sizeof(buf));
	elf_file_bias(ef, 0x400000, 0, &bias);
	elf_file_bias(ef, 0x7f0000001000ull, 0x1000, &bias);
	elf_file_close(ef);
	close(fd);
	return 0;
}
