/* backend_bpf.c - the eBPF backend (backend_bpf.h): the hub (perf events,
 * program, ring buffer) and one struct backend per target process. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/perf_event.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pyspyc/backend_bpf.h"
#include "pyspyc/py_layout.h"
#include "pyspyc/py_walk.h"
#include "pyspyc_abi.h"
#include "pyspyc.skel.h"

_Static_assert(PB_DECODED_FRAMES == PB_MAX_FRAMES, "a record's frames fit");

#define PROC_SLOTS 16384        /* pid -> backend, open addressed (power of 2) */
#define LIST_EVERY_NS 1000000000LL  /* the thread list walked again at least */
#define LIST_SOON_NS 10000000LL     /* ...and this soon after an unknown thread */
/* ...and this often in a process with sub-interpreters, whose threads enter
 * and leave them (a thread state made in one is not looked for by the
 * program, which only knows the main interpreter's list). */
#define LIST_MULTI_NS 100000000LL
#define FOUND_SLOTS 64
#define QUEUE_MAX (8u << 20)    /* bytes of records one process may have waiting */
#define PROC_PID_INIT_INO 0xEFFFFFFCu /* the initial PID namespace's inode */

struct backend_bpf;

struct bpf_hub {
	struct pyspyc_bpf *skel;
	struct ring_buffer *rb;
	int *pfd;                  /* perf event per CPU, -1: none */
	struct bpf_link **links;
	int ncpu;
	int stats_fd;              /* BPF_ENABLE_STATS, -1: off */
	int procs_fd, threads_fd, layouts_fd;
	struct pb_layout layouts[PB_MAX_LAYOUTS];
	uint32_t nlayouts;
	uint32_t gen;
	struct { pid_t pid; struct backend_bpf *b; } slots[PROC_SLOTS];
	uint64_t bad;
	uint64_t execs_seen;       /* exec_count as last taken */
};

/* One process's records, as they came, back to back. */
struct queue {
	uint8_t *buf;
	size_t len, cap, off;
};

struct backend_bpf {
	struct backend b;          /* first */
	struct bpf_hub *hub;
	struct py_walker *w;       /* the thread list, and the memory */
	struct walk_stats ws;
	pid_t pid;
	uint32_t gen;
	struct pb_decode_opts dec;
	struct queue q;
	int64_t list_at;           /* when the thread list is due */
	int64_t listed_at;         /* when it was walked last */
	/* A record said the interpreter list's head moved (PB_INTERP_MOVED:
	 * the program looks, pb_proc.interp_head): a new interpreter, made by
	 * a thread whose stacks then miss it, has the list walked at the next
	 * turn.  multi: a thread runs in several. */
	int head_moved;
	int multi;
	/* pthread ids of threads the program found before the list did, read
	 * from their thread states: direct-mapped by tid */
	struct { uint32_t tid; uint64_t tstate, thread_id; } found[FOUND_SLOTS];
	const struct py_layout *L;
	/* In the threads map now, by tid, with each one's pthread id. */
	struct known {
		uint32_t tid, pos;
		uint64_t thread_id;
		struct pb_thread parts; /* as written to the threads map */
	} *tids;
	uint32_t ntids;
	uint64_t unknown, dropped;
	int execd;                 /* the kernel saw it exec: taken out */
	int thread_ids;            /* backend_opts.thread_ids */
	int kernel_finds;          /* the program looks threads up (pb_proc.threads_head) */
	/* The record handed out last. */
	struct raw_sample rs;
	struct pb_decoded d;
};

/* libbpf prints to stderr by default; a library never does.  What it
 * says of a refused program is kept: the verifier's last line (before the
 * log's end marker) goes to the user, else libbpf's last message. */
static char last_msg[256], verifier_msg[256];

static void last_line(const char *text, const char *end, char *out, size_t size)
{
	const char *a;
	size_t n;

	while (end > text && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	for (a = end; a > text && a[-1] != '\n'; a--)
		;
	n = (size_t)(end - a);
	if (!n)
		return;
	if (n >= size)
		n = size - 1;
	memcpy(out, a, n);
	out[n] = 0;
}

static int keep_last(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static char text[16384];
	const char *mark;

	if (level == LIBBPF_DEBUG)
		return 0;
	/* libbpf's own format, not one anybody else controls. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(text, sizeof(text), fmt, ap);
#pragma GCC diagnostic pop
	mark = strstr(text, "-- END PROG LOAD LOG --");
	if (mark) {
		/* The verifier ends with its statistics: the reason is the
		 * line before them. */
		const char *stats = strstr(text, "\nprocessed ");

		last_line(text, stats && stats < mark ? stats : mark, verifier_msg,
			  sizeof(verifier_msg));
	}
	last_line(text, text + strlen(text), last_msg, sizeof(last_msg));
	return 0;
}

