#include "agent/magento_output.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace storeplane::agent {
namespace {

std::string_view Trim(std::string_view text) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

// "| a | b |" -> {"a", "b"}; lines that are not table rows give nothing.
std::vector<std::string_view> TableCells(std::string_view line) {
  line = Trim(line);
  if (line.size() < 2 || line.front() != '|' || line.back() != '|') return {};
  line = line.substr(1, line.size() - 2);
  std::vector<std::string_view> cells;
  while (true) {
    const auto bar = line.find('|');
    cells.push_back(Trim(line.substr(0, bar)));
    if (bar == std::string_view::npos) break;
    line.remove_prefix(bar + 1);
  }
  return cells;
}

bool IsIndexerId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

// "Reindex required" -> kReindexRequired; only the four statuses Magento prints.
std::optional<core::IndexerStatus> IndexerStatusFromText(std::string_view text) {
  if (text == "Ready") return core::IndexerStatus::kReady;
  if (text == "Reindex required") return core::IndexerStatus::kReindexRequired;
  if (text == "Processing") return core::IndexerStatus::kProcessing;
  if (text == "Suspended") return core::IndexerStatus::kSuspended;
  return std::nullopt;
}

}  // namespace

Result<std::vector<core::CacheType>> ParseFlushedCacheTypes(std::string_view output) {
  std::vector<core::CacheType> flushed;
  bool header_seen = false;
  for (const auto raw : Lines(output)) {
    const auto line = Trim(raw);
    if (!header_seen) {
      header_seen = line == "Flushed cache types:";
      continue;
    }
    const auto type = core::ParseCacheType(line);
    if (type && std::find(flushed.begin(), flushed.end(), *type) == flushed.end()) flushed.push_back(*type);
  }
  if (!header_seen) return Error::Invalid("no 'Flushed cache types:' line in the output");
  return flushed;
}

Result<std::vector<core::IndexerState>> ParseIndexerTable(std::string_view output) {
  std::size_t id_column = 0;
  std::size_t status_column = 2;
  std::vector<core::IndexerState> indexers;
  std::set<std::string, std::less<>> seen;
  for (const auto line : Lines(output)) {
    const auto cells = TableCells(line);
    if (cells.empty()) continue;
    const auto id_at = std::find(cells.begin(), cells.end(), "Indexer Id");
    const auto status_at = std::find(cells.begin(), cells.end(), "Status");
    if (id_at != cells.end() && status_at != cells.end()) {  // the header row names the columns
      id_column = static_cast<std::size_t>(id_at - cells.begin());
      status_column = static_cast<std::size_t>(status_at - cells.begin());
      continue;
    }
    if (cells.size() <= std::max(id_column, status_column)) continue;
    const auto id = cells[id_column];
    const auto status = IndexerStatusFromText(cells[status_column]);
    if (!IsIndexerId(id) || !status || seen.contains(id)) continue;
    seen.emplace(id);
    indexers.push_back(core::IndexerState{std::string(id), *status});
  }
  if (indexers.empty()) return Error::Invalid("no indexer row in the output");
  return indexers;
}

Result<std::string> ParseMagentoVersion(std::string_view output) {
  constexpr std::string_view kPrefix = "Magento CLI ";
  for (const auto raw : Lines(output)) {
    auto line = Trim(raw);
    const auto at = line.find(kPrefix);
    if (at == std::string_view::npos) continue;
    line.remove_prefix(at + kPrefix.size());
    const auto end = line.find_first_of(" \t");
    std::string version(line.substr(0, end));
    if (core::ValidateMagentoVersion(version).ok()) return version;
  }
  return Error::Invalid("no 'Magento CLI <version>' line in the output");
}

std::optional<std::string> ParseReleaseMarker(std::string_view contents) {
  const auto release = Trim(contents);
  if (!core::ValidateReleaseId(release).ok()) return std::nullopt;
  return std::string(release);
}

}  // namespace storeplane::agent
