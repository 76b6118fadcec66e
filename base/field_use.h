// Which settings of a machine file some code makes take effect, declared next to that code:
//   VML_CONSUMES("boot.dtb");                    // this file's code honours boot.dtb
//   VML_REFUSES("devices[].bootindex");          // this file's code refuses it at validate
// Paths follow the schema: map keys joined by '.', "[]" for list items, "*" for a map's entries.
// A path covers everything below it ("backends.block.*" covers its driver and options: the backend
// factory checks those itself). `vmlaunch internal consumers` lists them, and a test fails for any
// field of the schema that nothing consumes or refuses: no field without effect.
#pragma once

#include <vector>

namespace base {

struct FieldUse {
  const char* path;
  bool refused;  // refused at validate rather than honoured at run time
  const char* file;
  int line;
};

int register_field_use(FieldUse use);
const std::vector<FieldUse>& field_uses();

}  // namespace base

#define VML_FIELD_USE_CONCAT2(a, b) a##b
#define VML_FIELD_USE_CONCAT(a, b) VML_FIELD_USE_CONCAT2(a, b)
#define VML_CONSUMES(path)                                                           \
  [[maybe_unused]] static const int VML_FIELD_USE_CONCAT(vml_field_use_, __LINE__) = \
      ::base::register_field_use({path, false, __FILE__, __LINE__})
#define VML_REFUSES(path)                                                            \
  [[maybe_unused]] static const int VML_FIELD_USE_CONCAT(vml_field_use_, __LINE__) = \
      ::base::register_field_use({path, true, __FILE__, __LINE__})
