// The usbfs ioctls libusb makes for a usb-host device (passthrough/usb_host.h) on the descriptor of
// /dev/bus/usb/BBB/DDD opened before arming. Without device discovery libusb reads nothing else.
#pragma once

#include <linux/usbdevice_fs.h>

#include "security/allow/allow_list.h"

namespace security {

// vCPU threads: the guest's transfers (submit, cancel) and the control requests that become usbfs
// calls (SET_CONFIGURATION: release, set, read back, claim; SET_INTERFACE; CLEAR_FEATURE(HALT)),
// the host drivers detached from a new configuration's interfaces.
inline void allow_usbfs_transfers(AllowList& list) {
  list.allow_ioctls(
      {USBDEVFS_SUBMITURB, USBDEVFS_DISCARDURB, USBDEVFS_REAPURBNDELAY, USBDEVFS_CLAIMINTERFACE,
       USBDEVFS_RELEASEINTERFACE, USBDEVFS_SETINTERFACE, USBDEVFS_SETCONFIGURATION, USBDEVFS_CLEAR_HALT,
       USBDEVFS_CONTROL, USBDEVFS_GETDRIVER, USBDEVFS_IOCTL, USBDEVFS_DISCONNECT_CLAIM},
      "usb-host: the guest's transfers and configuration requests through usbfs");
}

// The usb-host event thread (device-io): reaping completed URBs.
inline void allow_usbfs_events(AllowList& list) {
  list.allow_ioctls({USBDEVFS_REAPURBNDELAY, USBDEVFS_DISCARDURB}, "usb-host: reaping completed transfers");
}

}  // namespace security
