// storeplaned's life: open storage, bootstrap the first admin token, (in --dev) seed a
// demo store, serve until SIGTERM, drain, and close storage cleanly. Prints, on stdout,
// "STOREPLANE_TOKEN=<token>" when a token is created and then "STOREPLANE_ADDR=<url>"
// once listening; everything else goes to the structured log on stderr.
#pragma once

#include <string>

#include "server/config.h"

namespace storeplane::server {

// Returns the process exit code: 0 after a clean shutdown, 1 on a start-up failure.
int RunDaemon(Config config);

// `storeplaned migrate [--from-sqlite PATH]`: applies pending PostgreSQL schema migrations
// (storage.driver must be postgres) and, with a path, copies an existing SQLite
// installation into the (empty) PostgreSQL database and verifies the copy. Exit code 0 on
// success, 1 on failure, 2 on misuse.
int RunMigrate(Config config, const std::string& from_sqlite);

}  // namespace storeplane::server
