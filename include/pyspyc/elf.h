/* elf.h - symbols and sections of the target's binaries, through libelf.
 *
 * Input is hostile: the file may be truncated, crafted or replaced on disk.
 * libelf bounds its own reads; here every index and size taken from the file
 * is checked before use.
 */
#ifndef PYSPYC_ELF_H
#define PYSPYC_ELF_H

#include <stddef.h>
#include <stdint.h>

struct elf_file;

/* Open path read-only.  0 or -errno (-ENOEXEC: not a 64-bit ELF file, or
 * not a regular file). */
int elf_file_open(struct elf_file **out, const char *path);
/* The same on a descriptor open for reading, which *out owns from now on
 * (closed here on failure). */
int elf_file_open_fd(struct elf_file **out, int fd);
void elf_file_close(struct elf_file *ef);

/* Look up n symbols by name in .dynsym and .symtab in one pass.  addrs[i]
 * (unrelocated st_value) and sizes[i] (may be NULL) are set for every name
 * found and left 0 otherwise.  Returns the number found or -errno. */
int elf_file_symbols(struct elf_file *ef, const char *const *names,
		     uint64_t *addrs, uint64_t *sizes, size_t n);

/* Address and size of section name (0 if it has no address).  0 or -ENOENT. */
int elf_file_section(struct elf_file *ef, const char *name, uint64_t *addr,
		     uint64_t *size);

/* The load bias of the file mapped at map_start from file offset map_offset:
 * runtime address = st_value + bias.  0 or -ENOENT when no PT_LOAD covers
 * the offset. */
int elf_file_bias(struct elf_file *ef, uint64_t map_start, uint64_t map_offset,
		  uint64_t *bias);

/* The bytes of section name as stored in the file (NULL for NOBITS), valid
 * until elf_file_close.  0 or -ENOENT. */
int elf_file_section_data(struct elf_file *ef, const char *name,
			  const uint8_t **data, size_t *size);

/* Copy up to size bytes of the file's contents at virtual address addr
 * (unrelocated) out of a PROGBITS section.  0 or -ENOENT/-EFAULT. */
int elf_file_read(struct elf_file *ef, uint64_t addr, void *buf, size_t size);

#endif