static int in_init_pidns(void)
{
	struct stat st;

	return !stat("/proc/self/ns/pid", &st) && st.st_ino == PROC_PID_INIT_INO;
}

static uint32_t slot_hash(pid_t pid)
{
	return ((uint32_t)pid * 2654435761u) & (PROC_SLOTS - 1);
}

/* The slot holding pid, or PROC_SLOTS; *room (when not NULL): the first
 * free or removed slot on pid's way, PROC_SLOTS when none. */
static uint32_t hub_slot(const struct bpf_hub *h, pid_t pid, uint32_t *room)
{
	uint32_t i, k = slot_hash(pid), at = PROC_SLOTS;

	for (i = 0; i < PROC_SLOTS; i++, k = (k + 1) & (PROC_SLOTS - 1)) {
		if (h->slots[k].pid == pid)
			break;
		if (at == PROC_SLOTS && h->slots[k].pid <= 0)
			at = k;
		if (!h->slots[k].pid) {
			k = PROC_SLOTS;
			break;
		}
	}
	if (room)
		*room = at;
	return i == PROC_SLOTS ? PROC_SLOTS : k;
}

static struct backend_bpf *hub_find(const struct bpf_hub *h, pid_t pid)
{
	uint32_t k = hub_slot(h, pid, NULL);

	return k == PROC_SLOTS ? NULL : h->slots[k].b;
}

/* Its own slot if it has one (taken over), else the first free or removed
 * one on its way. */
static int hub_put(struct bpf_hub *h, pid_t pid, struct backend_bpf *b)
{
	uint32_t room, k = hub_slot(h, pid, &room);

	if (k == PROC_SLOTS)
		k = room;
	if (k == PROC_SLOTS)
		return -ENOSPC;
	h->slots[k].pid = pid;
	h->slots[k].b = b;
	return 0;
}

/* Removed: a tombstone, so that the probes past it still find theirs. */
static void hub_remove(struct bpf_hub *h, pid_t pid)
{
	uint32_t k = hub_slot(h, pid, NULL);

	if (k != PROC_SLOTS) {
		h->slots[k].pid = -1;
		h->slots[k].b = NULL;
	}
}

int pb_record_check(const void *rec, size_t len)
{
	struct pb_head hd;

	if (len < sizeof(hd))
		return -EBADMSG;
	memcpy(&hd, rec, sizeof(hd));
	if (hd.nframes > PB_MAX_FRAMES ||
	    len != sizeof(hd) + (size_t)hd.nframes * sizeof(struct pb_frame))
		return -EBADMSG;
	return 0;
}

static int take_record(void *ctx, void *data, size_t len)
{
	struct bpf_hub *h = ctx;
	struct backend_bpf *b;
	struct pb_head hd;
	struct queue *q;
	uint32_t n32 = (uint32_t)len;

	if (pb_record_check(data, len)) {
		h->bad++;
		return 0;
	}
	memcpy(&hd, data, sizeof(hd));
	b = hub_find(h, (pid_t)hd.tgid);
	if (!b || hd.gen != b->gen)
		return 0; /* a process no longer sampled, or sampled anew since */
	if (hd.flags & PB_INTERP_MOVED)
		b->head_moved = 1;
	q = &b->q;
	if (q->len + sizeof(n32) + len > q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 64 * 1024;
		uint8_t *nb;

		while (cap < q->len + sizeof(n32) + len)
			cap *= 2;
		if (cap > QUEUE_MAX || !(nb = realloc(q->buf, cap))) {
			b->dropped++;
			return 0;
		}
		q->buf = nb;
		q->cap = cap;
	}
	memcpy(q->buf + q->len, &n32, sizeof(n32));
	memcpy(q->buf + q->len + sizeof(n32), data, len);
	q->len += sizeof(n32) + len;
	return 0;
}

