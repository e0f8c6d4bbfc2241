/* elf_seed.c - a tiny ELF file for fuzz_elf's seeds (gen_corpus.sh): the
 * symbols, sections and version string py_runtime looks for. */
unsigned long _PyRuntime[8] __attribute__((section(".PyRuntime"))) = { 1 };
const unsigned long Py_Version = 0x030b07f0;
const char version[] = "3.11.7";
unsigned long interp_head;

void _start(void);
void _start(void)
{
	for (;;)
		;
}
