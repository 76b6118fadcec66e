// "Did you mean ...?" suggestions for misspelled keys, drivers and names.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace config {

// Optimal string alignment distance (Levenshtein plus adjacent transpositions), case-insensitive:
// "memroy" -> "memory" is one edit.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible typo (at most a third of
// the word's length, minimum 1, edits away). Ties go to the earlier candidate.
std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates);

// "did you mean \"x\"?" or, without a close match, "known: a, b, c" (empty when no candidates).
std::string suggestion_hint(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace config
