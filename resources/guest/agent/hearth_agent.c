// SPDX-License-Identifier: GPL-2.0
/*
 * Hearth in-kernel test agent.
 *
 * On hosts where guest user space cannot run (nested kvm_pvm: the guest's
 * first system call kills init), the Hearth integration tests check the
 * Linux guest from inside the kernel. This built-in agent:
 *
 *  - registers a power-off handler that writes 0 to Hearth's power port
 *    (0x3f4) and a panic notifier that writes 1 to it, so a guest power-off
 *    ends the VMM with status 0 and a guest panic with a failure status;
 *  - at late_initcall_sync (all built-in drivers are up, init is next)
 *    prints "hearth-agent: ready" and writes 123 to the boot-timer port
 *    (0x3f0, Firecracker-compatible);
 *  - runs the checks named in hearth_agent.checks=<check>[,<check>...]
 *    (a check is <name> or <name>:<argument>), each printing one
 *    "hearth-agent: <name> key=value ..." line: cpus, mem, blk:<disk>,
 *    blkro:<disk>, rootfs[:<disk>], cost, mtu:<dev>:<mtu>, netwait:<ms>,
 *    net:<ip>:<port>[:<bytes>[:<s>]], vsock_echo:<port>,
 *    vsock_connect:<port>:<tx_bytes>:<rx_bytes>, vsock_hold:<port>[:<s>];
 *  - then performs hearth_agent.action=none|poweroff|reboot|panic.
 *
 * All output uses KERN_EMERG so it reaches the console even with `quiet`
 * or a low loglevel: the test harness parses these lines.
 *
 * The line formats are a contract with tests/linux/ (see
 * resources/README.md); change them only together.
 */

#define pr_fmt(fmt) "hearth-agent: " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/in.h>
#include <linux/inet.h>
#include <linux/init.h>
#include <linux/init_syscalls.h>
#include <linux/irqflags.h>
#include <linux/io.h>
#include <linux/kdev_t.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/mount.h>
#include <uapi/linux/mount.h>
#include <linux/net.h>
#include <linux/notifier.h>
#include <linux/panic_notifier.h>
#include <linux/reboot.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/stat.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <linux/kthread.h>
#include <linux/atomic.h>
#include <linux/vm_sockets.h>
#include <net/net_namespace.h>
#include <net/checksum.h>
#include <net/sock.h>
#include <linux/tcp.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <net/dst.h>

#include <asm/e820/api.h>

/* Firecracker-compatible boot timer: the VMM logs the time of this write. */
#define HEARTH_BOOT_TIMER_PORT 0x3f0
#define HEARTH_BOOT_TIMER_MAGIC 123

/* Hearth's power port: 0 = power off, 1 = the guest panicked. */
#define HEARTH_POWER_PORT 0x3f4
#define HEARTH_POWER_OFF 0
#define HEARTH_POWER_PANIC 1

static char *checks = "";
module_param(checks, charp, 0444);
MODULE_PARM_DESC(checks,
		 "Comma-separated checks: cpus,mem,blk:<disk>,blkro:<disk>,rootfs[:<disk>],cost,mtu:<dev>:<mtu>,netwait:<ms>,net:<ip>:<port>[:<bytes>[:<s>]],vsock_echo:<port>,vsock_connect:<port>:<tx>:<rx>,vsock_hold:<port>[:<s>]");

static char *action = "none";
module_param(action, charp, 0444);
MODULE_PARM_DESC(action, "After the checks: none|poweroff|reboot|panic");

/* ---- Checks --------------------------------------------------------------
 * A check is named in hearth_agent.checks= as <name> or <name>:<argument>.
 * Each check prints exactly one line of facts and returns 0, or a negative
 * errno if it could not gather them (the caller then prints an error line).
 * To add a check, write a function and add a row to hearth_checks[].
 */

static int __init check_cpus(const char *arg)
{
	pr_emerg("cpus online=%u possible=%u\n", num_online_cpus(),
		 num_possible_cpus());
	return 0;
}

static int __init check_mem(const char *arg)
{
	u64 ram_bytes = 0;
	u32 i;

	/* The map exactly as the firmware / VMM handed it over. */
	for (i = 0; i < e820_table_firmware->nr_entries; i++) {
		const struct e820_entry *entry = &e820_table_firmware->entries[i];

		if (entry->type == E820_TYPE_RAM)
			ram_bytes += entry->size;
	}
	pr_emerg("mem e820_ram_kib=%llu totalram_kib=%lu\n", ram_bytes >> 10,
		 totalram_pages() << (PAGE_SHIFT - 10));
	return 0;
}

/* ---- Data patterns ---------------------------------------------------------
 * The blk and net checks move a known stream: the little-endian 64-bit word
 * at byte offset `off` (a multiple of 8) is off * PATTERN_MUL + seed (mod
 * 2^64; PATTERN_MUL is odd, so every offset has its own value and a word in
 * the wrong place shows), and a stream's "sum" is the wrapping 64-bit sum of
 * its words (printed %016llx). The host tests compute the same.
 *
 * On kvm_pvm hosts guest kernel code is interpreted at roughly 1-2 us per
 * instruction (see the `cost` check), so these loops are unrolled and take
 * about 2 instructions per word to fill and 4 to verify; sums of correct
 * data come from a closed form.
 */
#define PATTERN_MUL 0x9e3779b97f4a7c15ULL
#define PATTERN_STEP (8 * PATTERN_MUL) /* from one word to the next */
#define SEED_BLK 0x686561727468626cULL	  /* "hearthbl" */
#define SEED_NET_TX 0x6865617274687478ULL /* guest -> host */
#define SEED_NET_RX 0x6865617274687278ULL /* host -> guest */

