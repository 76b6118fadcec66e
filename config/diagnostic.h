// A problem found in a configuration, pointing at the user's text:
//   machine.yaml:12:5: devices[2].bus: unknown bus "pci.9" (known: pci.0, br1)
// Errors from every stage (load, schema, semantic checks, device graph) use this one type, so
// `validate`, `plan` and `up` report them the same way and all problems come out in one run.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/location.h"

namespace config {

// `text` with control characters (NUL, ESC, newlines, DEL) written as \0, \e, \n, \xNN: a
// message quotes the user's text, and a terminal must show it, not obey it.
inline std::string escape_control(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out += c;
      continue;
    }
    static const char kHex[] = "0123456789abcdef";
    switch (u) {
      case 0:
        out += "\\0";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case 0x1b:
        out += "\\e";
        break;
      default:
        out += std::string("\\x") + kHex[u >> 4] + kHex[u & 15];
    }
  }
  return out;
}

struct Diagnostic {
  enum class Severity { Error, Warning };

  Severity severity = Severity::Error;
  Location location;
  std::string path;     // "devices[2].bus"; empty for whole-file problems
  std::string message;  // what is wrong
  std::string hint;     // how to fix it ("did you mean \"memory\"?"); may be empty

  static Diagnostic error(Location at, std::string path, std::string message, std::string hint = {}) {
    return {Severity::Error, std::move(at), std::move(path), std::move(message), std::move(hint)};
  }
  static Diagnostic warning(Location at, std::string path, std::string message, std::string hint = {}) {
    return {Severity::Warning, std::move(at), std::move(path), std::move(message), std::move(hint)};
  }

  bool is_error() const { return severity == Severity::Error; }

  // "file:line:col: path: message (hint)"; warnings say "warning: " before the message. Control
  // characters are escaped in every part (see escape_control).
  std::string to_string() const {
    std::string text = location.to_string();
    if (!text.empty()) text += ": ";
    if (!path.empty()) text += path + ": ";
    if (severity == Severity::Warning) text += "warning: ";
    text += message;
    if (!hint.empty()) text += " (" + hint + ")";
    return escape_control(text);
  }
};

using Diagnostics = std::vector<Diagnostic>;

inline bool has_errors(const Diagnostics& diagnostics) {
  for (const Diagnostic& d : diagnostics)
    if (d.is_error()) return true;
  return false;
}

}  // namespace config
