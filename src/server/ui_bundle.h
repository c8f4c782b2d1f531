// The web UI's files (ui/ in the source tree), embedded into storeplaned at build time by
// cmake/embed_files.cmake: no runtime file path, so what is served is what was built.
// Read-only after static initialisation; safe from any thread.
#pragma once

#include <string_view>
#include <vector>

namespace storeplane::server {

struct EmbeddedFile {
  std::string_view path;    // relative to ui/, e.g. "index.html", "pages/fleet.js"
  std::string_view sha256;  // hex digest of the bytes, the basis of the ETag
  std::string_view bytes;
};

// Every file, ordered by path.
const std::vector<EmbeddedFile>& UiFiles();

}  // namespace storeplane::server
