// Parsing one YAML, TOML or JSON text into the document model. No file system access beyond
// read_file/parse_file, no extends, no interpolation: those are machine.h's job.
// Contract: never throws and never crashes on any input; problems come back as diagnostics.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/diagnostic.h"
#include "config/node.h"

namespace config {

struct ParseResult {
  Node node;                // the document (Null when parsing failed)
  Diagnostics diagnostics;  // parse errors, with the location the parser stopped at
  bool ok() const { return !has_errors(diagnostics); }
};

enum class Format { Yaml, Toml };

// `file_name` is only used for locations. Plain YAML scalars follow the YAML 1.2 core schema
// (512 -> integer, 1.5 -> float, true -> boolean, ~ -> null); quoted scalars are strings.
ParseResult parse_yaml_string(std::string_view text, const std::string& file_name);
ParseResult parse_toml_string(std::string_view text, const std::string& file_name);
ParseResult parse_string(std::string_view text, const std::string& file_name, Format format);

// What a plain (unquoted) YAML scalar means under the core schema: "512" -> integer, "true" ->
// boolean, "~" -> null, "1.5" -> float, anything else a string.
Node resolve_yaml_scalar(const std::string& text, Location at = {});

// .toml files are TOML; everything else (.yaml, .yml, .json) is YAML, a superset of JSON.
Format format_for_path(std::string_view path);

// The largest config, extends target or lock file read (machine files are a few KiB).
constexpr size_t kMaxFileBytes = size_t{16} << 20;

// Whole file contents, or nullopt when it cannot be read (missing, no permission, not a regular
// file, over kMaxFileBytes); `error` says which. Never blocks on a FIFO or reads a device.
std::optional<std::string> read_file(const std::string& path, std::string* error = nullptr);

// Standard input (`-` as the machine file), with the same size limit.
std::optional<std::string> read_stdin(std::string* error = nullptr);

}  // namespace config