/* The sum of the `len` bytes (a multiple of 8) of stream `seed` at `off`. */
static u64 __init pattern_sum(size_t len, u64 off, u64 seed)
{
	u64 n = len / 8;

	/* n * first + step * n * (n - 1) / 2, all mod 2^64. */
	return n * (off * PATTERN_MUL + seed) +
	       PATTERN_STEP * (n & 1 ? n * ((n - 1) / 2) : (n / 2) * (n - 1));
}

/* Writes `len` bytes (a multiple of 8) of stream `seed` from offset `off`;
 * returns their sum.
 */
static u64 __init pattern_fill(void *buf, size_t len, u64 off, u64 seed)
{
	u64 *word = buf, *end = word + len / 8;
	u64 v = off * PATTERN_MUL + seed;

	while (end - word >= 8) {
		word[0] = v;
		v += PATTERN_STEP;
		word[1] = v;
		v += PATTERN_STEP;
		word[2] = v;
		v += PATTERN_STEP;
		word[3] = v;
		v += PATTERN_STEP;
		word[4] = v;
		v += PATTERN_STEP;
		word[5] = v;
		v += PATTERN_STEP;
		word[6] = v;
		v += PATTERN_STEP;
		word[7] = v;
		v += PATTERN_STEP;
		word += 8;
	}
	while (word < end) {
		*word++ = v;
		v += PATTERN_STEP;
	}
	return pattern_sum(len, off, seed);
}

/* True when the `len` bytes (a multiple of 8) at `buf` are the stream. */
static bool __init pattern_matches(const void *buf, size_t len, u64 off,
				   u64 seed)
{
	const u64 *word = buf, *end = word + len / 8;
	u64 e = off * PATTERN_MUL + seed, diff = 0;

	while (end - word >= 8) {
		diff |= word[0] ^ e;
		e += PATTERN_STEP;
		diff |= word[1] ^ e;
		e += PATTERN_STEP;
		diff |= word[2] ^ e;
		e += PATTERN_STEP;
		diff |= word[3] ^ e;
		e += PATTERN_STEP;
		diff |= word[4] ^ e;
		e += PATTERN_STEP;
		diff |= word[5] ^ e;
		e += PATTERN_STEP;
		diff |= word[6] ^ e;
		e += PATTERN_STEP;
		diff |= word[7] ^ e;
		e += PATTERN_STEP;
		word += 8;
	}
	while (word < end) {
		diff |= *word++ ^ e;
		e += PATTERN_STEP;
	}
	return !diff;
}

/* Slow path for data that does not match: counts the differing words and
 * adds the words to *sum.
 */
static size_t __init pattern_mismatches(const void *buf, size_t len, u64 off,
					u64 seed, u64 *sum)
{
	const u64 *word = buf, *end = word + len / 8;
	u64 e = off * PATTERN_MUL + seed, s = *sum, v;
	size_t bad = 0;

	while (word < end) {
		v = *word++;
		s += v;
		bad += v != e;
		e += PATTERN_STEP;
	}
	*sum = s;
	return bad;
}

/* Verifies `len` bytes of the stream at `off`: returns the number of wrong
 * words and adds the words to *sum.
 */
static size_t __init pattern_check(const void *buf, size_t len, u64 off,
				   u64 seed, u64 *sum)
{
	if (pattern_matches(buf, len, off, seed)) {
		*sum += pattern_sum(len, off, seed);
		return 0;
	}
	return pattern_mismatches(buf, len, off, seed, sum);
}

static u64 __init word_sum(const void *buf, size_t len)
{
	const u64 *word = buf, *end = word + len / 8;
	u64 sum = 0;

	while (word < end)
		sum += *word++;
	return sum;
}

/* "<units>.<2 digits>": `scale` is 800000 for Mbit/s, 100000 for MB/s. */
static void __init format_rate(char *out, size_t size, u64 bytes, u64 ns, u64 scale)
{
	u64 centi = ns ? div64_u64(bytes * scale, ns) : 0;

	snprintf(out, size, "%llu.%02llu", centi / 100, centi % 100);
}

/* ---- Cost of guest kernel code ---------------------------------------------
 * cost: times basic loops over 1 MiB (64 KiB for the byte-wise memcmp), to
 * show what guest kernel code costs on this host (on kvm_pvm hosts it is
 * interpreted): the agent's pattern loops, and what the kernel's own copies
 * and checksums cost.
 */
static noinline bool __init repe_cmpsq_equal(const void *a, const void *b,
					       size_t words)
{
	bool equal;

	asm volatile("repe cmpsq"
		     : "=@cce"(equal), "+S"(a), "+D"(b), "+c"(words)
		     : : "memory");
	return equal || !words;
}

static int __init check_cost(const char *arg)
{
	const int order = get_order(SZ_1M);
	struct page *a_pages, *b_pages;
	u64 t0, fill, check, sum, copy, set, cmp, cmpsq, csum;
	volatile u64 sink;
	void *a, *b;

	a_pages = alloc_pages(GFP_KERNEL, order);
	b_pages = alloc_pages(GFP_KERNEL, order);
	if (!a_pages || !b_pages) {
		if (a_pages)
			__free_pages(a_pages, order);
		if (b_pages)
			__free_pages(b_pages, order);
		return -ENOMEM;
	}
	a = page_address(a_pages);
	b = page_address(b_pages);

	t0 = ktime_get_ns();
	sink = pattern_fill(a, SZ_1M, 0, SEED_BLK);
	fill = ktime_get_ns() - t0;
	t0 = ktime_get_ns();
	sink = pattern_matches(a, SZ_1M, 0, SEED_BLK);
	check = ktime_get_ns() - t0;
	t0 = ktime_get_ns();
	sink = word_sum(a, SZ_1M);
	sum = ktime_get_ns() - t0;
	t0 = ktime_get_ns();
	memcpy(b, a, SZ_1M);
	copy = ktime_get_ns() - t0;
	t0 = ktime_get_ns();
	sink = memcmp(a, b, SZ_64K);
	cmp = ktime_get_ns() - t0;
	t0 = ktime_get_ns();
	sink = repe_cmpsq_equal(a, b, SZ_1M / 8);
	cmpsq = ktime_get_ns() - t0;
	t0 = ktime_get_ns();
	sink = (__force u32)csum_partial(a, SZ_1M, 0);
	csum = ktime_get_ns() - t0;
	t0 = ktime_get_ns();
	memset(b, 0, SZ_1M);
	set = ktime_get_ns() - t0;
	(void)sink;

	pr_emerg("cost fill_us=%llu check_us=%llu sum_us=%llu memcpy_us=%llu memset_us=%llu memcmp64k_us=%llu repe_cmpsq_us=%llu csum_us=%llu\n",
		 div_u64(fill, 1000), div_u64(check, 1000), div_u64(sum, 1000),
		 div_u64(copy, 1000),
		 div_u64(set, 1000), div_u64(cmp, 1000), div_u64(cmpsq, 1000),
		 div_u64(csum, 1000));
	__free_pages(a_pages, order);
	__free_pages(b_pages, order);
	return 0;
}