static int open_events(struct bpf_hub *h, double rate_hz, char *why, size_t whylen)
{
	struct perf_event_attr a;
	int cpu, opened = 0, err = 0;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.freq = 1;
	a.sample_freq = rate_hz < 1 ? 1 : (uint64_t)(rate_hz + 0.5);
	for (cpu = 0; cpu < h->ncpu; cpu++) {
		int fd = (int)syscall(SYS_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);

		h->pfd[cpu] = -1;
		if (fd < 0) {
			if (errno == ENODEV || errno == ENOENT)
				continue; /* an offline CPU */
			err = -errno;
			snprintf(why, whylen, "perf_event_open (cpu-clock, CPU %d): %s", cpu,
				 strerror(errno));
			return err;
		}
		h->pfd[cpu] = fd;
		h->links[cpu] = bpf_program__attach_perf_event(h->skel->progs.pb_sample, fd);
		if (!h->links[cpu]) {
			err = -errno;
			snprintf(why, whylen, "attaching the program to CPU %d's event: %s", cpu,
				 strerror(-err));
			return err ? err : -EINVAL;
		}
		opened++;
	}
	if (!opened) {
		snprintf(why, whylen, "no CPU took a cpu-clock event");
		return -ENODEV;
	}
	return 0;
}

int bpf_hub_open(struct bpf_hub **out, double rate_hz, char *why, size_t whylen)
{
	struct bpf_hub *h;
	int err, cpu;

	*out = NULL;
	snprintf(why, whylen, "?");
	if (!in_init_pidns()) {
		snprintf(why, whylen, "pyspyc runs in a PID namespace of its own (the "
			 "kernel's ids would not be its own)");
		return -ENOTSUP;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->stats_fd = -1;
	h->ncpu = libbpf_num_possible_cpus();
	if (h->ncpu <= 0) {
		free(h);
		snprintf(why, whylen, "cannot tell the number of CPUs");
		return -ENODEV;
	}
	h->pfd = calloc((size_t)h->ncpu, sizeof(*h->pfd));
	h->links = calloc((size_t)h->ncpu, sizeof(*h->links));
	if (!h->pfd || !h->links) {
		bpf_hub_close(h);
		return -ENOMEM;
	}
	for (cpu = 0; cpu < h->ncpu; cpu++)
		h->pfd[cpu] = -1;
	libbpf_set_print(keep_last);
	last_msg[0] = verifier_msg[0] = 0;
	h->skel = pyspyc_bpf__open();
	if (!h->skel) {
		err = -errno;
		snprintf(why, whylen, "opening the program: %s", strerror(-err));
		bpf_hub_close(h);
		return err ? err : -EINVAL;
	}
	/* A walk's room per CPU, by CPU number. */
	bpf_map__set_max_entries(h->skel->maps.scratch, (uint32_t)h->ncpu);
	err = pyspyc_bpf__load(h->skel);
	if (err) {
		/* The verifier refuses with EACCES too: its log tells. */
		if ((err == -EPERM || err == -EACCES) && !verifier_msg[0])
			snprintf(why, whylen, "loading the program: %s (it takes root, or "
				 "CAP_BPF and CAP_PERFMON)", strerror(-err));
		else if (verifier_msg[0])
			err = -ENOEXEC;
		if (err == -ENOEXEC || (err != -EPERM && err != -EACCES))
			snprintf(why, whylen, "the kernel refused the program: %s",
				 verifier_msg[0] ? verifier_msg
				 : last_msg[0] ? last_msg : strerror(-err));
		bpf_hub_close(h);
		return err;
	}
	if (!h->skel->bss) {
		snprintf(why, whylen, "the program's counters cannot be mapped");
		bpf_hub_close(h);
		return -ENOTSUP;
	}
	/* The exec and exit tracepoints (the perf event ones come below). */
	err = pyspyc_bpf__attach(h->skel);
	if (err) {
		snprintf(why, whylen, "attaching to the exec and exit tracepoints: %s",
			 strerror(-err));
		bpf_hub_close(h);
		return err;
	}
	h->procs_fd = bpf_map__fd(h->skel->maps.procs);
	h->threads_fd = bpf_map__fd(h->skel->maps.threads);
	h->layouts_fd = bpf_map__fd(h->skel->maps.layouts);
	h->rb = ring_buffer__new(bpf_map__fd(h->skel->maps.ring), take_record, h, NULL);
	if (!h->rb) {
		err = -errno;
		snprintf(why, whylen, "the ring buffer: %s", strerror(-err));
		bpf_hub_close(h);
		return err ? err : -EINVAL;
	}
	err = open_events(h, rate_hz, why, whylen);
	if (err) {
		if (err == -EACCES || err == -EPERM) {
			size_t n = strlen(why);

			snprintf(why + n, whylen - n, " (it takes root, or CAP_PERFMON)");
		}
		bpf_hub_close(h);
		return err;
	}
	/* The program's run time, for the summary and make bench; off again
	 * when the fd closes.  Not having it costs nothing but the figure. */
	h->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	*out = h;
	return 0;
}

void bpf_hub_close(struct bpf_hub *h)
{
	int cpu;

	if (!h)
		return;
	for (cpu = 0; h->links && cpu < h->ncpu; cpu++)
		bpf_link__destroy(h->links[cpu]);
	for (cpu = 0; h->pfd && cpu < h->ncpu; cpu++)
		if (h->pfd[cpu] >= 0)
			close(h->pfd[cpu]);
	ring_buffer__free(h->rb);
	pyspyc_bpf__destroy(h->skel);
	if (h->stats_fd >= 0)
		close(h->stats_fd);
	free(h->links);
	free(h->pfd);
	free(h);
}

/* The processes the program took out at their exec since the last look.
 * More than the ring holds: every process is asked of the map. */
static void take_execs(struct bpf_hub *h)
{
	uint64_t n = __atomic_load_n(&h->skel->bss->exec_count, __ATOMIC_ACQUIRE), i;
	uint32_t k;

	if (n == h->execs_seen)
		return;
	if (n - h->execs_seen > PB_EXEC_RING) {
		for (k = 0; k < PROC_SLOTS; k++) {
			struct pb_proc pp;
			uint32_t key = (uint32_t)h->slots[k].pid;

			if (h->slots[k].pid > 0 &&
			    bpf_map_lookup_elem(h->procs_fd, &key, &pp) && errno == ENOENT)
				h->slots[k].b->execd = 1;
		}
	} else {
		for (i = h->execs_seen; i < n; i++) {
			struct backend_bpf *b =
				hub_find(h, (pid_t)h->skel->bss->exec_ring[i % PB_EXEC_RING]);

			if (b)
				b->execd = 1;
		}
	}
	h->execs_seen = n;
}

uint64_t bpf_hub_drain(struct bpf_hub *h)
{
	int n = ring_buffer__consume(h->rb);

	take_execs(h);
	return n > 0 ? (uint64_t)n : 0;
}

int bpf_hub_ring_fd(const struct bpf_hub *h)
{
	return bpf_map__fd(h->skel->maps.ring);
}

void bpf_hub_counts(const struct bpf_hub *h, struct bpf_hub_counts *c)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	int cpu;

	memset(c, 0, sizeof(*c));
	for (cpu = 0; cpu < h->ncpu && cpu < PB_MAX_CPUS; cpu++) {
		const volatile __u64 *k = h->skel->bss->counts[cpu];

		c->ticks += k[PB_C_TICKS];
		c->hits += k[PB_C_HITS];
		c->lost += k[PB_C_LOST];
		c->unknown += k[PB_C_UNKNOWN];
		c->hit_ns += k[PB_C_HIT_NS];
		c->execs += k[PB_C_EXECS];
		c->found += k[PB_C_FOUND];
	}
	c->bad = h->bad;
	memset(&info, 0, sizeof(info));
	if (!bpf_obj_get_info_by_fd(bpf_program__fd(h->skel->progs.pb_sample), &info, &len)) {
		c->run_ns = info.run_time_ns;
		c->run_cnt = info.run_cnt;
	}
}

