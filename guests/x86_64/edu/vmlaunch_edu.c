// SPDX-License-Identifier: GPL-2.0
/*
 * vmlaunch_edu: a Linux driver for QEMU's edu test device (QEMU's docs/specs/edu.rst), so that an
 * x86_64 Linux guest can prove a device passed through by vmlaunch's vfio-pci works under Linux's
 * own PCI, DMA and MSI code (tests/passthrough/passthrough_test.sh). Linux has no driver for edu.
 *
 * Probing runs the whole check once and prints each result on the kernel log (the test reads it
 * with dmesg): the id register, the liveness register, a factorial finished by edu's
 * "factorial done" interrupt taken through MSI, and a DMA transfer of 2 KiB from guest RAM into
 * edu's buffer and back into another page, each finished by edu's "DMA done" interrupt. The device
 * is then left quiet (interrupts freed, MSI off) and stays bound until the module is removed.
 */
#include <linux/completion.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/string.h>

#define EDU_ID 0x00
#define EDU_LIVENESS 0x04
#define EDU_FACTORIAL 0x08
#define EDU_STATUS 0x20
#define EDU_STATUS_COMPUTING 0x01
#define EDU_STATUS_IRQ_ON_FACTORIAL 0x80
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_ACK 0x64
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_DMA_START 0x01
#define EDU_DMA_TO_RAM 0x02
#define EDU_DMA_IRQ 0x04
#define EDU_BUFFER 0x40000
#define EDU_IRQ_FACTORIAL 0x00000001
#define EDU_IRQ_DMA 0x00000100
#define EDU_EXPECTED_ID 0x010000ed
/* edu masks DMA addresses to 28 bits (its default dma_mask). */
#define EDU_DMA_BITS 28

struct edu {
	void __iomem *bar;
	struct completion done;
	u32 irq_status; /* what the last interrupt acknowledged */
	atomic_t irqs;
};

static irqreturn_t edu_irq(int irq, void *data)
{
	struct edu *edu = data;
	u32 status = ioread32(edu->bar + EDU_IRQ_STATUS);

	if (!status)
		return IRQ_NONE;
	iowrite32(status, edu->bar + EDU_IRQ_ACK);
	edu->irq_status = status;
	atomic_inc(&edu->irqs);
	complete(&edu->done);
	return IRQ_HANDLED;
}

/* Waits for the next interrupt; false (and says so) after 10 s without one. */
static bool edu_wait(struct pci_dev *pdev, struct edu *edu, const char *what)
{
	if (wait_for_completion_timeout(&edu->done, msecs_to_jiffies(10000)))
		return true;
	dev_err(&pdev->dev, "edu: no interrupt for %s (interrupt status 0x%08x)\n", what,
		ioread32(edu->bar + EDU_IRQ_STATUS));
	return false;
}

/* One DMA transfer between guest RAM (addr) and edu's buffer; true when its interrupt came. */
static bool edu_dma(struct pci_dev *pdev, struct edu *edu, dma_addr_t addr, size_t len, bool to_ram)
{
	/* 32-bit writes: every address is below 2^28, and the registers take 4-byte accesses. */
	iowrite32(to_ram ? EDU_BUFFER : (u32)addr, edu->bar + EDU_DMA_SRC);
	iowrite32(0, edu->bar + EDU_DMA_SRC + 4);
	iowrite32(to_ram ? (u32)addr : EDU_BUFFER, edu->bar + EDU_DMA_DST);
	iowrite32(0, edu->bar + EDU_DMA_DST + 4);
	iowrite32(len, edu->bar + EDU_DMA_COUNT);
	iowrite32(0, edu->bar + EDU_DMA_COUNT + 4);
	reinit_completion(&edu->done);
	iowrite32(EDU_DMA_START | EDU_DMA_IRQ | (to_ram ? EDU_DMA_TO_RAM : 0), edu->bar + EDU_DMA_CMD);
	return edu_wait(pdev, edu, to_ram ? "DMA edu -> RAM" : "DMA RAM -> edu");
}