/* ---- Block devices ------------------------------------------------------- */

/* The dev_t of the disk `name` (e.g. "vdb"); no /dev is needed. */
static int __init find_disk(const char *name, dev_t *devt)
{
	struct device *dev;

	if (!name || !*name)
		return -EINVAL;
	dev = class_find_device_by_name(&block_class, name);
	if (!dev)
		return -ENODEV;
	*devt = dev->devt;
	put_device(dev);
	return 0;
}

/* One synchronous bio over `len` bytes (<= 1 MiB) of `pages` at sector 0. */
static int __init disk_io(struct block_device *bdev, blk_opf_t opf,
		   struct page *pages, size_t len)
{
	unsigned int i, nr = len >> PAGE_SHIFT;
	struct bio *bio;
	int err;

	bio = bio_alloc(bdev, nr, opf, GFP_KERNEL);
	if (!bio)
		return -ENOMEM;
	bio->bi_iter.bi_sector = 0;
	for (i = 0; i < nr; i++) {
		if (bio_add_page(bio, pages + i, PAGE_SIZE, 0) != PAGE_SIZE) {
			bio_put(bio);
			return -EIO;
		}
	}
	err = submit_bio_wait(bio);
	bio_put(bio);
	return err;
}

#define BLK_BYTES SZ_1M

/*
 * blk:<disk>: writes 1 MiB of the SEED_BLK stream at offset 0, flushes,
 * reads it back (bios straight to the device: no page cache) and compares.
 * Times: write_us covers the write and the flush, read_us the read.
 */
static int __init check_blk(const char *disk)
{
	struct page *wpages = NULL, *rpages = NULL;
	const int order = get_order(BLK_BYTES);
	struct block_device *bdev;
	u64 t0, t1, t2, fill_ns, rsum = 0;
	char wrate[24], rrate[24], wstate[24], rstate[24];
	size_t bad = 0;
	int err, werr, rerr;
	dev_t devt;

	err = find_disk(disk, &devt);
	if (err)
		return err;
	bdev = blkdev_get_by_dev(devt, FMODE_READ | FMODE_WRITE, NULL);
	if (IS_ERR(bdev))
		return PTR_ERR(bdev);
	err = -ENOSPC;
	if (bdev_nr_bytes(bdev) < BLK_BYTES)
		goto out;
	err = -ENOMEM;
	wpages = alloc_pages(GFP_KERNEL, order);
	rpages = alloc_pages(GFP_KERNEL, order);
	if (!wpages || !rpages)
		goto out;
	t0 = ktime_get_ns();
	pattern_fill(page_address(wpages), BLK_BYTES, 0, SEED_BLK);
	fill_ns = ktime_get_ns() - t0;

	t0 = ktime_get_ns();
	werr = disk_io(bdev, REQ_OP_WRITE | REQ_SYNC, wpages, BLK_BYTES);
	if (!werr)
		werr = blkdev_issue_flush(bdev);
	t1 = ktime_get_ns();
	rerr = disk_io(bdev, REQ_OP_READ, rpages, BLK_BYTES);
	t2 = ktime_get_ns();
	if (!rerr)
		bad = pattern_check(page_address(rpages), BLK_BYTES, 0,
				    SEED_BLK, &rsum);

	if (werr)
		snprintf(wstate, sizeof(wstate), "error:%d", werr);
	else
		strscpy(wstate, "ok", sizeof(wstate));
	if (rerr)
		snprintf(rstate, sizeof(rstate), "error:%d", rerr);
	else if (bad)
		snprintf(rstate, sizeof(rstate), "mismatch:%zu", bad);
	else
		strscpy(rstate, "ok", sizeof(rstate));
	format_rate(wrate, sizeof(wrate), BLK_BYTES, t1 - t0, 100000);
	format_rate(rrate, sizeof(rrate), BLK_BYTES, t2 - t1, 100000);
	pr_emerg("blk %s write=%s read=%s bytes=%u sum=%016llx write_us=%llu read_us=%llu write_mbs=%s read_mbs=%s fill_us=%llu\n",
		 disk, wstate, rstate, BLK_BYTES, rsum,
		 div_u64(t1 - t0, 1000), div_u64(t2 - t1, 1000), wrate, rrate,
		 div_u64(fill_ns, 1000));
	err = 0;
out:
	if (wpages)
		__free_pages(wpages, order);
	if (rpages)
		__free_pages(rpages, order);
	blkdev_put(bdev, FMODE_READ | FMODE_WRITE);
	return err;
}

/*
 * blkro:<disk>, for a disk the VMM offers read-only (VIRTIO_BLK_F_RO, so
 * the kernel marks it read-only: disk_ro=1): a write bio sent anyway (the
 * block layer only warns; blkdev_get_by_dev() does not refuse FMODE_WRITE
 * either, only path-based opens do) must be refused by the device. The
 * first 4 KiB must read fine before and after, unchanged.
 */
