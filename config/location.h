// Where a piece of configuration was written: file, 1-based line and column.
#pragma once

#include <cstdint>
#include <string>

namespace config {

struct Location {
  std::string file;
  uint32_t line = 0;    // 0: not from a file (defaults, merged values with no source)
  uint32_t column = 0;

  bool known() const { return line != 0; }
  // "machine.yaml:12:5", or the file name alone when line is unknown.
  std::string to_string() const {
    if (!known()) return file;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
  }
};

}  // namespace config
