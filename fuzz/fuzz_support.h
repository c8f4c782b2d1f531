// Helpers shared by the libFuzzer targets: splitting one input into fields, and a
// per-process temporary file for parsers that only read paths.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace storeplane::fuzz {

// Reads an input as a sequence of fields: a leading byte, then '\n'-or-'\0' separated
// pieces (so that seed files stay readable), then the rest.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}
  std::uint8_t Byte() {
    if (rest_.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  // Up to the next '\n' (consumed, not returned); the whole rest when there is none.
  std::string_view Line() {
    const auto end = rest_.find('\n');
    if (end == std::string_view::npos) {
      const auto all = rest_;
      rest_ = {};
      return all;
    }
    const auto line = rest_.substr(0, end);
    rest_.remove_prefix(end + 1);
    return line;
  }
  std::string_view Rest() {
    const auto all = rest_;
    rest_ = {};
    return all;
  }
  bool empty() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

// A file that belongs to this process (under $TMPDIR, or /dev/shm when it exists), rewritten
// on every call. Removed at exit.
class ScratchFile {
 public:
  explicit ScratchFile(const char* stem) {
    const char* dir = std::getenv("TMPDIR");
    std::string base = dir != nullptr && *dir != '\0' ? dir : "/tmp";
    if (::access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    path_ = base + "/storeplane-" + stem + "-" + std::to_string(::getpid()) + ".yaml";
  }
  ~ScratchFile() { std::remove(path_.c_str()); }
  const std::string& Write(std::string_view content) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (!content.empty() && std::fwrite(content.data(), 1, content.size(), f) != content.size()) std::abort();
    std::fclose(f);
    return path_;
  }

 private:
  std::string path_;
};

}  // namespace storeplane::fuzz