void bpf_hub_costs(const struct bpf_hub_counts *c, double *per_tick_ns, double *per_sample_ns)
{
	*per_tick_ns = *per_sample_ns = 0;
	if (!c->run_cnt || c->run_ns < c->hit_ns)
		return;
	*per_tick_ns = (double)(c->run_ns - c->hit_ns) / (double)c->run_cnt;
	if (c->hits)
		*per_sample_ns = *per_tick_ns + (double)c->hit_ns / (double)c->hits;
}

/* ---- one process ----------------------------------------------------- */

static struct backend_bpf *bpf_of(struct backend *b)
{
	return (struct backend_bpf *)b;
}

/* *end raised to cover a field of width bytes at off (none: off < 0),
 * rounded up to 8. */
static void reach(int32_t *end, int32_t off, int32_t width)
{
	int32_t e = (off + width + 7) & ~7;

	if (off >= 0 && e > *end)
		*end = e;
}

/* The program's view of layout L.  0, or -ENOTSUP when a frame or code
 * object's fields lie past what the program reads. */
static int pb_layout_of(const struct py_layout *L, struct pb_layout *p)
{
	int32_t fr = 0, cr = 0;

	memset(p, 0, sizeof(*p));
	p->owner_shim = -1;
	p->tstate_base_frame = -1;
	p->tstate_frame = p->tstate_cframe = p->cframe_current_frame = -1;
	p->tstate_current_frame = p->frame_owner = p->frame_gen = -1;
	if (L->frame_model == PY_FRAMES_OBJECTS) {
		p->model = PB_MODEL_OBJECTS;
		p->tstate_frame = L->tstate_frame;
		p->frame_back = L->frame_back;
		p->frame_code = L->frame_code;
		p->frame_instr = L->frame_lasti;
		p->frame_gen = L->frame_gen;
		reach(&fr, L->frame_back, 8);
		reach(&fr, L->frame_gen, 8);
		reach(&fr, L->frame_code, 8);
		reach(&fr, L->frame_lasti, 4);
	} else {
		p->model = PB_MODEL_INTERP;
		if (L->tstate_current_frame >= 0) {
			p->tstate_current_frame = L->tstate_current_frame;
		} else {
			p->tstate_cframe = L->tstate_cframe;
			p->cframe_current_frame = L->cframe_current_frame;
		}
		p->frame_back = L->iframe_previous;
		p->frame_code = L->iframe_code;
		p->frame_instr = L->iframe_instr;
		p->frame_owner = L->iframe_owner;
		p->owner_shim = L->iframe_owned_by_cstack;
		p->code_tags = (uint32_t)L->iframe_code_tags;
		if (L->tstate_base_frame > 0)
			p->tstate_base_frame = L->tstate_base_frame;
		reach(&fr, L->iframe_previous, 8);
		reach(&fr, L->iframe_code, 8);
		reach(&fr, L->iframe_instr, 8);
		reach(&fr, L->iframe_owner, 1);
	}
	p->tstate_next = L->tstate_next;
	p->tstate_thread_id = L->tstate_thread_id;
	p->code_type = L->code_ob_type;
	p->code_size = L->code_ob_size;
	p->code_filename = L->code_filename;
	p->code_name = L->code_name;
	p->code_qualname = L->code_qualname;
	p->code_linetable = L->code_linetable;
	p->code_firstlineno = L->code_firstlineno;
	reach(&cr, L->code_ob_type, 8);
	reach(&cr, L->code_ob_size, 8);
	reach(&cr, L->code_filename, 8);
	reach(&cr, L->code_name, 8);
	reach(&cr, L->code_qualname, 8);
	reach(&cr, L->code_linetable, 8);
	reach(&cr, L->code_firstlineno, 4);
	if (fr <= 0 || fr >= PB_FRAME_READ || cr <= 0 || cr >= PB_CODE_READ ||
	    p->frame_back < 0 || p->frame_code < 0 || p->frame_instr < 0)
		return -ENOTSUP;
	p->frame_read = (uint32_t)fr;
	p->code_read = (uint32_t)cr;
	return 0;
}

