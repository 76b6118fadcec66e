// ${VAR} and ${VAR:-default} in string values, from an injectable environment.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/diagnostic.h"
#include "config/environment.h"
#include "config/node.h"

namespace config {

// Expands one string. Shell rules: ${VAR:-default} uses the default when VAR is unset or empty; $$ is
// a literal $; a $ not followed by { or $ stays as it is. On error returns nullopt and sets `error`
// (an unset variable without default, "${" without "}", a bad variable name) and `hint`.
std::optional<std::string> expand_variables(std::string_view text, const Environment& env, std::string& error,
                                            std::string& hint);

// Expands every string value in the document in place (keys are left alone). Each failure is one
// diagnostic at the string that holds it. A value that is exactly one reference ("${CPUS:-2}") in a
// field the schema types as integer, number or boolean takes that type ("2" -> 2), so numbers can
// come from the environment; strings written as such stay strings.
Diagnostics interpolate(Node& document, const Environment& env);

}  // namespace config
