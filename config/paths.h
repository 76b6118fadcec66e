// Relative file paths in a machine file mean "relative to the file that wrote them", so a base file
// in another directory can name its own kernel. The schema marks path fields (x-vmlaunch-path).
#pragma once

#include <string>

#include "config/environment.h"
#include "config/node.h"

namespace config {

// `value` as written in `file`: absolute paths stay, "~/x" uses $HOME, others are joined to the
// absolute directory of `file` (a relative `file` is taken from the current directory). The result
// is absolute unless `file` is empty.
std::string resolve_path(const std::string& value, const std::string& file, const Environment& env);

// Like resolve_path, but a relative `file` gives a relative result: for files vmlaunch reads itself
// (extends targets), whose names then appear in messages as the user wrote them, relative to the
// current directory, instead of as long absolute paths.
std::string path_next_to(const std::string& value, const std::string& file, const Environment& env);

// Rewrites every path-valued string in the document (fields marked x-vmlaunch-path in the schema,
// except the names listed in x-vmlaunch-names, such as firmware: opensbi).
void resolve_paths(Node& document, const Environment& env);

}  // namespace config
