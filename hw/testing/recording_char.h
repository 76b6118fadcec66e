// A character backend for device and machine tests: keeps everything the device wrote, and the
// receiver the device attached (tests push input through it).
#pragma once

#include <span>
#include <string>

#include "backends/chardev.h"

namespace hw::testing {

struct RecordingChar : backends::CharBackend {
  std::string output;
  backends::CharReceiver* receiver = nullptr;
  void write(std::span<const uint8_t> data) override { output.append(data.begin(), data.end()); }
  void attach(backends::CharReceiver* r) override { receiver = r; }
};

}  // namespace hw::testing