static int edu_check(struct pci_dev *pdev, struct edu *edu)
{
	struct device *dev = &pdev->dev;
	u32 id, live, fact;
	void *out, *back;
	dma_addr_t out_dma, back_dma;
	/*
	 * Half of edu's 4 KiB buffer: QEMU 7.2's edu (Debian 12's) rejects a transfer that ends at the
	 * buffer's end (its range check is off by one) with a hardware error that stops the machine.
	 */
	size_t i, len = 2048;
	int irq, ret;

	id = ioread32(edu->bar + EDU_ID);
	dev_info(dev, "edu: id 0x%08x\n", id);
	if (id != EDU_EXPECTED_ID)
		return -ENODEV;
	iowrite32(0x12345678, edu->bar + EDU_LIVENESS);
	live = ioread32(edu->bar + EDU_LIVENESS);
	dev_info(dev, "edu: liveness 0x12345678 -> 0x%08x\n", live);

	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(EDU_DMA_BITS));
	if (ret)
		return ret;
	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
	if (ret < 0) {
		dev_err(dev, "edu: no MSI (%d)\n", ret);
		return ret;
	}
	irq = pci_irq_vector(pdev, 0);
	ret = request_irq(irq, edu_irq, 0, "vmlaunch_edu", edu);
	if (ret)
		goto free_vectors;
	dev_info(dev, "edu: MSI enabled (%d), irq %d\n", pdev->msi_enabled, irq);

	/* 10!, with edu's interrupt when it is done. */
	reinit_completion(&edu->done);
	iowrite32(EDU_STATUS_IRQ_ON_FACTORIAL, edu->bar + EDU_STATUS);
	iowrite32(10, edu->bar + EDU_FACTORIAL);
	if (!edu_wait(pdev, edu, "the factorial")) {
		ret = -ETIMEDOUT;
		goto free_irq;
	}
	fact = ioread32(edu->bar + EDU_FACTORIAL);
	dev_info(dev, "edu: 10! = %u, factorial-done interrupt status 0x%08x, computing %u\n", fact,
		 edu->irq_status, ioread32(edu->bar + EDU_STATUS) & EDU_STATUS_COMPUTING);
	iowrite32(0, edu->bar + EDU_STATUS);

	/* A page of guest RAM -> edu's buffer -> another page. */
	ret = -ENOMEM;
	out = dma_alloc_coherent(dev, PAGE_SIZE, &out_dma, GFP_KERNEL);
	if (!out)
		goto free_irq;
	back = dma_alloc_coherent(dev, PAGE_SIZE, &back_dma, GFP_KERNEL);
	if (!back)
		goto free_out;
	for (i = 0; i < len; i++)
		((u8 *)out)[i] = (u8)(i * 7 + 3);
	memset(back, 0, len);
	ret = -ETIMEDOUT;
	if (!edu_dma(pdev, edu, out_dma, len, false))
		goto free_back;
	dev_info(dev, "edu: DMA RAM 0x%llx -> edu done, interrupt status 0x%08x\n",
		 (unsigned long long)out_dma, edu->irq_status);
	if (!edu_dma(pdev, edu, back_dma, len, true))
		goto free_back;
	dev_info(dev, "edu: DMA edu -> RAM 0x%llx done, interrupt status 0x%08x\n",
		 (unsigned long long)back_dma, edu->irq_status);
	ret = memcmp(out, back, len) ? -EIO : 0;
	dev_info(dev, "edu: DMA copy of %zu bytes %s; %d interrupts\n", len,
		 ret ? "DIFFERS" : "matches", atomic_read(&edu->irqs));
free_back:
	dma_free_coherent(dev, PAGE_SIZE, back, back_dma);
free_out:
	dma_free_coherent(dev, PAGE_SIZE, out, out_dma);
free_irq:
	free_irq(irq, edu);
free_vectors:
	pci_free_irq_vectors(pdev);
	return ret;
}

static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct edu *edu;
	int ret;

	edu = devm_kzalloc(&pdev->dev, sizeof(*edu), GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	init_completion(&edu->done);
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pcim_iomap_regions(pdev, BIT(0), "vmlaunch_edu");
	if (ret)
		return ret;
	edu->bar = pcim_iomap_table(pdev)[0];
	pci_set_master(pdev);
	ret = edu_check(pdev, edu);
	dev_info(&pdev->dev, "edu: checks %s (%d)\n", ret ? "FAILED" : "passed", ret);
	return ret;
}

static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{}
};
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
	.name = "vmlaunch_edu",
	.id_table = edu_ids,
	.probe = edu_probe,
};
module_pci_driver(edu_driver);

MODULE_DESCRIPTION("QEMU edu test device: id, factorial, DMA and MSI checks (vmlaunch passthrough tests)");
MODULE_LICENSE("GPL");
