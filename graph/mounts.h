// `mounts:` (Lima-like shared folders) as the devices and backends they mean: each entry becomes an
// fs backend `mount-TAG` {driver: local, path, readonly} and a virtio-9p device `mount-TAG`
// {fsdev, mount_tag}, virtio-9p-pci where the machine type has a PCI bus, else virtio-9p-mmio;
// `type: virtiofs` makes the backend driver virtiofsd and the device vhost-user-fs-{pci,mmio} {fsdev,
// tag} (virtiofsd itself is looked for at `up`, never here). The choice reads only the file (machine type, the entry's type), so every host plans the same.
// Generated nodes carry the mount entry's locations: later errors point at what the user wrote.
#pragma once

#include "config/diagnostic.h"
#include "config/node.h"

namespace graph {

// Whether the document has a non-empty `mounts:` list (resolve() copies the document only then).
bool has_mounts(const config::Node& document);

// Appends the backends and devices of `document`'s mounts to `document`; reports entries that cannot
// take effect (virtiofs tags over 36 bytes, duplicate tags, names already taken) into `diagnostics`.
void expand_mounts(config::Node& document, config::Diagnostics& diagnostics);

}  // namespace graph
