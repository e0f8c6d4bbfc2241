/* runwatch.c - the user-space side of the sched_switch watch (runwatch.h). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pyspyc/runwatch.h"
#include "runwatch_abi.h"
#include "runwatch.lskel.h"
#include "runwatch.skel.h"

/* The last slot is runwatch_open's own check, never handed out. */
#define SELF_SLOT (RW_MAX_SLOTS - 1)

struct runwatch {
	/* One of the two, the light one when the kernel takes it. */
	struct runwatch_lskel *lskel;
	struct runwatch_bpf *skel;
	const volatile __u64 *switches;
	const volatile __u32 *on_cpu;
	const volatile __u64 *stir;
	volatile __u8 *moved;
	volatile __u64 *threads;
	volatile __u32 *slot_gen;
	volatile __u64 *filter;
	uint16_t filter_refs[RW_FILTER_BITS]; /* watched pids per filter bit */
	uint32_t ncpu;
	int slots_fd;
	pthread_mutex_t lock;
	uint32_t nfree;
	uint32_t free_slots[SELF_SLOT]; /* a stack of the slots not in use */
};

/* libbpf prints to stderr by default; a library never does. */
static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

/* The filter's bit for pid: set while one watched pid has it.  Under
 * rw->lock.  A bit set a moment early only costs the program a lookup;
 * it is set before the pid is in the map and cleared after it left. */
static void filter_ref(struct runwatch *rw, uint32_t pid, int add)
{
	uint32_t bit = pid % RW_FILTER_BITS;
	__u64 mask = 1ULL << (bit % 64);

	if (add && rw->filter_refs[bit]++ == 0)
		__atomic_fetch_or(&rw->filter[bit / 64], mask, __ATOMIC_SEQ_CST);
	else if (!add && --rw->filter_refs[bit] == 0)
		__atomic_fetch_and(&rw->filter[bit / 64], ~mask, __ATOMIC_SEQ_CST);
}

static int map_set(struct runwatch *rw, uint32_t key, uint32_t slot)
{
	int err;

	pthread_mutex_lock(&rw->lock);
	filter_ref(rw, key, 1);
	pthread_mutex_unlock(&rw->lock);
	err = bpf_map_update_elem(rw->slots_fd, &key, &slot, BPF_ANY) ? -errno : 0;
	if (err) {
		pthread_mutex_lock(&rw->lock);
		filter_ref(rw, key, 0);
		pthread_mutex_unlock(&rw->lock);
	}
	return err;
}

static void map_clear(struct runwatch *rw, uint32_t key)
{
	bpf_map_delete_elem(rw->slots_fd, &key);
	pthread_mutex_lock(&rw->lock);
	filter_ref(rw, key, 0);
	pthread_mutex_unlock(&rw->lock);
}

/* The program sees pids of the initial PID namespace; pyspyc's are of its
 * own.  Watch pyspyc itself for a moment: a sleep switches this thread out
 * and in again, which counts only if the two agree. */
static int check_self(struct runwatch *rw)
{
	struct timespec nap = { 0, 1000000 };
	uint32_t key = (uint32_t)getpid();
	uint64_t before = rw->switches[SELF_SLOT];
	int err, i;

	err = map_set(rw, key, SELF_SLOT);
	if (err)
		return err;
	for (i = 0; i < 5 && rw->switches[SELF_SLOT] == before; i++)
		nanosleep(&nap, NULL);
	err = rw->switches[SELF_SLOT] != before ? 0 : -ENOTSUP;
	map_clear(rw, key);
	return err;
}

/* The program's mapped .bss, as either skeleton has it (one layout, two
 * type names). */
#define TAKE_BSS(rw, bss) do {				\
		(rw)->switches = (bss)->switches;	\
		(rw)->on_cpu = (bss)->on_cpu;		\
		(rw)->stir = &(bss)->stir;		\
		(rw)->moved = (bss)->moved;		\
		(rw)->threads = (bss)->threads;		\
		(rw)->slot_gen = (bss)->slot_gen;	\
		(rw)->filter = (bss)->filter;		\
	} while (0)

