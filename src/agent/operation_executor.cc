#include "agent/operation_executor.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "agent/agent_log.h"
#include "agent/health_checks.h"
#include "agent/magento_output.h"

namespace storeplane::agent {
namespace {

using core::OperationName;

constexpr int kDbStatusOutdatedExit = 2;  // setup:db:status: the schema or data needs setup:upgrade

bool FileExists(const std::string& path) {
  struct stat st = {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string_view CommandFailureCode(CommandOutcome outcome) {
  switch (outcome) {
    case CommandOutcome::kTimeout: return "timeout";
    case CommandOutcome::kOutputTooLarge: return "output_too_large";
    case CommandOutcome::kSpawnFailed: return "spawn_failed";
    case CommandOutcome::kStopped: return "interrupted";
    case CommandOutcome::kSignaled:
    case CommandOutcome::kExited: return "exit_nonzero";
  }
  return "exit_nonzero";
}

// Fills `result` from a command that exited with `exit_code`; a failure code otherwise.
std::optional<std::string> InterpretOutput(const AgentConfig& config, const protocol::OperationEnvelope& operation,
                                           int exit_code, const std::string& output, core::OperationResult& result) {
  if (operation.name == OperationName::kDbStatus) {
    if (exit_code == 0 || exit_code == kDbStatusOutdatedExit) {
      result.schema_up_to_date = exit_code == 0;
      return std::nullopt;
    }
    return "exit_nonzero";
  }
  if (exit_code != 0) return "exit_nonzero";
  switch (operation.name) {
    case OperationName::kMaintenanceEnable:
    case OperationName::kMaintenanceDisable: {
      const bool enable = operation.name == OperationName::kMaintenanceEnable;
      if (FileExists(config.MaintenanceFlagPath()) != enable) return "parse_error";
      result.maintenance = enable;
      return std::nullopt;
    }
    case OperationName::kCacheFlush: {
      auto flushed = ParseFlushedCacheTypes(output);
      if (!flushed.ok()) return "parse_error";
      const auto& expected =
          operation.params.cache_types.empty() ? core::AllCacheTypes() : operation.params.cache_types;
      const std::set<core::CacheType> got(flushed->begin(), flushed->end());
      if (got != std::set<core::CacheType>(expected.begin(), expected.end())) return "parse_error";
      result.flushed = expected;
      return std::nullopt;
    }
    case OperationName::kIndexerStatus: {
      auto indexers = ParseIndexerTable(output);
      if (!indexers.ok()) return "parse_error";
      result.indexers = std::move(indexers).value();
      return std::nullopt;
    }
    case OperationName::kReleaseReport: {
      auto version = ParseMagentoVersion(output);
      if (!version.ok()) return "parse_error";
      result.magento_version = std::move(version).value();
      result.release = ReadReleaseMarker(config.ReleaseMarkerPath());
      return std::nullopt;
    }
    case OperationName::kHealthProbe:
    case OperationName::kDbStatus: break;
  }
  return "parse_error";
}

}  // namespace

std::vector<std::string> ArgvFor(const AgentConfig& config, OperationName name, const core::OperationParams& params) {
  std::vector<std::string> argv = {config.php_binary, "bin/magento"};
  switch (name) {
    case OperationName::kHealthProbe: return {};
    case OperationName::kMaintenanceEnable: argv.emplace_back("maintenance:enable"); break;
    case OperationName::kMaintenanceDisable: argv.emplace_back("maintenance:disable"); break;
    case OperationName::kCacheFlush:
      argv.emplace_back("cache:flush");
      for (const auto type : params.cache_types) argv.emplace_back(core::ToString(type));
      break;
    case OperationName::kIndexerStatus: argv.emplace_back("indexer:status"); break;
    case OperationName::kDbStatus: argv.emplace_back("setup:db:status"); break;
    case OperationName::kReleaseReport: argv.emplace_back("--version"); break;
  }
  return argv;
}

protocol::OperationReport FailureReport(std::string code, std::int64_t duration_ms) {
  protocol::OperationReport report;
  report.succeeded = false;
  report.code = std::move(code);
  report.duration_ms = duration_ms;
  return report;
}

OperationExecutor::OperationExecutor(const AgentConfig& config, CommandRunner& runner, OperationJournal* journal,
                                     CheckRunner checks)
    : config_(config), runner_(runner), journal_(journal), checks_(std::move(checks)) {
  if (!checks_) checks_ = [this] { return RunHealthChecks(config_); };
}

Execution OperationExecutor::Execute(const protocol::OperationEnvelope& operation) {
  Execution execution;
  if (!core::ValidateParams(operation.name, operation.params).ok()) {
    execution.report = FailureReport("refused_unknown");
    return execution;
  }
  if (operation.name == OperationName::kHealthProbe) {
    const auto start = std::chrono::steady_clock::now();
    core::OperationResult result;
    result.checks = checks_();
    execution.report.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    if (!core::ValidateResult(operation.name, result).ok()) {
      execution.report = FailureReport("parse_error", execution.report.duration_ms);
      return execution;
    }
    execution.report.succeeded = true;
    execution.report.result = std::move(result);
    return execution;
  }
  return RunCommand(operation);
}

Execution OperationExecutor::RunCommand(const protocol::OperationEnvelope& operation) {
  CommandSpec spec;
  spec.argv = ArgvFor(config_, operation.name, operation.params);
  spec.cwd = config_.magento_root;
  spec.timeout = std::chrono::seconds(config_.EffectiveTimeoutS(operation.name, operation.timeout_s));
  spec.max_output_bytes = static_cast<std::size_t>(config_.max_output_bytes);
  const CommandResult ran = runner_.Run(spec);

  Execution execution;
  if (ran.outcome == CommandOutcome::kStopped) {
    execution.stopped = true;
    execution.report = FailureReport("interrupted", ran.duration_ms);
    return execution;
  }
  if (ran.outcome != CommandOutcome::kExited) {
    execution.report = FailureReport(std::string(CommandFailureCode(ran.outcome)), ran.duration_ms);
    return execution;
  }
  core::OperationResult result;
  if (auto code = InterpretOutput(config_, operation, ran.exit_code, ran.output, result)) {
    execution.report = FailureReport(std::move(*code), ran.duration_ms);
    return execution;
  }
  if (!core::ValidateResult(operation.name, result).ok()) {
    execution.report = FailureReport("parse_error", ran.duration_ms);
    return execution;
  }
  execution.report.succeeded = true;
  execution.report.result = std::move(result);
  execution.report.duration_ms = ran.duration_ms;
  return execution;
}

std::optional<std::string> OperationExecutor::Handle(const protocol::OperationEnvelope& operation) {
  const std::string name(core::ToString(operation.name));
  auto log_report = [&](std::string_view msg, const protocol::OperationReport& report) {
    LogFields fields = {{"op_id", operation.id},
                        {"op", name},
                        {"outcome", std::string(report.succeeded ? "succeeded" : "failed")},
                        {"duration_ms", report.duration_ms}};
    if (!report.succeeded) fields.emplace_back("code", report.code);
    Log(report.succeeded ? LogLevel::kInfo : LogLevel::kWarn, msg, fields);
  };

  if (journal_ != nullptr) {
    if (auto entry = journal_->Find(operation.id)) {
      if (entry->finished) {
        Log(LogLevel::kInfo, "operation already finished: replaying its report",
            {{"op_id", operation.id}, {"op", name}});
        return entry->report;
      }
      // Started before the agent stopped or crashed: it may have changed the store, so it
      // is never run again.
      const auto report = FailureReport("interrupted");
      std::string body = protocol::Encode(report);
      if (auto s = journal_->RecordFinished(operation.id, body); !s.ok()) {
        Log(LogLevel::kError, "journal write failed", {{"op_id", operation.id}, {"error", s.error().message}});
      }
      log_report("operation interrupted earlier: not run again", report);
      return body;
    }
  }
  if (!config_.Allows(operation.name)) {
    const auto report = FailureReport("refused_not_allowed");
    log_report("operation refused: not in allowed_operations", report);
    return protocol::Encode(report);
  }
  if (journal_ != nullptr) {
    if (auto s = journal_->RecordStarted(operation.id, name); !s.ok()) {
      // Without a journal entry the operation could run twice: it does not run at all.
      Log(LogLevel::kError, "journal write failed: operation not run",
          {{"op_id", operation.id}, {"op", name}, {"error", s.error().message}});
      return protocol::Encode(FailureReport("spawn_failed"));
    }
  }
  Log(LogLevel::kInfo, "operation started",
      {{"op_id", operation.id},
       {"op", name},
       {"timeout_s", std::int64_t{config_.EffectiveTimeoutS(operation.name, operation.timeout_s)}}});
  Execution execution = Execute(operation);
  if (execution.stopped) {
    Log(LogLevel::kWarn, "operation killed: the agent is stopping", {{"op_id", operation.id}, {"op", name}});
    return std::nullopt;
  }
  std::string body = protocol::Encode(execution.report);
  if (journal_ != nullptr) {
    if (auto s = journal_->RecordFinished(operation.id, body); !s.ok()) {
      Log(LogLevel::kError, "journal write failed", {{"op_id", operation.id}, {"error", s.error().message}});
    }
  }
  log_report("operation finished", execution.report);
  return body;
}

}  // namespace storeplane::agent