static int __init check_blkro(const char *disk)
{
	struct page *rpage = NULL, *wpage = NULL;
	struct block_device *bdev;
	u64 sum = 0, sum_after = 0;
	int err, rerr, werr, rerr_after;
	dev_t devt;

	err = find_disk(disk, &devt);
	if (err)
		return err;
	bdev = blkdev_get_by_dev(devt, FMODE_READ, NULL);
	if (IS_ERR(bdev))
		return PTR_ERR(bdev);
	err = -ENOMEM;
	rpage = alloc_page(GFP_KERNEL);
	wpage = alloc_page(GFP_KERNEL);
	if (!rpage || !wpage)
		goto out;
	pattern_fill(page_address(wpage), PAGE_SIZE, 0, SEED_BLK);

	rerr = disk_io(bdev, REQ_OP_READ, rpage, PAGE_SIZE);
	if (!rerr)
		sum = word_sum(page_address(rpage), PAGE_SIZE);
	werr = disk_io(bdev, REQ_OP_WRITE | REQ_SYNC, wpage, PAGE_SIZE);
	rerr_after = disk_io(bdev, REQ_OP_READ, rpage, PAGE_SIZE);
	if (!rerr_after)
		sum_after = word_sum(page_address(rpage), PAGE_SIZE);

	pr_emerg("blkro %s write=%s err=%d disk_ro=%d read=%s sum=%016llx reread=%s\n",
		 disk, werr ? "refused" : "accepted", werr,
		 bdev_read_only(bdev) ? 1 : 0, rerr ? "error" : "ok", sum,
		 rerr_after ? "error" : (sum_after == sum ? "same" : "changed"));
	err = 0;
out:
	if (rpage)
		__free_page(rpage);
	if (wpage)
		__free_page(wpage);
	blkdev_put(bdev, FMODE_READ);
	return err;
}

/*
 * rootfs[:<disk>] (default vda): mounts the disk read-only as ext4 on a
 * private mount point in the initial rootfs (devtmpfs is not mounted yet:
 * the agent makes its own device node), checks that /sbin/init is an
 * executable regular file, and unmounts again.
 */
#define AGENT_DIR "/.hearth-agent"
#define AGENT_MNT AGENT_DIR "/mnt"

static int __init check_rootfs(const char *arg)
{
	const char *disk = arg && *arg ? arg : "vda";
	char node[64], init_state[24];
	struct kstat st;
	u64 t0, t1;
	dev_t devt;
	int err;

	err = find_disk(disk, &devt);
	if (err)
		return err;
	snprintf(node, sizeof(node), AGENT_DIR "/%s", disk);
	err = init_mkdir(AGENT_DIR, 0700);
	if (err && err != -EEXIST)
		return err;
	init_mkdir(AGENT_MNT, 0700);
	err = init_mknod(node, S_IFBLK | 0600, new_encode_dev(devt));
	if (err && err != -EEXIST)
		goto out;
	t0 = ktime_get_ns();
	err = init_mount(node, AGENT_MNT, "ext4", MS_RDONLY, NULL);
	t1 = ktime_get_ns();
	if (err) {
		pr_emerg("rootfs %s ext4=error:%d\n", disk, err);
		err = 0;
		goto out;
	}
	err = init_stat(AGENT_MNT "/sbin/init", &st, 0);
	if (err)
		snprintf(init_state, sizeof(init_state), "missing:%d", err);
	else if (!S_ISREG(st.mode) || !(st.mode & 0111))
		snprintf(init_state, sizeof(init_state), "notexec:0%o",
			 st.mode);
	else
		strscpy(init_state, "present", sizeof(init_state));
	err = init_umount(AGENT_MNT, 0);
	pr_emerg("rootfs %s ext4 init=%s mount_us=%llu umount=%d\n", disk,
		 init_state, div_u64(t1 - t0, 1000), err);
	err = 0;
out:
	init_unlink(node);
	init_rmdir(AGENT_MNT);
	init_rmdir(AGENT_DIR);
	return err;
}

/* ---- Network ------------------------------------------------------------- */

/* netwait:<ms>: keeps the guest (whose address came from `ip=`) alive. */
static int __init check_netwait(const char *arg)
{
	unsigned int ms;
	int err = kstrtouint(arg ? arg : "", 10, &ms);

	if (err)
		return err;
	msleep(ms);
	pr_emerg("netwait ms=%u\n", ms);
	return 0;
}

/* mtu:<dev>:<mtu>: sets a network device's MTU (the host side of the link
 * needs the same), e.g. jumbo frames, so that fewer packets go through the
 * interpreted network stack.
 */
static int __init check_mtu(const char *arg)
{
	char name[IFNAMSIZ] = "";
	const char *colon = strchr(arg, ':');
	struct net_device *dev;
	unsigned int mtu;
	int err;

	if (!colon || colon - arg >= IFNAMSIZ || kstrtouint(colon + 1, 10, &mtu))
		return -EINVAL;
	memcpy(name, arg, colon - arg);
	dev = dev_get_by_name(&init_net, name);
	if (!dev)
		return -ENODEV;
	rtnl_lock();
	err = dev_set_mtu(dev, mtu);
	rtnl_unlock();
	pr_emerg("mtu %s mtu=%u err=%d\n", name, dev->mtu, err);
	dev_put(dev);
	return 0;
}

#define NET_CHUNK (64 * 1024)
#define NET_DEFAULT_BYTES (8 * 1024 * 1024)
#define NET_DEFAULT_WAIT_S 120
#define NET_IO_TIMEOUT_S 120
#define NET_SOCK_BUF SZ_1M

