// Image locking, as QEMU does it: an open image holds an OFD lock on its file, shared when it is
// opened read-only, exclusive when writable, so two machines never write one disk (or one writes
// a disk another reads, such as a backing file). OFD locks belong to the open file description,
// so a second open in the same process conflicts too, and they go away when the fd is closed.
#pragma once

#include <string>

#include "base/result.h"

namespace backends::block {

// Locks all of `fd` (opened from `path`) for reading (shared) or writing (exclusive), without
// waiting. A lock held elsewhere is an error naming the image; a file system without lock support
// is not (the image is used unlocked, as QEMU does with locking=auto).
base::ErrorOr<void> lock_image(int fd, const std::string& path, bool writable);

}  // namespace backends::block
