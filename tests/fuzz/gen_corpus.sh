#!/bin/sh
# Regenerate the seed corpora under tests/fuzz/corpus/ (committed; run by
# hand after a layout or format change).  Needs the pyenv Pythons for the
# line tables and gcc for the ELF files.
set -eu
cd "$(dirname "$0")/../.."
c=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p $c/lines $c/walk $c/code $c/threads $c/obj $c/debug_offsets $c/elf
for v in 2.7 3.6 3.9 3.10 3.11 3.12 3.13; do
	"$(pyenv root)/versions/$(ls "$(pyenv root)/versions" | grep "^$v\." | tail -n 1)/bin/python" \
		tests/fuzz/gen_lines.py $c/lines
done
cc -std=gnu11 -Iinclude -Ibpf -o "$tmp/gen_images" tests/fuzz/gen_images.c src/python/py_layout_data.c \
	src/python/py_layout_hand.c
"$tmp/gen_images" $c
# A small executable and a shared object holding what py_runtime looks up.
cc -Os -nostdlib -static -Wl,--build-id=none -o $c/elf/static tests/fuzz/elf_seed.c
cc -Os -nostdlib -shared -fPIC -Wl,--build-id=none -o $c/elf/shared.so tests/fuzz/elf_seed.c