/* Connects, retrying (the host may not listen yet) for up to wait_s. */
static int __init net_connect(struct sockaddr_in *sin, unsigned int wait_s,
		       struct socket **out, unsigned int *tries)
{
	u64 deadline = ktime_get_ns() + (u64)wait_s * NSEC_PER_SEC;
	struct socket *sock;
	int err;

	for (;;) {
		(*tries)++;
		err = sock_create_kern(&init_net, AF_INET, SOCK_STREAM,
				       IPPROTO_TCP, &sock);
		if (err)
			return err;
		/* Bounds one attempt when SYNs go unanswered. */
		sock->sk->sk_sndtimeo = 5 * HZ;
		/*
		 * Fixed 1 MiB buffers: every round trip goes through
		 * interpreted guest code on kvm_pvm hosts, so do not wait
		 * for the autotuning to open the window.
		 */
		sock->sk->sk_userlocks |= SOCK_SNDBUF_LOCK;
		WRITE_ONCE(sock->sk->sk_sndbuf, NET_SOCK_BUF * 2);
		sock_set_rcvbuf(sock->sk, NET_SOCK_BUF);
		err = kernel_connect(sock, (struct sockaddr *)sin,
				     sizeof(*sin), 0);
		if (!err) {
			sock->sk->sk_sndtimeo = NET_IO_TIMEOUT_S * HZ;
			sock->sk->sk_rcvtimeo = NET_IO_TIMEOUT_S * HZ;
			*out = sock;
			return 0;
		}
		sock_release(sock);
		if (ktime_get_ns() >= deadline)
			return err;
		msleep(200);
	}
}

