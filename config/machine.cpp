#include "config/machine.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "config/checks.h"
#include "config/interpolate.h"
#include "config/merge.h"
#include "config/paths.h"
#include "config/schema.h"

namespace config {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxExtendsDepth = 16;
// Bounds on the whole extends graph of one run: distinct files, and values after merging (list items
// without an id are appended, so a diamond of bases can double a list at every level).
constexpr size_t kMaxExtendsFiles = 256;
constexpr size_t kMaxMergedValues = 100000;

// The number of values in `node`, counting stops once past `limit`.
size_t count_values(const Node& node, size_t limit, size_t count = 0) {
  ++count;
  if (node.is_map()) {
    for (const Node::Entry& entry : node.entries()) {
      if (count > limit) return count;
      count = count_values(entry.value, limit, count);
    }
  } else if (node.is_list()) {
    for (const Node& item : node.items()) {
      if (count > limit) return count;
      count = count_values(item, limit, count);
    }
  }
  return count;
}

// The first top-level key that no machine file could have written: too long, or with characters
// other than letters, digits, "$_.-" and spaces (spaces stay, for "did you mean" on typos).
const Node::Entry* first_unlike_key(const Node& document) {
  for (const Node::Entry& entry : document.entries()) {
    bool name = !entry.key.empty() && entry.key.size() <= 64;
    for (char c : entry.key)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '$' || c == '_' || c == '.' || c == '-' ||
            c == ' '))
        name = false;
    if (!name) return &entry;
  }
  return nullptr;
}

struct Loader {
  Diagnostics& diagnostics;
  std::vector<std::string>& files;
  const Environment& env;
  std::vector<std::string> stack;  // canonical paths of the files being loaded, outermost first
  // Every file loaded in this run, by canonical path, with its result (nullopt: unreadable or
  // invalid, already reported). A file several others extend is read and merged once: 15 files
  // each extending the next four used to take 4^14 loads.
  std::map<std::string, std::optional<Node>> loaded_files;

  std::string identity(const std::string& path) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(path, ec);
    return ec ? fs::path(path).lexically_normal().string() : canonical.string();
  }

  // Loads `path` and everything it extends. `from` is the extends entry that named it (unknown
  // location for the machine file itself). Returns nullopt when the file could not be read or parsed.
  std::optional<Node> load(const std::string& path, const Node* from, bool* readable) {
    std::string error;
    // `-` is standard input, for the machine file only: an extends entry "-" names a file.
    std::optional<std::string> text = !from && path == "-" ? read_stdin(&error) : read_file(path, &error);
    if (!text) {
      if (from) {
        diagnostics.push_back(Diagnostic::error(from->location(), "extends",
                                                "cannot read \"" + path + "\": " + error,
                                                "extends paths are relative to the file that names them"));
      } else {
        diagnostics.push_back(Diagnostic::error(Location{path, 0, 0}, {}, "cannot read file: " + error));
        if (readable) *readable = false;
      }
      return std::nullopt;
    }
    files.push_back(path);
    ParseResult parsed = parse_string(*text, path, format_for_path(path));
    diagnostics.insert(diagnostics.end(), parsed.diagnostics.begin(), parsed.diagnostics.end());
    if (!parsed.ok()) return std::nullopt;
    Node document = std::move(parsed.node);
    if (!document.is_map()) return document;  // the schema says "expected object"
    if (const Node::Entry* odd = first_unlike_key(document)) {
      // /etc/shadow parses as a map of "root:$6$...": its lines would come back in "unknown key"
      // errors. A file whose top-level keys are not names is not a machine file; say only that.
      diagnostics.push_back(Diagnostic::error(
          odd->key_location, {}, "this is not a vmlaunch machine file (a top-level key is not a name)",
          from ? "check the extends entry at " + from->location().to_string() : "check the file name"));
      return std::nullopt;
    }

    const Node::Entry* extends = document.find_entry("extends");
    if (!extends) return document;
    std::vector<const Node*> bases;
    if (extends->value.is_string()) {
      bases.push_back(&extends->value);
    } else if (extends->value.is_list()) {
      for (const Node& item : extends->value.items()) {
        if (item.is_string())
          bases.push_back(&item);
        else
          diagnostics.push_back(Diagnostic::error(item.location(), "extends",
                                                  "extends entries are file names",
                                                  "write extends: [base.yaml, ...]"));
      }
    } else {
      diagnostics.push_back(Diagnostic::error(extends->value.location(), "extends",
                                              "extends must be a file name or a list of file names",
                                              "write extends: [base.yaml, ...]"));
    }

    stack.push_back(identity(path));
    std::optional<Node> merged;
    for (const Node* base : bases) {
      // ${VAR}, ${VAR:-default} and ~/ mean in extends what they mean in every other path: the
      // entry is expanded first, then resolved against the file that names it.
      std::string error, hint;
      std::optional<std::string> expanded = expand_variables(base->as_string(), env, error, hint);
      if (!expanded) {
        diagnostics.push_back(Diagnostic::error(base->location(), "extends", error, hint));
        continue;
      }
      if (expanded->empty()) {
        diagnostics.push_back(Diagnostic::error(base->location(), "extends", "empty file name",
                                                "write extends: [base.yaml, ...]"));
        continue;
      }
      std::string base_path = path_next_to(*expanded, path == "-" ? std::string() : path, env);
      const std::string id = identity(base_path);
      if (std::find(stack.begin(), stack.end(), id) != stack.end()) {
        std::string cycle;
        for (const std::string& file : stack) cycle += fs::path(file).filename().string() + " -> ";
        cycle += fs::path(id).filename().string();
        diagnostics.push_back(Diagnostic::error(base->location(), "extends", "extends cycle: " + cycle,
                                                "a file cannot extend itself, directly or through others"));
        continue;
      }
      if (stack.size() >= kMaxExtendsDepth) {
        diagnostics.push_back(Diagnostic::error(
            base->location(), "extends", "extends chain deeper than " + std::to_string(kMaxExtendsDepth)));
        continue;
      }
      auto cached = loaded_files.find(id);
      if (cached == loaded_files.end()) {
        if (loaded_files.size() >= kMaxExtendsFiles) {
          diagnostics.push_back(
              Diagnostic::error(base->location(), "extends",
                                "extends names more than " + std::to_string(kMaxExtendsFiles) + " files"));
          break;
        }
        cached = loaded_files.emplace(id, load(base_path, base, nullptr)).first;
      }
      const std::optional<Node>& loaded = cached->second;
      if (!loaded) continue;
      if (!loaded->is_map()) {
        diagnostics.push_back(
            Diagnostic::error(loaded->location(), {}, "a file used in extends must hold a map of settings"));
        continue;
      }
      merged = merged ? merge_nodes(*merged, *loaded) : *loaded;
      if (count_values(*merged, kMaxMergedValues) > kMaxMergedValues) {
        diagnostics.push_back(Diagnostic::error(
            base->location(), "extends",
            "the files extended expand to more than " + std::to_string(kMaxMergedValues) + " values",
            "list items without an id are appended at every level of extends; extend fewer files"));
        merged.reset();
        break;
      }
    }
    stack.pop_back();

    document.erase("extends");
    if (!merged) return document;
    return merge_nodes(*merged, document);
  }
};

}  // namespace

