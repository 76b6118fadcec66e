#include "passthrough/usb_host.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <libusb-1.0/libusb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "passthrough/host_inventory.h"
#include "security/thread_role.h"

namespace passthrough {

using hw::usb::Transfer;
using hw::usb::TransferDone;
using hw::usb::TransferResult;

struct UsbHostDevice::InFlight {
  std::weak_ptr<UsbHostDevice> device;
  Transfer transfer;
  TransferDone done;
  std::vector<uint8_t> buffer;  // control: the 8-byte setup, then the data
};

namespace {

// libusb is loaded when the first usb-host entry is opened (dlopen, as libslirp): vmlaunch itself
// links nothing but glibc (//launcher:link_test), and machines without USB never map it.
constexpr const char* kLibusbSoname = "libusb-1.0.so.0";

struct Libusb {
#define VML_LIBUSB_FUNCTIONS(X)    \
  X(error_name)                    \
  X(set_option)                    \
  X(init)                          \
  X(exit)                          \
  X(wrap_sys_device)               \
  X(reset_device)                  \
  X(close)                         \
  X(handle_events_timeout)         \
  X(set_auto_detach_kernel_driver) \
  X(get_configuration)             \
  X(get_active_config_descriptor)  \
  X(free_config_descriptor)        \
  X(get_device)                    \
  X(claim_interface)               \
  X(release_interface)             \
  X(set_configuration)             \
  X(set_interface_alt_setting)     \
  X(clear_halt)                    \
  X(alloc_transfer)                \
  X(submit_transfer)               \
  X(cancel_transfer)               \
  X(free_transfer)
#define VML_LIBUSB_MEMBER(name) decltype(&::libusb_##name) name = nullptr;
  VML_LIBUSB_FUNCTIONS(VML_LIBUSB_MEMBER)
#undef VML_LIBUSB_MEMBER
};

base::ErrorOr<std::unique_ptr<Libusb>> load_libusb() {
  void* handle = dlopen(kLibusbSoname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    return base::fail(base::Error(std::string("usb-host needs ") + kLibusbSoname +
                                  ", which cannot be loaded (" + (why ? why : "unknown error") +
                                  "); install Debian's libusb-1.0-0"));
  }
  auto lib = std::make_unique<Libusb>();
  // dlsym returns the entry point as void*; the declared type comes from libusb.h.
#define VML_LIBUSB_RESOLVE(name)                                                            \
  lib->name = reinterpret_cast<decltype(&::libusb_##name)>(dlsym(handle, "libusb_" #name)); \
  if (!lib->name) return base::fail(base::Error(std::string(kLibusbSoname) + " has no libusb_" #name));
  VML_LIBUSB_FUNCTIONS(VML_LIBUSB_RESOLVE)
#undef VML_LIBUSB_RESOLVE
  return lib;
}

// Loaded once (a failure is remembered too); set before any UsbHostDevice exists.
const Libusb* usb = nullptr;

base::ErrorOr<void> need_libusb() {
  static const base::ErrorOr<std::unique_ptr<Libusb>> loaded = load_libusb();
  if (!loaded.ok()) return base::fail(loaded.error());
  usb = loaded.value().get();
  return {};
}

hw::usb::Speed speed_of(const std::string& mbps) {
  if (mbps == "1.5") return hw::usb::Speed::Low;
  if (mbps == "12") return hw::usb::Speed::Full;
  if (mbps == "480") return hw::usb::Speed::High;
  return hw::usb::Speed::Super;  // 5000, 10000, 20000
}

std::string libusb_text(int code) {
  return usb->error_name(code);
}

constexpr uint8_t kRequestSetConfiguration = 9, kRequestSetInterface = 11, kRequestClearFeature = 1;

}  // namespace

base::ErrorOr<std::shared_ptr<UsbHostDevice>> UsbHostDevice::open(const std::string& host,
                                                                  const std::string& serial,
                                                                  const std::string& root) {
  TRY(need_libusb());
  std::vector<passthrough::UsbDevice> found = match_usb(host, serial, root);
  if (found.empty())
    return base::fail(base::Error("no host USB device " + host +
                                  (serial.empty() ? "" : " with serial " + serial) +
                                  " (vmlaunch host devices lists them)"));
  if (found.size() > 1) {
    std::string where;
    for (const passthrough::UsbDevice& d : found) where += (where.empty() ? "" : ", ") + d.path;
    return base::fail(base::Error("several host USB devices are " + host + " (at " + where +
                                  "): add serial, or give the bus-port path"));
  }
  const passthrough::UsbDevice& selected = found.front();
  std::shared_ptr<UsbHostDevice> device(new UsbHostDevice());
  device->m_name = "usb-host " + selected.path;
  device->m_speed = speed_of(selected.speed);
  const std::string node = root + selected.node();
  device->m_fd = ::open(node.c_str(), O_RDWR | O_CLOEXEC);
  if (device->m_fd < 0) return base::fail(base::Error(node + ": " + std::strerror(errno)));

  // No discovery: libusb reads nothing of the host but our descriptor and starts no thread.
  int rc = usb->set_option(nullptr, LIBUSB_OPTION_NO_DEVICE_DISCOVERY);
  if (rc == LIBUSB_SUCCESS) rc = usb->init(&device->m_context);
  if (rc != LIBUSB_SUCCESS) return base::fail(base::Error("libusb: " + libusb_text(rc)));
  rc = usb->wrap_sys_device(device->m_context, device->m_fd, &device->m_handle);
  if (rc != LIBUSB_SUCCESS) return base::fail(base::Error(node + ": libusb: " + libusb_text(rc)));
  // The guest gets the device as from a fresh plug; a reset that re-enumerates it (new descriptors)
  // leaves this handle dead: then the guest would see nothing, so that is an error now.
  rc = usb->reset_device(device->m_handle);
  if (rc != LIBUSB_SUCCESS) return base::fail(base::Error(node + ": reset: " + libusb_text(rc)));
  TRY(device->claim_interfaces());

  device->m_stop_event = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (device->m_stop_event < 0)
    return base::fail(base::Error(std::string("eventfd: ") + std::strerror(errno)));
  UsbHostDevice* self = device.get();
  device->m_events = std::thread([self] {
    security::ThreadRole role(security::Role::DeviceIo);
    self->run_events();
  });
  return device;
}

UsbHostDevice::~UsbHostDevice() {
  if (m_events.joinable()) {
    const uint64_t one = 1;
    if (::write(m_stop_event, &one, sizeof one) != sizeof one) std::perror("vmlaunch: usb-host: eventfd");
    m_events.join();
  }
  if (m_stop_event >= 0) ::close(m_stop_event);
  if (m_handle) {
    // Anything still in flight is cancelled and reaped before the handle goes.
    {
      std::lock_guard guard(m_lock);
      for (auto& [endpoint, transfer] : m_in_flight) usb->cancel_transfer(transfer);
    }
    for (int i = 0; i < 100; ++i) {
      {
        std::lock_guard guard(m_lock);
        if (m_in_flight.empty()) break;
      }
      timeval tv{0, 10000};
      usb->handle_events_timeout(m_context, &tv);
    }
    release_interfaces();
    usb->close(m_handle);  // hands the host's drivers their interfaces back (auto-detach)
  }
  if (m_context) usb->exit(m_context);
  if (m_fd >= 0) ::close(m_fd);
}

base::ErrorOr<void> UsbHostDevice::claim_interfaces() {
  usb->set_auto_detach_kernel_driver(m_handle, 1);
  int configuration = 0;
  int rc = usb->get_configuration(m_handle, &configuration);
  if (rc != LIBUSB_SUCCESS) return base::fail(base::Error(m_name + ": configuration: " + libusb_text(rc)));
  m_configuration = configuration;
  if (configuration == 0) return {};  // unconfigured: nothing to claim until the guest sets one
  libusb_config_descriptor* config = nullptr;
  rc = usb->get_active_config_descriptor(usb->get_device(m_handle), &config);
  if (rc != LIBUSB_SUCCESS) return base::fail(base::Error(m_name + ": descriptors: " + libusb_text(rc)));
  for (int i = 0; i < config->bNumInterfaces; ++i) {
    rc = usb->claim_interface(m_handle, i);
    if (rc != LIBUSB_SUCCESS) {
      usb->free_config_descriptor(config);
      return base::fail(
          base::Error(m_name + ": claim interface " + std::to_string(i) + ": " + libusb_text(rc)));
    }
    m_claimed.push_back(i);
  }
  usb->free_config_descriptor(config);
  return {};
}

void UsbHostDevice::release_interfaces() {
  for (int i : m_claimed) usb->release_interface(m_handle, i);
  m_claimed.clear();
}

void UsbHostDevice::set_presence_listener(std::function<void(bool)> listener) {
  std::lock_guard guard(m_lock);
  m_presence = std::move(listener);
}

void UsbHostDevice::reset() {
  // A port reset in the guest: what is in flight goes. The device itself was reset when opened; a
  // USB reset now would have the host kernel re-enumerate it under our feet.
  std::lock_guard guard(m_lock);
  for (auto& [endpoint, transfer] : m_in_flight) usb->cancel_transfer(transfer);
}

void UsbHostDevice::cancel(uint8_t endpoint) {
  std::lock_guard guard(m_lock);
  auto it = m_in_flight.find(endpoint);
  if (it != m_in_flight.end()) usb->cancel_transfer(it->second);
}

bool UsbHostDevice::intercept(Transfer& transfer, TransferDone& done) {
  const hw::usb::SetupPacket& setup = transfer.setup;
  int rc = -1;
  if (setup.request_type == 0x00 && setup.request == kRequestSetConfiguration) {
    const int wanted = setup.value & 0xff;
    if (wanted == m_configuration) {
      rc = LIBUSB_SUCCESS;  // already: usbfs would reset the interfaces for nothing
    } else {
      release_interfaces();
      rc = usb->set_configuration(m_handle, wanted);
      if (rc == LIBUSB_SUCCESS) {
        auto claimed = claim_interfaces();
        if (!claimed.ok()) {
          std::fprintf(stderr, "vmlaunch: %s\n", claimed.error().message.c_str());
          rc = LIBUSB_ERROR_IO;
        }
      }
    }
  } else if (setup.request_type == 0x01 && setup.request == kRequestSetInterface) {
    rc = usb->set_interface_alt_setting(m_handle, setup.index & 0xff, setup.value & 0xff);
  } else if (setup.request_type == 0x02 && setup.request == kRequestClearFeature && setup.value == 0) {
    rc = usb->clear_halt(m_handle, static_cast<unsigned char>(setup.index & 0xff));
  } else {
    return false;
  }
  TransferResult result;
  result.status = rc == LIBUSB_SUCCESS           ? TransferResult::Status::Ok
                  : rc == LIBUSB_ERROR_NO_DEVICE ? TransferResult::Status::Disconnected
                  : rc == LIBUSB_ERROR_PIPE      ? TransferResult::Status::Stall
                                                 : TransferResult::Status::Error;
  if (rc == LIBUSB_ERROR_NO_DEVICE) gone();
  done(transfer, result);
  return true;
}

void UsbHostDevice::submit(Transfer transfer, TransferDone done) {
  if (m_gone) return done(transfer, {TransferResult::Status::Disconnected, 0});
  if (transfer.type == hw::usb::EndpointType::Isochronous)
    return done(transfer, {TransferResult::Status::Error, 0});
  if (transfer.type == hw::usb::EndpointType::Control && intercept(transfer, done)) return;

  auto in_flight = std::make_unique<InFlight>();
  in_flight->device = weak_from_this();
  libusb_transfer* t = usb->alloc_transfer(0);
  if (!t) return done(transfer, {TransferResult::Status::Error, 0});
  const uint8_t endpoint = transfer.endpoint;
  if (transfer.type == hw::usb::EndpointType::Control) {
    const hw::usb::SetupPacket& s = transfer.setup;
    in_flight->buffer.resize(LIBUSB_CONTROL_SETUP_SIZE + transfer.data.size());
    libusb_fill_control_setup(in_flight->buffer.data(), s.request_type, s.request, s.value, s.index,
                              static_cast<uint16_t>(transfer.data.size()));
    if (!s.in())
      std::memcpy(in_flight->buffer.data() + LIBUSB_CONTROL_SETUP_SIZE, transfer.data.data(),
                  transfer.data.size());
    libusb_fill_control_transfer(t, m_handle, in_flight->buffer.data(), &UsbHostDevice::completed, nullptr,
                                 0);
  } else {
    in_flight->buffer = transfer.data;  // IN: sized to what the guest asked for
    auto fill = transfer.type == hw::usb::EndpointType::Bulk ? libusb_fill_bulk_transfer
                                                             : libusb_fill_interrupt_transfer;
    fill(t, m_handle, endpoint, in_flight->buffer.data(), static_cast<int>(in_flight->buffer.size()),
         &UsbHostDevice::completed, nullptr, 0);
  }
  in_flight->transfer = std::move(transfer);
  in_flight->done = std::move(done);
  InFlight* raw = in_flight.release();
  t->user_data = raw;
  std::unique_lock guard(m_lock);
  const int rc = usb->submit_transfer(t);
  if (rc != LIBUSB_SUCCESS) {
    guard.unlock();
    std::unique_ptr<InFlight> back(raw);
    usb->free_transfer(t);
    if (rc == LIBUSB_ERROR_NO_DEVICE) gone();
    back->done(back->transfer, {rc == LIBUSB_ERROR_NO_DEVICE ? TransferResult::Status::Disconnected
                                                             : TransferResult::Status::Error,
                                0});
    return;
  }
  m_in_flight[endpoint] = t;
}

void UsbHostDevice::completed(libusb_transfer* t) {
  std::unique_ptr<InFlight> in_flight(static_cast<InFlight*>(t->user_data));
  std::shared_ptr<UsbHostDevice> self = in_flight->device.lock();
  Transfer& transfer = in_flight->transfer;
  TransferResult result;
  switch (t->status) {
    case LIBUSB_TRANSFER_COMPLETED:
      result.status = TransferResult::Status::Ok;
      break;
    case LIBUSB_TRANSFER_STALL:
      result.status = TransferResult::Status::Stall;
      break;
    case LIBUSB_TRANSFER_NO_DEVICE:
      result.status = TransferResult::Status::Disconnected;
      break;
    case LIBUSB_TRANSFER_CANCELLED:
      result.status = TransferResult::Status::Cancelled;
      break;
    case LIBUSB_TRANSFER_OVERFLOW:
      result.status = TransferResult::Status::Babble;
      break;
    default:
      result.status = TransferResult::Status::Error;
      break;
  }
  const size_t actual = std::min<size_t>(t->actual_length > 0 ? t->actual_length : 0, transfer.data.size());
  const bool in =
      transfer.type == hw::usb::EndpointType::Control ? transfer.setup.in() : (transfer.endpoint & 0x80);
  const size_t offset = transfer.type == hw::usb::EndpointType::Control ? LIBUSB_CONTROL_SETUP_SIZE : 0;
  if (in && actual) std::memcpy(transfer.data.data(), in_flight->buffer.data() + offset, actual);
  result.length = actual;
  if (self) {
    std::lock_guard guard(self->m_lock);
    auto it = self->m_in_flight.find(transfer.endpoint);
    if (it != self->m_in_flight.end() && it->second == t) self->m_in_flight.erase(it);
  }
  usb->free_transfer(t);
  if (self && result.status == TransferResult::Status::Disconnected) self->gone();
  in_flight->done(transfer, result);
}

void UsbHostDevice::gone() {
  if (m_gone.exchange(true)) return;
  std::function<void(bool)> presence;
  {
    std::lock_guard guard(m_lock);
    presence = m_presence;
  }
  std::fprintf(stderr, "vmlaunch: %s: unplugged on the host; the guest sees a disconnect\n", m_name.c_str());
  if (presence) presence(false);
}

// Our own poll rather than libusb_handle_events: usbfs reports an unplug as POLLHUP on the device's
// descriptor even when no transfer is in flight (libusb would only fail the transfers), and the
// guest must see the disconnect then too. POLLOUT: completed URBs to reap, which libusb does.
void UsbHostDevice::run_events() {
  bool watching = true;
  for (;;) {
    pollfd fds[2] = {{m_stop_event, POLLIN, 0}, {watching ? m_fd : -1, POLLOUT, 0}};
    if (::poll(fds, 2, -1) < 0) continue;  // EINTR
    if (fds[0].revents) return;
    if (!fds[1].revents) continue;
    timeval zero{0, 0};
    usb->handle_events_timeout(m_context, &zero);  // reaps; on an unplug fails what was in flight
    if (fds[1].revents & (POLLHUP | POLLERR)) {
      watching = false;
      gone();
    }
  }
}

}  // namespace passthrough