static int __init net_send_all(struct socket *sock, void *buf, size_t len)
{
	while (len) {
		struct kvec vec = { .iov_base = buf, .iov_len = len };
		struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
		int n = kernel_sendmsg(sock, &msg, &vec, 1, len);

		if (n < 0)
			return n;
		if (n == 0)
			return -EPIPE;
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * net:<host_ip>:<port>[:<bytes>[:<wait_s>]]: connects to a TCP listener on
 * the host (retrying for wait_s, default 120), sends <bytes> (default 8 MiB,
 * a multiple of 8) of the SEED_NET_TX stream, then receives as many bytes of
 * the SEED_NET_RX stream and compares them. tx time runs from the first
 * byte sent to the first byte received (the host answers only once it has
 * everything), rx time from there to the last byte received.
 */
static int __init check_net_transfer(const char *arg)
{
	char *args, *cursor, *ip, *port_s, *bytes_s, *wait_s_s;
	u64 bytes = NET_DEFAULT_BYTES, sent, got = 0, verified = 0;
	u64 tx_sum = 0, rx_sum = 0, t0, t1 = 0, t2;
	unsigned int wait_s = NET_DEFAULT_WAIT_S, tries = 0;
	char tx_rate[24], rx_rate[24], rx_state[24];
	struct socket *sock = NULL;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	netdev_features_t features;
	struct dst_entry *dst;
	struct tcp_sock *tp;
	size_t have = 0, bad = 0;
	u8 *buf = NULL;
	u16 port;
	int err;

	args = kstrdup(arg ? arg : "", GFP_KERNEL);
	if (!args)
		return -ENOMEM;
	cursor = args;
	ip = strsep(&cursor, ":");
	port_s = strsep(&cursor, ":");
	bytes_s = strsep(&cursor, ":");
	wait_s_s = strsep(&cursor, ":");
	err = -EINVAL;
	if (!ip || !in4_pton(ip, -1, (u8 *)&sin.sin_addr.s_addr, -1, NULL))
		goto out;
	if (!port_s || kstrtou16(port_s, 10, &port) || !port)
		goto out;
	sin.sin_port = htons(port);
	if (bytes_s && *bytes_s && kstrtou64(bytes_s, 10, &bytes))
		goto out;
	if (wait_s_s && *wait_s_s && kstrtouint(wait_s_s, 10, &wait_s))
		goto out;
	if (!bytes || bytes % 8)
		goto out;
	err = -ENOMEM;
	buf = kmalloc(NET_CHUNK + 8, GFP_KERNEL);
	if (!buf)
		goto out;

	err = net_connect(&sin, wait_s, &sock, &tries);
	if (err) {
		pr_emerg("net connect=error:%d tries=%u\n", err, tries);
		err = 0;
		goto out;
	}

	t0 = ktime_get_ns();
	for (sent = 0; sent < bytes;) {
		size_t len = min_t(u64, bytes - sent, NET_CHUNK);

		tx_sum += pattern_fill(buf, len, sent, SEED_NET_TX);
		err = net_send_all(sock, buf, len);
		if (err) {
			pr_emerg("net send=error:%d sent=%llu\n", err, sent);
			err = 0;
			goto out;
		}
		sent += len;
	}

	/* buf holds stream bytes [verified, verified + have). */
	while (got < bytes) {
		/* The first read is one word, to time the host's answer. */
		size_t want = min_t(u64, bytes - got, t1 ? NET_CHUNK : 8);
		struct kvec vec = { .iov_base = buf + have, .iov_len = want };
		struct msghdr msg = { .msg_flags = 0 };
		size_t total, whole;
		int n = kernel_recvmsg(sock, &msg, &vec, 1, want, MSG_WAITALL);

		if (n <= 0) {
			err = n ? n : -ECONNRESET;
			break;
		}
		if (!t1)
			t1 = ktime_get_ns();
		got += n;
		total = have + n;
		whole = total & ~(size_t)7;
		bad += pattern_check(buf, whole, verified, SEED_NET_RX,
				     &rx_sum);
		verified += whole;
		have = total - whole;
		if (have)
			memmove(buf, buf + whole, have);
	}
	t2 = ktime_get_ns();
	if (!t1)
		t1 = t2;

	if (got < bytes)
		snprintf(rx_state, sizeof(rx_state), "short:%d", err);
	else if (bad)
		snprintf(rx_state, sizeof(rx_state), "mismatch:%zu", bad);
	else
		strscpy(rx_state, "ok", sizeof(rx_state));
	format_rate(tx_rate, sizeof(tx_rate), bytes, t1 - t0, 800000);
	format_rate(rx_rate, sizeof(rx_rate), got, t2 - t1, 800000);
	tp = tcp_sk(sock->sk);
	dst = __sk_dst_get(sock->sk);
	features = dst && dst->dev ? dst->dev->features : 0;
	pr_emerg("net tx=%llu rx=%llu rx=%s tx_sum=%016llx rx_sum=%016llx tx_mbps=%s rx_mbps=%s tx_us=%llu rx_us=%llu tries=%u segs_out=%u segs_in=%u retrans=%u mss=%u tso=%d csum=%d\n",
		 bytes, got, rx_state, tx_sum, rx_sum, tx_rate, rx_rate,
		 div_u64(t1 - t0, 1000), div_u64(t2 - t1, 1000), tries,
		 tp->segs_out, tp->segs_in, tp->total_retrans, tp->mss_cache,
		 !!(features & NETIF_F_TSO),
		 !!(features & (NETIF_F_HW_CSUM | NETIF_F_IP_CSUM)));
	err = 0;
out:
	if (sock) {
		kernel_sock_shutdown(sock, SHUT_RDWR);
		sock_release(sock);
	}
	kfree(buf);
	kfree(args);
	return err;
}

/* ---- vsock ----------------------------------------------------------------
 * AF_VSOCK stream sockets through the kernel's virtio-vsock driver and the
 * VMM's device; the host side is the VMM's UNIX socket (tests/linux).
 *
 * vsock_echo:<port> starts a background listener (a kthread, so it keeps
 * serving while later checks run) that echoes every byte of every
 * connection, one kthread per connection. vsock_hold:<port>[:<s>] waits
 * for the host to connect to <port> and close, then prints the echo
 * server's counters: the host's signal that it is done. These run until
 * power-off, after the init sections would be freed, so they are not __init.
 */
#define VSOCK_CHUNK SZ_64K
#define VSOCK_IO_TIMEOUT_S 120
#define VSOCK_CONNECT_TIMEOUT_S 30
#define VSOCK_HOST_CID 2

static atomic_t vsock_echo_conns = ATOMIC_INIT(0);
static atomic_t vsock_echo_active = ATOMIC_INIT(0);
static atomic_t vsock_echo_errors = ATOMIC_INIT(0);
static atomic64_t vsock_echo_bytes = ATOMIC64_INIT(0);

static void vsock_set_timeouts(struct socket *sock)
{
	struct __kernel_sock_timeval tv = { .tv_sec = VSOCK_CONNECT_TIMEOUT_S };

	sock->sk->sk_sndtimeo = VSOCK_IO_TIMEOUT_S * HZ;
	sock->sk->sk_rcvtimeo = VSOCK_IO_TIMEOUT_S * HZ;
	/* The default connect timeout (2 s) is short for an interpreted guest. */
	sock->ops->setsockopt(sock, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT_NEW,
			      KERNEL_SOCKPTR(&tv), sizeof(tv));
}

static int vsock_send_all(struct socket *sock, void *buf, size_t len)
{
	while (len) {
		struct kvec vec = { .iov_base = buf, .iov_len = len };
		struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
		int n = kernel_sendmsg(sock, &msg, &vec, 1, len);

		if (n < 0)
			return n;
		if (n == 0)
			return -EPIPE;
		buf += n;
		len -= n;
	}
	return 0;
}

static int vsock_echo_conn(void *data)
{
	struct socket *sock = data;
	u8 *buf = kmalloc(VSOCK_CHUNK, GFP_KERNEL);
	int err = buf ? 0 : -ENOMEM;

	atomic_inc(&vsock_echo_active);
	vsock_set_timeouts(sock);
	while (!err) {
		struct kvec vec = { .iov_base = buf, .iov_len = VSOCK_CHUNK };
		struct msghdr msg = { .msg_flags = 0 };
		int n = kernel_recvmsg(sock, &msg, &vec, 1, VSOCK_CHUNK, 0);

		if (n <= 0) {
			err = n;
			break;
		}
		err = vsock_send_all(sock, buf, n);
		if (!err)
			atomic64_add(n, &vsock_echo_bytes);
	}
	if (err)
		atomic_inc(&vsock_echo_errors);
	kernel_sock_shutdown(sock, SHUT_RDWR);
	sock_release(sock);
	kfree(buf);
	atomic_dec(&vsock_echo_active);
	return 0;
}

static int vsock_echo_listener(void *data)
{
	struct socket *listener = data;

	for (;;) {
		struct socket *conn;
		struct task_struct *task;
		int err = kernel_accept(listener, &conn, 0);

		if (err) {
			pr_emerg("vsock_echo accept=error:%d\n", err);
			msleep(100);
			continue;
		}
		atomic_inc(&vsock_echo_conns);
		task = kthread_run(vsock_echo_conn, conn, "vsock-echo");
		if (IS_ERR(task)) {
			atomic_inc(&vsock_echo_errors);
			sock_release(conn);
		}
	}
	return 0;
}

static int vsock_listen(unsigned int port, struct socket **out)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK,
				    .svm_cid = VMADDR_CID_ANY,
				    .svm_port = port };
	struct socket *sock;
	int err = sock_create_kern(&init_net, AF_VSOCK, SOCK_STREAM, 0, &sock);

	if (err)
		return err;
	err = kernel_bind(sock, (struct sockaddr *)&addr, sizeof(addr));
	if (!err)
		err = kernel_listen(sock, 256);
	if (err) {
		sock_release(sock);
		return err;
	}
	*out = sock;
	return 0;
}

