// UsbDevice: what a USB host controller (hw/usb/xhci.h) talks to. A device on a root port: emulated,
// or a host device forwarded by a backend (passthrough/usb_host.h). The controller never sees how.
//
// Transfers are asynchronous: submit() hands a transfer over and the device calls `done` exactly
// once, either before submit() returns or later from any thread (a backend's event thread). The
// controller keeps at most one transfer in flight per endpoint and may cancel it (Stop Endpoint,
// reset, disable slot); `done` then still comes, with Status::Cancelled.
// Lifetime: the controller keeps the device (shared_ptr) for as long as a transfer may be in
// flight; a device must not call `done` after its destructor started.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace hw::usb {

// As the xHCI PORTSC Port Speed field encodes them (default Protocol Speed IDs).
enum class Speed : uint8_t { Full = 1, Low = 2, High = 3, Super = 4 };

enum class EndpointType : uint8_t { Control, Bulk, Interrupt, Isochronous };

struct SetupPacket {
  uint8_t request_type = 0;  // bit 7: device-to-host
  uint8_t request = 0;
  uint16_t value = 0, index = 0, length = 0;
  bool in() const { return request_type & 0x80; }
};

struct Transfer {
  EndpointType type = EndpointType::Control;
  uint8_t endpoint = 0;  // USB endpoint address: number | 0x80 for IN; 0 for the control endpoint
  SetupPacket setup;     // control transfers only
  // OUT: the bytes to send. IN: sized to what the guest asked for; the device fills the front.
  std::vector<uint8_t> data;
};

struct TransferResult {
  enum class Status { Ok, Stall, Babble, Error, Disconnected, Cancelled };
  Status status = Status::Ok;
  size_t length = 0;  // bytes moved: for IN, the valid front of Transfer::data
};

using TransferDone = std::function<void(Transfer& transfer, TransferResult result)>;

class UsbDevice {
 public:
  virtual ~UsbDevice() = default;
  virtual std::string_view name() const = 0;
  virtual Speed speed() const = 0;
  // A bus reset (the guest reset the port): the device forgets its address and configuration.
  virtual void reset() = 0;
  virtual void submit(Transfer transfer, TransferDone done) = 0;
  // Cancels the transfer in flight on `endpoint` (address as in Transfer), if any.
  virtual void cancel(uint8_t endpoint) = 0;
  // The device calls `listener(false)` when it went away (host unplug) and `true` when it came back.
  // Set once by the controller before any transfer; may be called from any thread.
  virtual void set_presence_listener(std::function<void(bool present)> listener) { (void)listener; }
};

}  // namespace hw::usb
