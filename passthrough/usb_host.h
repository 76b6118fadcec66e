// usb-host: a host USB device forwarded to the guest's USB controller (hw/usb/xhci.h) through libusb.
//
// Opened with the backends, before the VMM is confined: the device is found in sysfs by the entry's
// selector (host_inventory.h: match_usb), its usbfs node /dev/bus/usb/BBB/DDD opened by us and
// handed to libusb (libusb_wrap_sys_device, with device discovery off: libusb starts no thread of its
// own and reads nothing else of the host), reset, and every interface of its active configuration
// claimed (the host's drivers detached). One thread (role device-io) runs libusb's event handling:
// transfer completions.
// The guest then drives it: control transfers are passed on, except those that change what the
// host kernel tracks (SET_CONFIGURATION, SET_INTERFACE, CLEAR_FEATURE(ENDPOINT_HALT)), which become
// the matching usbfs calls; SET_ADDRESS never arrives (the host's stack addressed the device).
// Bulk and interrupt transfers are asynchronous (one in flight per endpoint, as the controller
// sends them); isochronous ones are not forwarded.
// Host unplug: usbfs fails the transfers with ENODEV; the controller hears presence(false) and the
// guest sees a disconnect. A replugged device is not picked up again by this machine.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.h"
#include "hw/usb/usb_device.h"

struct libusb_context;
struct libusb_device_handle;
struct libusb_transfer;

namespace passthrough {

class UsbHostDevice : public hw::usb::UsbDevice, public std::enable_shared_from_this<UsbHostDevice> {
 public:
  // `host`: "vendor:product" (then `serial` may narrow it) or a bus-port path; `root` prefixes /sys
  // and /dev (tests).
  static base::ErrorOr<std::shared_ptr<UsbHostDevice>> open(const std::string& host,
                                                            const std::string& serial,
                                                            const std::string& root = "");
  ~UsbHostDevice() override;

  std::string_view name() const override { return m_name; }
  hw::usb::Speed speed() const override { return m_speed; }
  void reset() override;
  void submit(hw::usb::Transfer transfer, hw::usb::TransferDone done) override;
  void cancel(uint8_t endpoint) override;
  void set_presence_listener(std::function<void(bool)> listener) override;

 private:
  struct InFlight;
  UsbHostDevice() = default;
  base::ErrorOr<void> claim_interfaces();
  void release_interfaces();
  // Control requests usbfs must see as calls, not as transfers; true when handled.
  bool intercept(hw::usb::Transfer& transfer, hw::usb::TransferDone& done);
  static void completed(libusb_transfer* transfer);
  void gone();
  void run_events();

  std::string m_name;
  hw::usb::Speed m_speed = hw::usb::Speed::High;
  libusb_context* m_context = nullptr;
  libusb_device_handle* m_handle = nullptr;
  int m_fd = -1;
  int m_configuration = 0;
  std::vector<int> m_claimed;
  std::mutex m_lock;                                // m_in_flight, m_presence
  std::map<uint8_t, libusb_transfer*> m_in_flight;  // by endpoint address
  std::function<void(bool)> m_presence;
  std::atomic<bool> m_gone{false};
  int m_stop_event = -1;
  std::thread m_events;
};

}  // namespace passthrough