int bpf_layout_ok(const struct py_layout *L)
{
	struct pb_layout p;

	return !pb_layout_of(L, &p);
}

static int hub_layout(struct bpf_hub *h, const struct py_layout *L, uint32_t *idx)
{
	struct pb_layout p;
	uint32_t i;
	int err = pb_layout_of(L, &p);

	if (err)
		return err;
	for (i = 0; i < h->nlayouts; i++)
		if (!memcmp(&h->layouts[i], &p, sizeof(p))) {
			*idx = i;
			return 0;
		}
	if (h->nlayouts == PB_MAX_LAYOUTS)
		return -ENOSPC;
	if (bpf_map_update_elem(h->layouts_fd, &h->nlayouts, &p, BPF_ANY))
		return -errno;
	h->layouts[h->nlayouts] = p;
	*idx = h->nlayouts++;
	return 0;
}

static int bpf_open(struct backend **out, const struct py_target *t,
		    const struct backend_opts *o)
{
	struct walk_opts wo = { .max_depth = o->max_depth, .max_threads = o->max_threads,
				.unstitched = 1 };
	struct bpf_hub *h = o->hub;
	struct backend_bpf *b;
	struct pb_proc pp;
	uint32_t key = (uint32_t)t->pid;
	uint64_t head;
	int err;

	*out = NULL;
	if (!h)
		return -EINVAL;
	/* A process already here (it exec'd, and is sampled anew before its
	 * last sampler ends) is taken over: that one's records stop counting
	 * (the generation) and its end leaves the maps to this one. */
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->b.ops = &backend_bpf_ops;
	b->hub = h;
	b->pid = t->pid;
	b->gen = ++h->gen;
	b->thread_ids = o->thread_ids;
	pb_decode_opts_of(t->layout, o->max_depth, &b->dec);
	b->list_at = INT64_MIN;
	b->L = t->layout;
	b->rs.threads = &b->d.th;
	b->rs.frames = b->d.frames;
	b->rs.fps = b->d.fps;
	err = py_walker_new(&b->w, t, &wo);
	if (!err)
		err = hub_layout(h, t->layout, &pp.layout);
	if (!err)
		err = hub_put(h, t->pid, b);
	if (err) {
		py_walker_free(b->w);
		free(b);
		return err;
	}
	pp.gen = b->gen;
	pp.max_frames = o->max_depth < PB_MAX_FRAMES ? o->max_depth : PB_MAX_FRAMES;
	pp.pad = 0;
	pp.start = 0; /* the program notes it */
	pp.interp_head = t->runtime && t->layout->runtime_interp_head >= 0
			 ? t->runtime + (uint64_t)t->layout->runtime_interp_head : 0;
	pp.head_at = 0;
	if (!pp.interp_head || rmem_read_ptr(py_walker_mem(b->w), pp.interp_head, &head))
		head = 0; /* a walk of the list at its first look */
	pp.head_seen = head;
	pp.threads_head = t->interp && t->layout->interp_threads_head >= 0 &&
			  t->layout->tstate_thread_id >= 0
			  ? t->interp + (uint64_t)t->layout->interp_threads_head : 0;
	b->kernel_finds = pp.threads_head != 0;
	if (bpf_map_update_elem(h->procs_fd, &key, &pp, BPF_ANY)) {
		err = -errno;
		hub_remove(h, t->pid);
		py_walker_free(b->w);
		free(b);
		return err;
	}
	*out = &b->b;
	return 0;
}

