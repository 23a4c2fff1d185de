// SPDX-License-Identifier: GPL-2.0-only
/*
 * d3kos_tryboot: sets the Raspberry Pi firmware's one-time "tryboot" flag, which makes the
 * next reboot start the [tryboot] section of autoboot.txt instead of the default slot.
 *
 * Raspberry Pi's own kernel sets the flag from a reboot notifier when `reboot "0 tryboot"`
 * is asked for; Debian's kernel has no such notifier and no /dev/vcio, but it does export
 * rpi_firmware_property() (RASPBERRYPI_FIRMWARE=y). This module is that one call:
 *
 *   echo 1 > /sys/module/d3kos_tryboot/parameters/flag   (the next boot is a try)
 *   echo 0 > /sys/module/d3kos_tryboot/parameters/flag   (it is not)
 *
 * Where no Raspberry Pi firmware is (a QEMU machine, a board without the VideoCore), it
 * loads, says so, and refuses every write with ENODEV, so nobody believes a try is arranged.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/of.h>
#include <soc/bcm2835/raspberrypi-firmware.h>

/* The firmware's mailbox property tag (raspberrypi/firmware wiki, "Mailbox property
 * interface"); bit 0 of its value is tryboot. Spelled out here: not every kernel's header
 * names it.
 */
#define D3KOS_SET_REBOOT_FLAGS 0x00038064
#define D3KOS_TRYBOOT 0x1

static const char firmware_compatible[] = "raspberrypi,bcm2835-firmware";
static unsigned int flag;

static int flag_set(const char *val, const struct kernel_param *kp)
{
	struct device_node *np;
	struct rpi_firmware *fw;
	unsigned int want;
	u32 value;
	int ret;

	ret = kstrtouint(val, 0, &want);
	if (ret)
		return ret;
	if (want > 1)
		return -EINVAL;
	np = of_find_compatible_node(NULL, NULL, firmware_compatible);
	if (!np) {
		pr_err("no Raspberry Pi firmware here: the tryboot flag cannot be set\n");
		return -ENODEV;
	}
	fw = rpi_firmware_get(np);
	of_node_put(np);
	if (!fw) {
		pr_err("the Raspberry Pi firmware driver is not ready: the tryboot flag was not set\n");
		return -EPROBE_DEFER;
	}
	value = want ? D3KOS_TRYBOOT : 0;
	ret = rpi_firmware_property(fw, D3KOS_SET_REBOOT_FLAGS, &value, sizeof(value));
	rpi_firmware_put(fw);
	if (ret) {
		pr_err("the firmware refused SET_REBOOT_FLAGS (%d): the tryboot flag was not set\n",
		       ret);
		return ret;
	}
	flag = want;
	pr_info("the next reboot %s a try boot\n", want ? "is" : "is not");
	return 0;
}

static const struct kernel_param_ops flag_ops = {
	.set = flag_set,
	.get = param_get_uint,
};
module_param_cb(flag, &flag_ops, &flag, 0644);
MODULE_PARM_DESC(flag, "1: the next reboot tries the [tryboot] slot of autoboot.txt once");

static int __init d3kos_tryboot_init(void)
{
	struct device_node *np = of_find_compatible_node(NULL, NULL, firmware_compatible);

	if (!np) {
		pr_info("no Raspberry Pi firmware here (no %s node in the device tree): a try boot cannot be arranged on this machine\n",
			firmware_compatible);
		return 0;
	}
	of_node_put(np);
	pr_info("ready: the Raspberry Pi firmware takes the tryboot flag\n");
	return 0;
}

static void __exit d3kos_tryboot_exit(void)
{
}

module_init(d3kos_tryboot_init);
module_exit(d3kos_tryboot_exit);

MODULE_DESCRIPTION("Sets the Raspberry Pi firmware's one-time tryboot flag");
MODULE_LICENSE("GPL");
