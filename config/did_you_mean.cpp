#include "config/did_you_mean.h"

#include <algorithm>
#include <cctype>

namespace config {

size_t edit_distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  // Names in config files are short; comparing a megabyte of fuzz input against them is pointless.
  if (word.empty() || word.size() > 256) return std::nullopt;
  const size_t limit = std::max<size_t>(1, word.size() / 3);
  std::optional<std::string> best;
  size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    if (candidate == word) continue;
    size_t distance = edit_distance(word, candidate);
    // A candidate that extends the word ("virtio-blk" -> "virtio-blk-pci") is a good guess even when
    // the suffix is longer than the typo limit.
    bool prefix =
        candidate.size() > word.size() && candidate.compare(0, word.size(), word) == 0 && word.size() >= 3;
    if (prefix) distance = std::min(distance, limit);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

std::string suggestion_hint(std::string_view word, const std::vector<std::string>& candidates) {
  if (auto match = closest_match(word, candidates)) return "did you mean \"" + *match + "\"?";
  if (candidates.empty()) return {};
  std::string known = "known: ";
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (i) known += ", ";
    known += candidates[i];
  }
  return known;
}

}  // namespace config