static int __init check_vsock_echo(const char *arg)
{
	struct task_struct *task;
	struct socket *sock;
	unsigned int port;
	int err = kstrtouint(arg ? arg : "", 10, &port);

	if (err)
		return err;
	err = vsock_listen(port, &sock);
	if (err) {
		pr_emerg("vsock_echo port=%u listen=error:%d\n", port, err);
		return 0;
	}
	task = kthread_run(vsock_echo_listener, sock, "vsock-echo-listen");
	if (IS_ERR(task)) {
		sock_release(sock);
		return PTR_ERR(task);
	}
	pr_emerg("vsock_echo port=%u listen=ok\n", port);
	return 0;
}

/*
 * vsock_connect:<port>:<tx_bytes>:<rx_bytes>: connects to the host (CID 2)
 * port <port>, sends <tx_bytes> of the SEED_NET_TX stream, then receives up
 * to <rx_bytes> of the SEED_NET_RX stream (verified), then closes (both
 * multiples of 8). Errors are facts here, not failures: the host tests
 * refused connections and peers that go away.
 */
static int __init check_vsock_connect(const char *arg)
{
	char *args, *cursor, *port_s, *tx_s, *rx_s;
	u64 tx_bytes, rx_bytes, sent = 0, got = 0, verified = 0;
	u64 tx_sum = 0, rx_sum = 0, t0, t1, t2;
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK,
				    .svm_cid = VSOCK_HOST_CID };
	char connect_state[24] = "ok", send_state[24] = "ok", recv_state[24];
	struct socket *sock = NULL;
	size_t have = 0, bad = 0;
	unsigned int port;
	u8 *buf = NULL;
	int err;

	args = kstrdup(arg ? arg : "", GFP_KERNEL);
	if (!args)
		return -ENOMEM;
	cursor = args;
	port_s = strsep(&cursor, ":");
	tx_s = strsep(&cursor, ":");
	rx_s = strsep(&cursor, ":");
	err = -EINVAL;
	if (!port_s || kstrtouint(port_s, 10, &port) || !tx_s ||
	    kstrtou64(tx_s, 10, &tx_bytes) || !rx_s ||
	    kstrtou64(rx_s, 10, &rx_bytes) || tx_bytes % 8 || rx_bytes % 8)
		goto out;
	addr.svm_port = port;
	err = -ENOMEM;
	buf = kmalloc(VSOCK_CHUNK + 8, GFP_KERNEL);
	if (!buf)
		goto out;
	err = sock_create_kern(&init_net, AF_VSOCK, SOCK_STREAM, 0, &sock);
	if (err)
		goto out;
	vsock_set_timeouts(sock);

	t0 = ktime_get_ns();
	err = kernel_connect(sock, (struct sockaddr *)&addr, sizeof(addr), 0);
	t1 = ktime_get_ns();
	if (err) {
		pr_emerg("vsock_connect port=%u connect=error:%d connect_us=%llu\n",
			 port, err, div_u64(t1 - t0, 1000));
		err = 0;
		goto out;
	}
	while (sent < tx_bytes) {
		size_t len = min_t(u64, tx_bytes - sent, VSOCK_CHUNK);

		tx_sum += pattern_fill(buf, len, sent, SEED_NET_TX);
		err = vsock_send_all(sock, buf, len);
		if (err) {
			snprintf(send_state, sizeof(send_state), "error:%d", err);
			break;
		}
		sent += len;
	}
	err = 0;
	while (got < rx_bytes) {
		size_t want = min_t(u64, rx_bytes - got, VSOCK_CHUNK);
		struct kvec vec = { .iov_base = buf + have, .iov_len = want };
		struct msghdr msg = { .msg_flags = 0 };
		size_t total, whole;
		int n = kernel_recvmsg(sock, &msg, &vec, 1, want, 0);

		if (n <= 0) {
			err = n ? n : -ECONNRESET;
			break;
		}
		got += n;
		total = have + n;
		whole = total & ~(size_t)7;
		bad += pattern_check(buf, whole, verified, SEED_NET_RX,
				     &rx_sum);
		verified += whole;
		have = total - whole;
		if (have)
			memmove(buf, buf + whole, have);
	}
	t2 = ktime_get_ns();
	if (got < rx_bytes)
		snprintf(recv_state, sizeof(recv_state), "short:%d", err);
	else if (bad)
		snprintf(recv_state, sizeof(recv_state), "mismatch:%zu", bad);
	else
		strscpy(recv_state, "ok", sizeof(recv_state));
	pr_emerg("vsock_connect port=%u connect=%s send=%s sent=%llu recv=%s got=%llu tx_sum=%016llx rx_sum=%016llx connect_us=%llu us=%llu\n",
		 port, connect_state, send_state, sent, recv_state, got, tx_sum,
		 rx_sum, div_u64(t1 - t0, 1000), div_u64(t2 - t1, 1000));
	err = 0;
out:
	if (sock) {
		kernel_sock_shutdown(sock, SHUT_RDWR);
		sock_release(sock);
	}
	kfree(buf);
	kfree(args);
	return err;
}

/* vsock_hold:<port>[:<s>]: waits (up to <s>, default 600) for the host to
 * connect to <port> and close, then prints the echo server's counters.
 */
