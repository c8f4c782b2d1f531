// Parsers that turn bin/magento's output into the closed result fields of the catalog.
// They keep only values that fit a narrow pattern (cache type names, indexer ids and
// statuses, a version number); titles, free text and anything else in the output is dropped.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/operation.h"
#include "core/result.h"

namespace storeplane::agent {

// cache:flush prints "Flushed cache types:" then one type per line. Known type names after
// that line, each once, in output order; other lines are ignored. kInvalidArgument when the
// header line is missing.
Result<std::vector<core::CacheType>> ParseFlushedCacheTypes(std::string_view output);

// indexer:status (Magento 2.4) prints a table:
//   | Indexer Id | Title | Status | Update On | Schedule Status | Schedule Updated |
// Rows whose id matches [a-z0-9_]{1,64} and whose status is Ready, Reindex required,
// Processing or Suspended become {id, status}, each id once; other rows and lines are
// skipped. kInvalidArgument when no row fits.
Result<std::vector<core::IndexerState>> ParseIndexerTable(std::string_view output);

// "Magento CLI 2.4.6-p3" -> "2.4.6-p3" (checked by core::ValidateMagentoVersion).
Result<std::string> ParseMagentoVersion(std::string_view output);

// A release marker's contents, trimmed, when it is a valid release id; otherwise nothing.
std::optional<std::string> ParseReleaseMarker(std::string_view contents);

}  // namespace storeplane::agent
