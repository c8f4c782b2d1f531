#include "agent/credential_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace storeplane::agent {
namespace {

constexpr std::size_t kMaxSecretFileBytes = 4096;

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) text.remove_suffix(1);
  return text;
}

// kNotFound when the file does not exist.
Result<std::string> ReadSmallFile(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return Error::NotFound(what + " " + path + " does not exist");
    return Error::Internal("cannot open " + what + " " + path + ": " + std::strerror(errno));
  }
  std::string text;
  std::array<char, 1024> buffer{};
  while (text.size() <= kMaxSecretFileBytes) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      return Error::Internal("cannot read " + what + " " + path + ": " + reason);
    }
    if (n == 0) break;
    text.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (text.size() > kMaxSecretFileBytes) return Error::Invalid(what + " " + path + " is too large");
  return text;
}

void SyncDirectoryOf(const std::string& path) {
  auto dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

bool IsPlausibleSecret(std::string_view secret) {
  if (secret.empty() || secret.size() > 512) return false;
  for (const char c : secret) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

Result<std::optional<std::string>> ReadCredentialFile(const std::string& path) {
  auto text = ReadSmallFile(path, "credential file");
  if (!text.ok()) {
    if (text.error().code == ErrorCode::kNotFound) return std::optional<std::string>();
    return text.error();
  }
  const auto credential = Trim(*text);
  if (!IsPlausibleSecret(credential)) return Error::Invalid("credential file " + path + " does not hold a credential");
  return std::optional<std::string>(std::string(credential));
}

Status WriteCredentialFile(const std::string& path, const std::string& credential) {
  if (!IsPlausibleSecret(credential)) return Error::Invalid("refusing to store a malformed credential");
  const std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 && errno == EEXIST) {  // left behind by a crash during an earlier enrollment
    ::unlink(temp.c_str());
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  }
  if (fd < 0) return Error::Internal("cannot create " + temp + ": " + std::strerror(errno));
  const std::string text = credential + "\n";
  std::string_view left = text;
  std::string problem;
  if (::fchmod(fd, 0600) != 0) problem = std::strerror(errno);
  while (problem.empty() && !left.empty()) {
    const ssize_t n = ::write(fd, left.data(), left.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      problem = std::strerror(errno);
      break;
    }
    left.remove_prefix(static_cast<std::size_t>(n));
  }
  if (problem.empty() && ::fsync(fd) != 0) problem = std::strerror(errno);
  ::close(fd);
  if (problem.empty() && ::rename(temp.c_str(), path.c_str()) != 0) problem = std::strerror(errno);
  if (!problem.empty()) {
    ::unlink(temp.c_str());
    return Error::Internal("cannot write the credential file " + path + ": " + problem);
  }
  SyncDirectoryOf(path);
  return Status::Ok();
}

Result<std::string> ReadEnrollmentToken(const std::string& token_file, const char* env_value) {
  std::string token;
  if (!token_file.empty()) {
    auto text = ReadSmallFile(token_file, "enrollment token file");
    if (!text.ok()) return text.error();
    token = std::string(Trim(*text));
  } else if (env_value != nullptr) {
    token = std::string(Trim(env_value));
  }
  if (token.empty()) {
    return Error::NotFound(std::string("no enrollment token: set enrollment_token_file or ") + kEnrollmentTokenEnv);
  }
  if (!IsPlausibleSecret(token)) return Error::Invalid("the enrollment token is malformed");
  return token;
}

}  // namespace storeplane::agent