static int cmp_known(const void *a, const void *b)
{
	uint32_t x = ((const struct known *)a)->tid, y = ((const struct known *)b)->tid;

	return x < y ? -1 : x > y;
}

static uint64_t thread_id_of(const struct backend_bpf *b, uint32_t tid)
{
	struct known k = { .tid = tid }, *f;

	f = b->tids ? bsearch(&k, b->tids, b->ntids, sizeof(k), cmp_known) : NULL;
	return f ? f->thread_id : 0;
}

/* The pthread id of the thread of record b->d, which the program found in
 * the thread list before user space's last walk of it (a thread started
 * since): read from its thread state once, and the list walked again soon,
 * so that its samples carry its name (the thread table's key) from the
 * first.  0 when it cannot be read. */
static uint64_t found_thread_id(struct backend_bpf *b)
{
	uint32_t k = b->d.tid % FOUND_SLOTS;
	uint64_t id;

	if (b->found[k].tid == b->d.tid && b->found[k].tstate == b->d.th.tstate)
		return b->found[k].thread_id;
	if (b->list_at > b->listed_at + LIST_SOON_NS)
		b->list_at = b->listed_at + LIST_SOON_NS;
	if (b->L->tstate_thread_id < 0 || !b->d.th.tstate || b->d.th.tstate == b->d.tid ||
	    rmem_read_ptr(py_walker_mem(b->w), b->d.th.tstate + (uint64_t)b->L->tstate_thread_id,
			  &id))
		return 0;
	b->found[k].tid = b->d.tid;
	b->found[k].tstate = b->d.th.tstate;
	b->found[k].thread_id = id;
	return id;
}

void pb_decode_opts_of(const struct py_layout *L, uint32_t max_depth, struct pb_decode_opts *o)
{
	o->objects = L->frame_model == PY_FRAMES_OBJECTS;
	o->shim = o->objects ? -1 : L->iframe_owned_by_cstack;
	o->gen_owner = o->objects ? -1 : L->iframe_owned_by_generator;
	o->max_depth = max_depth;
}

int pb_record_decode(const void *rec, size_t len, const struct pb_decode_opts *o,
		     struct pb_decoded *d)
{
	const uint8_t *r = rec;
	struct pb_head hd;
	uint32_t i, n, keep;

