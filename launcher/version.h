#pragma once

namespace launcher {
inline constexpr const char* kVersion = "0.1.0";
}