static int __init check_vsock_hold(const char *arg)
{
	char *args, *cursor, *port_s, *wait_s;
	unsigned int port, wait = 600;
	struct socket *listener = NULL, *conn = NULL;
	u64 t0 = ktime_get_ns();
	int err, n = 0;
	u8 byte;

	args = kstrdup(arg ? arg : "", GFP_KERNEL);
	if (!args)
		return -ENOMEM;
	cursor = args;
	port_s = strsep(&cursor, ":");
	wait_s = strsep(&cursor, ":");
	err = -EINVAL;
	if (!port_s || kstrtouint(port_s, 10, &port) ||
	    (wait_s && *wait_s && kstrtouint(wait_s, 10, &wait)))
		goto out;
	err = vsock_listen(port, &listener);
	if (err)
		goto out;
	listener->sk->sk_rcvtimeo = (long)wait * HZ;
	err = kernel_accept(listener, &conn, 0);
	if (!err) {
		struct kvec vec = { .iov_base = &byte, .iov_len = 1 };
		struct msghdr msg = { .msg_flags = 0 };

		conn->sk->sk_rcvtimeo = (long)wait * HZ;
		do {
			n = kernel_recvmsg(conn, &msg, &vec, 1, 1, 0);
		} while (n > 0);
		sock_release(conn);
	}
	/* Let echo connections the host just closed finish. */
	msleep(200);
	pr_emerg("vsock_hold port=%u accept=%d last_recv=%d echo_conns=%d echo_active=%d echo_errors=%d echo_bytes=%lld waited_ms=%llu\n",
		 port, err, n, atomic_read(&vsock_echo_conns),
		 atomic_read(&vsock_echo_active),
		 atomic_read(&vsock_echo_errors),
		 (long long)atomic64_read(&vsock_echo_bytes),
		 div_u64(ktime_get_ns() - t0, NSEC_PER_MSEC));
	err = 0;
out:
	if (listener)
		sock_release(listener);
	kfree(args);
	return err;
}

/* ---- The check table ----------------------------------------------------- */

struct hearth_check {
	const char *name;
	int (*run)(const char *arg); /* arg: after "<name>:", or "" */
};

static const struct hearth_check hearth_checks[] __initconst = {
	{ "cpus", check_cpus },
	{ "mem", check_mem },
	{ "blk", check_blk },
	{ "blkro", check_blkro },
	{ "rootfs", check_rootfs },
	{ "netwait", check_netwait },
	{ "mtu", check_mtu },
	{ "net", check_net_transfer },
	{ "cost", check_cost },
	{ "vsock_echo", check_vsock_echo },
	{ "vsock_connect", check_vsock_connect },
	{ "vsock_hold", check_vsock_hold },
};

/* `spec` is "<name>" or "<name>:<argument>" (writable). */
static void __init run_check(char *spec)
{
	char *arg = strchr(spec, ':');
	size_t i;
	int err;

	if (arg)
		*arg++ = '\0';
	else
		arg = "";
	for (i = 0; i < ARRAY_SIZE(hearth_checks); i++) {
		if (strcmp(hearth_checks[i].name, spec) != 0)
			continue;
		err = hearth_checks[i].run(arg);
		if (err)
			pr_emerg("check %s: error %d\n", spec, err);
		return;
	}
	pr_emerg("check %s: unknown\n", spec);
}

static void __init run_checks(void)
{
	char *list, *cursor, *spec;

	if (!checks || !*checks)
		return;
	/* Work on a copy: strsep() writes into the string. */
	list = kstrdup(checks, GFP_KERNEL);
	if (!list) {
		pr_emerg("checks: out of memory\n");
		return;
	}
	cursor = list;
	while ((spec = strsep(&cursor, ",")) != NULL) {
		if (*spec)
			run_check(spec);
	}
	kfree(list);
}

/* ---- Actions ------------------------------------------------------------- */

static void __init run_action(void)
{
	if (!action || !*action || strcmp(action, "none") == 0)
		return; /* Let the kernel go on and run init. */

	if (strcmp(action, "poweroff") == 0) {
		pr_emerg("action poweroff\n");
		kernel_power_off(); /* Ends in hearth_power_off(). */
	} else if (strcmp(action, "reboot") == 0) {
		pr_emerg("action reboot\n");
		kernel_restart(NULL); /* With reboot=k: reset via the i8042. */
	} else if (strcmp(action, "panic") == 0) {
		pr_emerg("action panic\n");
		panic("hearth-agent: requested panic");
	} else {
		pr_emerg("action %s: unknown\n", action);
		return;
	}
	/*
	 * Still here: no VMM device took the power-off or reset (e.g. QEMU has
	 * no port 0x3f4). The shutdown path has already stopped the other CPUs
	 * and devices, so init cannot run any more: halt this CPU for good.
	 */
	pr_emerg("action %s did not stop the machine; halting\n", action);
	machine_halt();
	local_irq_disable();
	for (;;)
		halt();
}

/* ---- Power-off handler and panic notifier --------------------------------- */

static int hearth_power_off(struct sys_off_data *data)
{
	outb(HEARTH_POWER_OFF, HEARTH_POWER_PORT);
	return NOTIFY_DONE; /* Not under Hearth: fall back to halting. */
}

static int hearth_panic(struct notifier_block *nb, unsigned long event,
			void *msg)
{
	outb(HEARTH_POWER_PANIC, HEARTH_POWER_PORT);
	return NOTIFY_DONE;
}

static struct notifier_block hearth_panic_nb = {
	.notifier_call = hearth_panic,
};

/* Early, so panics during the rest of boot already reach the VMM. */
static int __init hearth_agent_early_init(void)
{
	struct sys_off_handler *handler;

	atomic_notifier_chain_register(&panic_notifier_list, &hearth_panic_nb);
	handler = register_sys_off_handler(SYS_OFF_MODE_POWER_OFF,
					   SYS_OFF_PRIO_DEFAULT,
					   hearth_power_off, NULL);
	if (IS_ERR(handler))
		pr_emerg("cannot register the power-off handler: %ld\n",
			 PTR_ERR(handler));
	return 0;
}
early_initcall(hearth_agent_early_init);

/* Last initcall level: every built-in driver has probed; init runs next. */
static int __init hearth_agent_late_init(void)
{
	pr_emerg("ready\n");
	outb(HEARTH_BOOT_TIMER_MAGIC, HEARTH_BOOT_TIMER_PORT);
	run_checks();
	run_action();
	return 0;
}
late_initcall_sync(hearth_agent_late_init);
