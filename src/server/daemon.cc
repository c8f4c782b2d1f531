#include "server/daemon.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/store.h"
#include "db/sqlite_repository.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/http_server.h"
#include "server/logging.h"

namespace storeplane::server {
namespace {

namespace fs = std::filesystem;

Status EnsureDataDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error::Invalid("cannot create data_dir " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  return Status::Ok();
}

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::Invalid("cannot read admin token file " + path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (!BearerToken("Bearer " + token)) return Error::Invalid("admin token file " + path + " holds no valid token");
  if (token.size() < 20) return Error::Invalid("admin token in " + path + " is too short (at least 20 characters)");
  return token;
}

Status WriteTokenFile(const std::string& path, const std::string& token) {
  const auto tmp = path + ".tmp";
  ::umask(077);
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << token << "\n";
    if (!out.flush()) return Error::Invalid("cannot write admin token file " + path);
  }
  ::chmod(tmp.c_str(), 0600);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Error::Invalid("cannot write admin token file " + path + ": " + ec.message());
  return Status::Ok();
}

// On a database with no principals, creates the bootstrap admin. Its token comes from
// admin_token_file when that file exists; otherwise it is generated (and written to the
// file when one is configured) and printed once on stdout.
Status Bootstrap(db::Repository& repo, const Config& config, std::int64_t now_ms) {
  auto count = repo.CountPrincipals();
  if (!count.ok()) return count.error();
  if (*count > 0) return Status::Ok();
  std::string token;
  bool generated = false;
  if (!config.admin_token_file.empty() && fs::exists(config.admin_token_file)) {
    auto read = ReadTokenFile(config.admin_token_file);
    if (!read.ok()) return read.error();
    token = std::move(*read);
  } else {
    token = GenerateToken();
    generated = true;
    if (!config.admin_token_file.empty()) SP_RETURN_IF_ERROR(WriteTokenFile(config.admin_token_file, token));
  }
  db::Principal admin{"admin", "bootstrap administrator", "operator", {"admin"}, now_ms};
  db::TokenRecord record{Sha256Hex(token), admin.id, "bootstrap admin token", now_ms, std::nullopt};
  SP_RETURN_IF_ERROR(repo.InsertPrincipalWithToken(admin, record));
  log::Info("bootstrap admin created",
            {{"principal", admin.id}, {"token_source", generated ? "generated" : "admin_token_file"}});
  if (generated) std::cout << "STOREPLANE_TOKEN=" << token << std::endl;
  return Status::Ok();
}

Status SeedDemoStore(db::Repository& repo, const Config& config, std::int64_t now_ms) {
  core::StoreRegistration reg{"demo", "Demo store", "development", "shared", {{"demo", "true"}}};
  if (!config.environments.names.contains("development")) reg.environment = *config.environments.names.begin();
  auto store = core::NewStore(reg, config.environments, now_ms);
  if (!store.ok()) return store.error();
  auto inserted = repo.InsertStore(*store, std::nullopt);
  if (!inserted.ok() && inserted.error().code != ErrorCode::kAlreadyExists) return inserted.error();
  return Status::Ok();
}

int Fail(const std::string& what, const Error& error) {
  log::Error(what, {{"detail", error.message}});
  std::cerr << "storeplaned: " << what << ": " << error.message << std::endl;
  return 1;
}

}  // namespace

int RunDaemon(Config config) {
  log::Init(config.log_level);
  std::string dev_dir;
  if (config.dev) {
    char pattern[] = "/tmp/storeplane-dev-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return Fail("cannot create a temporary directory", Error::Internal("mkdtemp"));
    dev_dir = pattern;
    config.data_dir = dev_dir;
    config.storage.sqlite_path.clear();
  }
  if (auto s = Validate(config); !s.ok()) return Fail("invalid configuration", s.error());
  if (auto s = EnsureDataDir(config.data_dir); !s.ok()) return Fail("cannot prepare the data directory", s.error());

  db::SqliteOptions options;
  options.path = config.SqlitePath();
  options.group_commit = config.storage.group_commit;
  options.read_connections = config.storage.read_connections;
  auto repo = db::OpenSqliteRepository(options);
  if (!repo.ok()) return Fail("cannot open storage", repo.error());

  const auto now = SystemNowMs();
  if (auto s = Bootstrap(**repo, config, now); !s.ok()) return Fail("cannot bootstrap the admin principal", s.error());
  if (config.dev) {
    if (auto s = SeedDemoStore(**repo, config, now); !s.ok()) return Fail("cannot seed the demo store", s.error());
  }

  int code = 0;
  {
    App app(Services{**repo, config});
    HttpServer server(config, app);
    if (auto s = server.Listen(); !s.ok()) return Fail("cannot start the server", s.error());
    server.Run([&] {
      log::Info("listening", {{"url", server.url()},
                              {"data_dir", config.data_dir},
                              {"dev", config.dev},
                              {"group_commit", config.storage.group_commit}});
      std::cout << "STOREPLANE_ADDR=" << server.url() << std::endl;
    });
  }
  repo->reset();  // drains the writer and closes the database
  if (!dev_dir.empty()) {
    std::error_code ec;
    fs::remove_all(dev_dir, ec);
  }
  log::Info("exited cleanly");
  log::Flush();
  return code;
}

}  // namespace storeplane::server