	if (pb_record_check(rec, len))
		return -EBADMSG;
	memcpy(&hd, r, sizeof(hd));
	memset(&d->th, 0, sizeof(d->th));
	d->tid = hd.tid;
	d->at_ns = (int64_t)hd.time_ns;
	d->unknown = !!(hd.flags & PB_UNKNOWN_THREAD);
	d->th.tstate = hd.tstate ? hd.tstate : hd.tid;
	d->th.native_tid = (int32_t)hd.tid;
	if (d->unknown || hd.flags & (PB_READ_FAILED | PB_BAD_LAYOUT))
		d->th.flags |= RAW_TORN;
	if (hd.flags & PB_TRUNCATED)
		d->th.flags |= RAW_TRUNCATED;
	/* A whole chain ends at the thread's bottom: from 3.12 a shim frame,
	 * in 3.11 a function's frame, before 3.11 a frame that is not a
	 * generator's.  One that ends at a generator's frame was read as the
	 * generator was being resumed or suspended, its link to its caller
	 * not set yet or cleared already: the callers are missing.  (The
	 * remote-memory walker's rule: py_walk.c, walk_frames.) */
	if (hd.nframes && !(d->th.flags & (RAW_TORN | RAW_TRUNCATED))) {
		struct pb_frame last;

		memcpy(&last, r + sizeof(hd) + (size_t)(hd.nframes - 1) * sizeof(last),
		       sizeof(last));
		if (o->objects ? last.owner != 0
		    : o->shim >= 0 ? last.owner != (uint32_t)o->shim
		    : last.owner == (uint32_t)o->gen_owner)
			d->th.flags |= RAW_TORN;
	}
	if (d->th.flags & RAW_TORN)
		return 0;
	/* Shim frames left out; past max_depth (innermost first), the rest
	 * is truncated as the walker truncates. */
	keep = o->max_depth < PB_MAX_FRAMES ? o->max_depth : PB_MAX_FRAMES;
	for (i = 0, n = 0; i < hd.nframes; i++) {
		struct pb_frame pf;

		memcpy(&pf, r + sizeof(hd) + (size_t)i * sizeof(pf), sizeof(pf));
		if (o->shim >= 0 && pf.owner == (uint32_t)o->shim)
			continue; /* C calling into the interpreter */
		if (n == keep) {
			d->th.flags |= RAW_TRUNCATED;
			break;
		}
		d->frames[n] = (struct raw_frame){ .code = pf.code, .instr = pf.instr,
						   .owner = o->objects ? 0 : pf.owner };
		d->fps[n++] = pf.fp;
	}
	d->th.depth = n;
	return 0;
}

/* The next record of the queue as a one-thread raw sample. */
static int bpf_sample(struct backend *bk, struct backend_reads *x, struct raw_sample **out)
{
	struct backend_bpf *b = bpf_of(bk);
	struct queue *q = &b->q;
	uint32_t len;

	if (x)
		x->done = 0;
	for (;;) {
		const uint8_t *rec;

		if (q->off >= q->len) {
			q->off = q->len = 0;
			return -EAGAIN;
		}
		memcpy(&len, q->buf + q->off, sizeof(len));
		rec = q->buf + q->off + sizeof(len);
		q->off += sizeof(len) + len;
		if (pb_record_decode(rec, len, &b->dec, &b->d))
			continue; /* checked as it came: not here */
		if (b->d.unknown) {
			b->unknown++;
			/* A thread started since the last walk: walk the list
			 * again at the next turn, LIST_SOON_NS after the last
			 * at the soonest, unless the program looks for new
			 * threads itself (the main interpreter's, up to
			 * PB_SCAN_THREADS of them): one it did not find there
			 * has not set its pthread id yet (a thread starting,
			 * interrupted before it ran Python), and a server that
			 * starts a thread a request would have its list walked
			 * every LIST_SOON_NS for nothing. */
			if ((!b->kernel_finds || b->multi || b->ntids >= PB_SCAN_THREADS) &&
			    b->list_at > b->listed_at + LIST_SOON_NS)
				b->list_at = b->listed_at + LIST_SOON_NS;
			continue;
		}
		b->d.th.thread_id = thread_id_of(b, b->d.tid);
		/* Only -t needs it (a thread's frame): a server that starts a
		 * thread a request is not read for each otherwise. */
		if (!b->d.th.thread_id && b->thread_ids)
			b->d.th.thread_id = found_thread_id(b);
		b->rs.nthreads = 1;
		b->rs.nframes = b->d.th.depth;
		b->rs.at_ns = b->d.at_ns;
		*out = &b->rs;
		return 0;
	}
}

static int bpf_gil_held(struct backend *b)
{
	(void)b;
	return -ENOTSUP;
}

static struct rmem *bpf_mem(struct backend *b)
{
	return py_walker_mem(bpf_of(b)->w);
}

static void bpf_stats(const struct backend *bk, struct backend_stats *st)
{
	const struct backend_bpf *b = (const struct backend_bpf *)bk;

	memset(st, 0, sizeof(*st));
	st->interps_capped = b->ws.interps_capped;
	st->bpf_unknown = b->unknown;
	st->bpf_dropped = b->dropped;
}