/* The program through its light skeleton (bpftool gen skeleton -L): a
 * loader program does the relocations against the kernel's types in the
 * kernel (Linux 5.17 and later), where libbpf reads and parses the whole
 * of /sys/kernel/btf/vmlinux first (5.5 MB here, read a page a call).
 * Here (Linux 6.18, a PVM guest), `pyspyc record -d 0.1` on one busy
 * thread took 0.01-0.02 s of CPU with the watch off, 0.02 s with the
 * light skeleton and 0.06-0.07 s with libbpf's (user+sys, /usr/bin/time,
 * three runs each): most of what a start cost, paid by every run. */
static int load_light(struct runwatch *rw)
{
	struct runwatch_lskel *l = runwatch_lskel__open_and_load();
	int err;

	if (!l)
		return errno ? -errno : -ENOTSUP;
	err = runwatch_lskel__attach(l);
	if (err || !l->bss) {
		runwatch_lskel__destroy(l);
		return err ? err : -ENOTSUP;
	}
	rw->lskel = l;
	TAKE_BSS(rw, l->bss);
	rw->slots_fd = l->maps.slots.map_fd;
	return 0;
}

/* The same program through libbpf's skeleton: kernels the light one does
 * not load on. */
static int load_libbpf(struct runwatch *rw)
{
	struct runwatch_bpf *k;
	int err;

	libbpf_set_print(quiet);
	k = runwatch_bpf__open_and_load();
	if (!k)
		return errno ? -errno : -ENOTSUP;
	if (runwatch_bpf__attach(k)) {
		err = errno ? -errno : -ENOTSUP;
		runwatch_bpf__destroy(k);
		return err;
	}
	if (!k->bss) {
		runwatch_bpf__destroy(k);
		return -ENOTSUP; /* a kernel without mappable maps (before 5.5) */
	}
	rw->skel = k;
	TAKE_BSS(rw, k->bss);
	rw->slots_fd = bpf_map__fd(k->maps.slots);
	return 0;
}

static void unload(struct runwatch *rw)
{
	if (rw->lskel)
		runwatch_lskel__destroy(rw->lskel);
	if (rw->skel)
		runwatch_bpf__destroy(rw->skel);
	rw->lskel = NULL;
	rw->skel = NULL;
}

const char *runwatch_loader(const struct runwatch *rw)
{
	return rw->lskel ? "light" : "libbpf";
}

int runwatch_open(struct runwatch **out)
{
	const char *env = getenv("PYSPYC_RUNWATCH");
	struct runwatch *rw;
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	uint32_t i;
	int err;

	*out = NULL;
	if ((env && !strcmp(env, "0")) || ncpu < 1 || ncpu > RW_MAX_CPUS)
		return -ENOTSUP;
	rw = calloc(1, sizeof(*rw));
	if (!rw)
		return -ENOMEM;
	err = env && !strcmp(env, "libbpf") ? -ENOTSUP : load_light(rw);
	if (err)
		err = load_libbpf(rw);
	if (err)
		goto out_free;
	rw->ncpu = (uint32_t)ncpu;
	pthread_mutex_init(&rw->lock, NULL);
	err = check_self(rw);
	if (err)
		goto out_lock;
	for (i = 0; i < SELF_SLOT; i++)
		rw->free_slots[i] = SELF_SLOT - 1 - i;
	rw->nfree = SELF_SLOT;
	*out = rw;
	return 0;

out_lock:
	pthread_mutex_destroy(&rw->lock);
	unload(rw);
out_free:
	free(rw);
	return err == -EPERM || err == -EACCES || err == -EINVAL || err == -ENOENT ||
	       err == -E2BIG || err == -EOPNOTSUPP ? -ENOTSUP : err;
}

void runwatch_close(struct runwatch *rw)
{
	if (!rw)
		return;
	unload(rw);
	pthread_mutex_destroy(&rw->lock);
	free(rw);
}

int runwatch_add(struct runwatch *rw, pid_t pid, uint32_t *slot)
{
	int err;

	pthread_mutex_lock(&rw->lock);
	if (!rw->nfree) {
		pthread_mutex_unlock(&rw->lock);
		return -ENOSPC;
	}
	*slot = rw->free_slots[--rw->nfree];
	pthread_mutex_unlock(&rw->lock);
	/* The threads' words noted under this slot before are another
	 * watch's: stale from now on (before the program sees the pid). */
	__atomic_fetch_add(&rw->slot_gen[*slot], 1, __ATOMIC_SEQ_CST);
	err = map_set(rw, (uint32_t)pid, *slot);
	if (err) {
		pthread_mutex_lock(&rw->lock);
		rw->free_slots[rw->nfree++] = *slot;
		pthread_mutex_unlock(&rw->lock);
	}
	return err;
}

