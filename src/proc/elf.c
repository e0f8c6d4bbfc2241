/* elf.c - symbols and sections through libelf. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pyspyc/elf.h"

struct elf_file {
	int fd;
	Elf *elf;
	size_t shstrndx;
};

int elf_file_open(struct elf_file **out, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	*out = NULL;
	if (fd < 0)
		return -errno;
	return elf_file_open_fd(out, fd);
}

int elf_file_open_fd(struct elf_file **out, int fd)
{
	struct elf_file *ef;
	struct stat st;
	int err;

	*out = NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOEXEC;
	}
	if (elf_version(EV_CURRENT) == EV_NONE) {
		close(fd);
		return -ENOSYS;
	}
	ef = calloc(1, sizeof(*ef));
	if (!ef) {
		close(fd);
		return -ENOMEM;
	}
	ef->fd = fd;
	ef->elf = elf_begin(ef->fd, ELF_C_READ_MMAP, NULL);
	if (!ef->elf || elf_kind(ef->elf) != ELF_K_ELF ||
	    gelf_getclass(ef->elf) != ELFCLASS64 ||
	    elf_getshdrstrndx(ef->elf, &ef->shstrndx)) {
		err = -ENOEXEC;
		goto out_elf;
	}
	*out = ef;
	return 0;

out_elf:
	if (ef->elf)
		elf_end(ef->elf);
	close(ef->fd);
	free(ef);
	return err;
}

void elf_file_close(struct elf_file *ef)
{
	if (!ef)
		return;
	elf_end(ef->elf);
	close(ef->fd);
	free(ef);
}

static void scan_symtab(struct elf_file *ef, Elf_Scn *scn, const GElf_Shdr *sh,
			const char *const *names, uint64_t *addrs,
			uint64_t *sizes, size_t n, int *found)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t i, k, count;

	if (!data || sh->sh_entsize == 0)
		return;
	count = sh->sh_size / sh->sh_entsize;
	for (i = 0; i < count && *found < (int)n; i++) {
		GElf_Sym sym;
		const char *name;

		if (!gelf_getsym(data, (int)i, &sym) || sym.st_value == 0 ||
		    sym.st_shndx == SHN_UNDEF)
			continue;
		name = elf_strptr(ef->elf, sh->sh_link, sym.st_name);
		if (!name || !name[0])
			continue;
		for (k = 0; k < n; k++) {
			if (addrs[k] || strcmp(name, names[k]))
				continue;
			addrs[k] = sym.st_value;
			if (sizes)
				sizes[k] = sym.st_size;
			(*found)++;
			break;
		}
	}
}

int elf_file_symbols(struct elf_file *ef, const char *const *names,
		     uint64_t *addrs, uint64_t *sizes, size_t n)
{
	Elf_Scn *scn = NULL;
	int found = 0;

	memset(addrs, 0, n * sizeof(*addrs));
	if (sizes)
		memset(sizes, 0, n * sizeof(*sizes));
	/* .dynsym first: it survives stripping and is small. */
	for (int pass = 0; pass < 2; pass++) {
		Elf64_Word want = pass == 0 ? SHT_DYNSYM : SHT_SYMTAB;

		scn = NULL;
		while ((scn = elf_nextscn(ef->elf, scn)) && found < (int)n) {
			GElf_Shdr sh;

			if (!gelf_getshdr(scn, &sh) || sh.sh_type != want)
				continue;
			scan_symtab(ef, scn, &sh, names, addrs, sizes, n, &found);
		}
	}
	return found;
}

static Elf_Scn *find_section(struct elf_file *ef, const char *name, GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(ef->elf, scn))) {
		const char *s;

		if (!gelf_getshdr(scn, sh))
			continue;
		s = elf_strptr(ef->elf, ef->shstrndx, sh->sh_name);
		if (s && !strcmp(s, name))
			return scn;
	}
	return NULL;
}

int elf_file_section(struct elf_file *ef, const char *name, uint64_t *addr,
		     uint64_t *size)
{
	GElf_Shdr sh;

	if (!find_section(ef, name, &sh) || sh.sh_addr == 0)
		return -ENOENT;
	*addr = sh.sh_addr;
	*size = sh.sh_size;
	return 0;
}

int elf_file_bias(struct elf_file *ef, uint64_t map_start, uint64_t map_offset,
		  uint64_t *bias)
{
	size_t i, nph;

	if (elf_getphdrnum(ef->elf, &nph))
		return -ENOEXEC;
	for (i = 0; i < nph; i++) {
		GElf_Phdr ph;
		uint64_t align;

		if (!gelf_getphdr(ef->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		align = 4096; /* mappings are page-granular */
		/* The mapping starts at the page holding p_offset. */
		if ((ph.p_offset & ~(align - 1)) != (map_offset & ~(align - 1)) &&
		    !(map_offset >= ph.p_offset && map_offset < ph.p_offset + ph.p_filesz))
			continue;
		*bias = map_start - (ph.p_vaddr - (ph.p_offset - map_offset));
		return 0;
	}
	return -ENOENT;
}

int elf_file_read(struct elf_file *ef, uint64_t addr, void *buf, size_t size)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(ef->elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    addr < sh.sh_addr || addr - sh.sh_addr >= sh.sh_size)
			continue;
		if (size > sh.sh_size - (addr - sh.sh_addr))
			return -EFAULT;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf || d->d_size < sh.sh_size)
			return -EFAULT;
		memcpy(buf, (const char *)d->d_buf + (addr - sh.sh_addr), size);
		return 0;
	}
	return -ENOENT;
}

int elf_file_section_data(struct elf_file *ef, const char *name,
			  const uint8_t **data, size_t *size)
{
	GElf_Shdr sh;
	Elf_Scn *scn = find_section(ef, name, &sh);
	Elf_Data *d;

	if (!scn || sh.sh_type == SHT_NOBITS)
		return -ENOENT;
	d = elf_getdata(scn, NULL);
	if (!d || !d->d_buf)
		return -ENOENT;
	*data = d->d_buf;
	*size = d->d_size;
	return 0;
}