static int bpf_execd(struct backend *b)
{
	return bpf_of(b)->execd;
}

static int bpf_list_due(struct backend *bk, int64_t now)
{
	struct backend_bpf *b = bpf_of(bk);

	return now >= b->list_at || b->head_moved;
}

static int bpf_list(struct backend *bk, struct raw_sample **out)
{
	struct backend_bpf *b = bpf_of(bk);
	int done = 0;

	b->head_moved = 0;
	return py_walker_sample(b->w, NULL, NULL, 0, &done, out, &b->ws);
}

/* By tid, then by place in the walk. */
static int cmp_tid_pos(const void *a, const void *b)
{
	const struct known *x = a, *y = b;

	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The threads map made to hold exactly rs's threads with an OS id: each
 * added or changed, those gone deleted, by a merge with the set written
 * last (a syscall only where the map changes).  The list is walked
 * unstitched: a thread in a sub-interpreter has a thread state in each
 * interpreter it entered, listed one after another, newest interpreter
 * first, which the program walks in that order as one stack (up to
 * PB_MAX_PARTS of them: deeper nesting loses the oldest ones' frames). */
static void bpf_set_tids(struct backend *bk, const struct raw_sample *rs, const int32_t *tids,
			 int64_t now)
{
	struct backend_bpf *b = bpf_of(bk);
	struct bpf_hub *h = b->hub;
	struct known *keep;
	uint32_t n = 0, nkeep = 0, i, j, k;

	b->listed_at = now;
	b->list_at = now + LIST_EVERY_NS;
	keep = malloc(((size_t)rs->nthreads + 1) * sizeof(*keep));
	if (!keep)
		return; /* the map stays as it was; walked again in a second */
	for (i = 0; i < rs->nthreads; i++)
		if (tids[i] > 0 && rs->threads[i].tstate)
			keep[n++] = (struct known){ .tid = (uint32_t)tids[i], .pos = i,
						    .thread_id = rs->threads[i].thread_id,
						    .parts.tstate[0] = rs->threads[i].tstate };
	qsort(keep, n, sizeof(*keep), cmp_tid_pos);
	b->multi = 0;
	for (i = 0; i < n; i = j) {
		struct known *t = &keep[nkeep++];

		*t = keep[i];
		for (j = i + 1, k = 1; j < n && keep[j].tid == keep[i].tid; j++)
			if (k < PB_MAX_PARTS)
				t->parts.tstate[k++] = keep[j].parts.tstate[0];
		b->multi |= k > 1;
	}
	b->list_at = now + (b->multi ? LIST_MULTI_NS : LIST_EVERY_NS);
	for (i = 0, j = 0; i < nkeep; i++) {
		while (j < b->ntids && b->tids[j].tid < keep[i].tid)
			bpf_map_delete_elem(h->threads_fd, &b->tids[j++].tid);
		if (j < b->ntids && b->tids[j].tid == keep[i].tid &&
		    !memcmp(&b->tids[j++].parts, &keep[i].parts, sizeof(keep[i].parts)))
			continue;
		bpf_map_update_elem(h->threads_fd, &keep[i].tid, &keep[i].parts, BPF_ANY);
	}
	while (j < b->ntids)
		bpf_map_delete_elem(h->threads_fd, &b->tids[j++].tid);
	free(b->tids);
	b->tids = keep;
	b->ntids = nkeep;
}

static void bpf_close(struct backend *bk)
{
	struct backend_bpf *b;
	uint32_t key, i;

	if (!bk)
		return;
	b = bpf_of(bk);
	key = (uint32_t)b->pid;
	if (hub_find(b->hub, b->pid) == b) { /* not taken over */
		bpf_map_delete_elem(b->hub->procs_fd, &key);
		for (i = 0; i < b->ntids; i++)
			bpf_map_delete_elem(b->hub->threads_fd, &b->tids[i].tid);
		hub_remove(b->hub, b->pid);
	}
	py_walker_free(b->w);
	free(b->tids);
	free(b->q.buf);
	free(b);
}

const struct backend_ops backend_bpf_ops = {
	.name = "bpf",
	.open = bpf_open,
	.sample = bpf_sample,
	.gil_held = bpf_gil_held,
	.mem = bpf_mem,
	.stats = bpf_stats,
	.close = bpf_close,
	.push = 1,
	.list_due = bpf_list_due,
	.execd = bpf_execd,
	.list = bpf_list,
	.set_tids = bpf_set_tids,
};