void runwatch_del(struct runwatch *rw, pid_t pid, uint32_t slot)
{
	uint32_t key = (uint32_t)pid;

	if (!rw || slot >= SELF_SLOT)
		return;
	map_clear(rw, key);
	pthread_mutex_lock(&rw->lock);
	rw->free_slots[rw->nfree++] = slot;
	pthread_mutex_unlock(&rw->lock);
}

uint64_t runwatch_switches(const struct runwatch *rw, uint32_t slot)
{
	return __atomic_load_n(&rw->switches[slot], __ATOMIC_RELAXED);
}

uint64_t runwatch_stir(const struct runwatch *rw)
{
	return __atomic_load_n(rw->stir, __ATOMIC_ACQUIRE);
}

int runwatch_take_moved(struct runwatch *rw, uint32_t slot)
{
	if (slot >= RW_MAX_SLOTS)
		return 1;
	/* Most looks find it clear: a load, no locked instruction. */
	if (!__atomic_load_n(&rw->moved[slot], __ATOMIC_ACQUIRE))
		return 0;
	__atomic_exchange_n(&rw->moved[slot], 0, __ATOMIC_ACQ_REL);
	return 1;
}

int runwatch_on_cpu(const struct runwatch *rw, uint32_t slot)
{
	uint32_t c;

	for (c = 0; c < rw->ncpu; c++)
		if (rw->on_cpu[c] == slot + 1)
			return 1;
	return 0;
}

/* Thread tid's word in the table. */
static volatile __u64 *thread_word(const struct runwatch *rw, pid_t tid)
{
	return &rw->threads[(uint32_t)tid % RW_MAX_THREADS];
}

/* The letter word v holds for thread tid of the slot of generation gen,
 * or 0 when it holds none for it (another thread's, or older). */
static int word_letter(uint64_t v, pid_t tid, uint32_t gen)
{
	if ((uint32_t)(v >> 32) != (uint32_t)tid || ((v >> 8) & RW_GEN_MASK) != gen)
		return 0;
	return (int)(v & 0xff);
}

static uint32_t slot_gen_now(const struct runwatch *rw, uint32_t slot)
{
	return __atomic_load_n(&rw->slot_gen[slot], __ATOMIC_RELAXED) & RW_GEN_MASK;
}

int runwatch_thread_state(const struct runwatch *rw, uint32_t slot, pid_t tid)
{
	int letter;

	if (!rw || tid <= 0 || slot >= RW_MAX_SLOTS)
		return -ENOENT;
	letter = word_letter(__atomic_load_n(thread_word(rw, tid), __ATOMIC_RELAXED), tid,
			     slot_gen_now(rw, slot));
	return letter ? letter : -ENOENT;
}

void runwatch_seed(struct runwatch *rw, uint32_t slot, pid_t tid, int letter)
{
	__u64 v, want; /* the table's own type, for the compare-and-swap */
	uint32_t gen;

	if (!rw || tid <= 0 || slot >= RW_MAX_SLOTS || !letter || !strchr("RSDTt", letter))
		return;
	v = __atomic_load_n(thread_word(rw, tid), __ATOMIC_RELAXED);
	gen = slot_gen_now(rw, slot);
	/* Another thread's word (tids that share the place), or this one's
	 * noted by the program since it was asked: left as it is. */
	if (v && ((uint32_t)(v >> 32) != (uint32_t)tid || word_letter(v, tid, gen)))
		return;
	want = (uint64_t)(uint32_t)tid << 32 | (uint64_t)gen << 8 | (uint8_t)letter;
	/* The program's store between the load and here wins: its word is
	 * newer than what /proc said. */
	__atomic_compare_exchange_n(thread_word(rw, tid), &v, want, 0, __ATOMIC_SEQ_CST,
				    __ATOMIC_RELAXED);
}
