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
 *  - runs the checks named in hearth_agent.checks=<name>[,<name>...], each
 *    printing one "hearth-agent: <name> key=value ..." line;
 *  - then performs hearth_agent.action=none|poweroff|reboot|panic.
 *
 * All output uses KERN_EMERG so it reaches the console even with `quiet`
 * or a low loglevel: the test harness parses these lines.
 *
 * The line formats are a contract with tests/linux/ (see
 * resources/README.md); change them only together.
 */

#define pr_fmt(fmt) "hearth-agent: " fmt

#include <linux/cpumask.h>
#include <linux/init.h>
#include <linux/irqflags.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/notifier.h>
#include <linux/panic_notifier.h>
#include <linux/reboot.h>
#include <linux/slab.h>
#include <linux/string.h>

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
MODULE_PARM_DESC(checks, "Comma-separated checks to run: cpus,mem");

static char *action = "none";
module_param(action, charp, 0444);
MODULE_PARM_DESC(action, "After the checks: none|poweroff|reboot|panic");

/* ---- Checks --------------------------------------------------------------
 * Each check prints exactly one line of facts and returns 0, or a negative
 * errno if it could not gather them (the caller then prints an error line).
 * To add a check, write a function and add a row to hearth_checks[].
 */

static int check_cpus(void)
{
	pr_emerg("cpus online=%u possible=%u\n", num_online_cpus(),
		 num_possible_cpus());
	return 0;
}

static int check_mem(void)
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

struct hearth_check {
	const char *name;
	int (*run)(void);
};

static const struct hearth_check hearth_checks[] = {
	{ "cpus", check_cpus },
	{ "mem", check_mem },
};

static void __init run_check(const char *name)
{
	size_t i;
	int err;

	for (i = 0; i < ARRAY_SIZE(hearth_checks); i++) {
		if (strcmp(hearth_checks[i].name, name) != 0)
			continue;
		err = hearth_checks[i].run();
		if (err)
			pr_emerg("check %s: error %d\n", name, err);
		return;
	}
	pr_emerg("check %s: unknown\n", name);
}

static void __init run_checks(void)
{
	char *list, *cursor, *name;

	if (!checks || !*checks)
		return;
	/* Work on a copy: strsep() writes into the string. */
	list = kstrdup(checks, GFP_KERNEL);
	if (!list) {
		pr_emerg("checks: out of memory\n");
		return;
	}
	cursor = list;
	while ((name = strsep(&cursor, ",")) != NULL) {
		if (*name)
			run_check(name);
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
