// Turns one delivered operation into its report: consults the journal (never run twice),
// refuses what the local allow-list does not name, maps the operation to its fixed argv,
// runs it through a CommandRunner and parses the output into the closed result. Raw output
// stays here; only validated result fields and failure codes leave.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "agent/command_runner.h"
#include "agent/operation_journal.h"
#include "core/operation.h"
#include "protocol/agent_wire.h"

namespace storeplane::agent {

// [php_binary, "bin/magento", ...] for the operation; empty for health.probe (no command).
std::vector<std::string> ArgvFor(const AgentConfig& config, core::OperationName name,
                                 const core::OperationParams& params);

// A failure report with one of core::FailureCodes().
protocol::OperationReport FailureReport(std::string code, std::int64_t duration_ms = 0);

struct Execution {
  bool stopped = false;  // the agent is stopping: the command was killed, nothing to report
  protocol::OperationReport report;
};

class OperationExecutor {
 public:
  using CheckRunner = std::function<std::vector<core::CheckResult>()>;

  // `journal` may be null (no de-duplication; for tests of Execute). `checks` runs the health
  // checks for health.probe; by default RunHealthChecks(config).
  OperationExecutor(const AgentConfig& config, CommandRunner& runner, OperationJournal* journal,
                    CheckRunner checks = {});

  // The encoded report body to POST for a delivered operation, or nothing when the agent
  // stopped while it ran (its journal entry stays "started": after a restart a redelivery
  // is reported failed/"interrupted" and it is not run again).
  std::optional<std::string> Handle(const protocol::OperationEnvelope& operation);

  // Runs the operation (allow-list and journal not consulted).
  Execution Execute(const protocol::OperationEnvelope& operation);

 private:
  Execution RunCommand(const protocol::OperationEnvelope& operation);

  const AgentConfig& config_;
  CommandRunner& runner_;
  OperationJournal* journal_;
  CheckRunner checks_;
};

}  // namespace storeplane::agent
