// Device threads beside the vCPUs: the CLINT's timer deadlines, the power button's release, the
// vhost-user-fs call forwarder (virtiofsd's "used buffer" eventfd becomes a guest interrupt), the
// usb-host event thread.
#include "security/allow/allow_list.h"
#include "security/allow/kvm_ioctls.h"
#include "security/allow/usbfs_ioctls.h"

namespace security {

void allow_device_io(AllowList& list, const PolicyContext&) {
  allow_kvm_interrupts(list);
  list.allow("read", "draining the vhost-user call eventfd");
  list.allow("poll", "waiting on the call eventfd and the stop eventfd");
  list.allow("ppoll", "poll on glibc's ppoll path");
  allow_usbfs_events(list);
}

}  // namespace security