void sort_diagnostics(Diagnostics& diagnostics) {
  auto key = [](const Diagnostic& d) {
    return std::tie(d.location.file, d.location.line, d.location.column, d.path, d.message);
  };
  std::stable_sort(diagnostics.begin(), diagnostics.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
  diagnostics.erase(std::unique(diagnostics.begin(), diagnostics.end(),
                                [](const Diagnostic& a, const Diagnostic& b) {
                                  return a.severity == b.severity && a.location.file == b.location.file &&
                                         a.location.line == b.location.line &&
                                         a.location.column == b.location.column && a.path == b.path &&
                                         a.message == b.message && a.hint == b.hint;
                                }),
                    diagnostics.end());
}

Diagnostics check_machine(const Node& document) {
  Diagnostics out = validate_schema(document);
  // A value the schema already rejected is not reported again by a semantic check: each thing once.
  std::set<std::string> flagged;
  for (const Diagnostic& d : out) flagged.insert(d.location.to_string());
  for (Diagnostics more :
       {check_sizes(document), check_machine_kind(document), check_device_ids(document),
        check_references(document), check_backend_options(document), check_accel_options(document)})
    for (Diagnostic& d : more)
      if (!d.location.known() || !flagged.count(d.location.to_string())) out.push_back(std::move(d));
  sort_diagnostics(out);
  return out;
}

Diagnostics process_document(Node& document, const Environment& env) {
  Diagnostics out = interpolate(document, env);
  resolve_paths(document, env);
  Diagnostics checks = check_machine(document);
  out.insert(out.end(), checks.begin(), checks.end());
  sort_diagnostics(out);
  return out;
}

LoadResult load_machine(const std::string& path, const Environment& env) {
  LoadResult result;
  Loader loader{result.diagnostics, result.files, env, {}, {}};
  std::optional<Node> document = loader.load(path, nullptr, &result.readable);
  if (document) {
    result.document = std::move(*document);
    Diagnostics more = process_document(result.document, env);
    result.diagnostics.insert(result.diagnostics.end(), more.begin(), more.end());
  }
  sort_diagnostics(result.diagnostics);
  return result;
}

}  // namespace config
