"""Expected PCI functions of a `vmlaunch plan --format json` graph, as a guest's CF8/CFC scan lists
them: bus numbers assigned depth first through bridges (as firmware does), then "BB:DD.F vvvv:dddd"."""
import json
import sys

IDS = {
    "pci-host-bridge": "8086:1237",
    "pci-bridge": "1b36:0001",
}
VIRTIO_IDS = {"net": 1, "blk": 2, "console": 3, "rng": 4, "balloon": 5, "scsi": 8, "9p": 9, "vsock": 19}


def ids_of(driver):
    if driver in IDS:
        return IDS[driver]
    if driver.startswith("virtio-") and driver.endswith("-pci"):
        return "1af4:%04x" % (0x1040 + VIRTIO_IDS[driver[len("virtio-"):-len("-pci")]])
    return "????:????"


def main():
    graph = json.load(open(sys.argv[1]))
    devices = {d["id"]: d for d in graph["devices"]}
    buses = {b["name"]: b for b in graph["buses"]}
    next_bus = [1]
    out = []

    def walk(bus_name, number):
        members = sorted((devices[i] for i in buses[bus_name]["devices"]), key=lambda d: (d["slot"], d["function"]))
        for d in members:
            out.append("%02x:%02x.%x %s" % (number, d["slot"], d["function"], ids_of(d["driver"])))
            if d["driver"] == "pci-bridge":
                secondary = next_bus[0]
                next_bus[0] += 1
                walk(d["id"], secondary)

    root = [b["name"] for b in graph["buses"] if b["kind"] == "pci" and not b["provided_by"]][0]
    walk(root, 0)
    print("\n".join(out))


main()
