#include "server/rollout_requests.h"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>

#include "core/time_format.h"
#include "server/auth.h"
#include "server/json_body.h"

namespace storeplane::server {
namespace {

namespace json = boost::json;

Result<std::optional<std::int64_t>> OptionalInt(const json::object& object, std::string_view name,
                                                std::string_view field) {
  const auto* value = object.if_contains(name);
  if (value == nullptr || value->is_null()) return std::optional<std::int64_t>();
  if (value->is_int64()) return std::optional<std::int64_t>(value->as_int64());
  if (value->is_uint64() && value->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return std::optional<std::int64_t>(static_cast<std::int64_t>(value->as_uint64()));
  }
  return Error::Invalid(std::string(field) + " must be a whole number", std::string(field));
}

Result<std::optional<int>> OptionalSmallInt(const json::object& object, std::string_view name, std::string_view field) {
  auto value = OptionalInt(object, name, field);
  if (!value.ok()) return value.error();
  if (!*value) return std::optional<int>();
  if (**value < -1'000'000'000 || **value > 1'000'000'000) {
    return Error::Invalid(std::string(field) + " is out of range", std::string(field));
  }
  return std::optional<int>(static_cast<int>(**value));
}

Result<const json::object*> OptionalObject(const json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  if (value == nullptr || value->is_null()) return static_cast<const json::object*>(nullptr);
  if (!value->is_object()) return Error::Invalid(std::string(name) + " must be an object", std::string(name));
  return &value->as_object();
}

json::value IntOrNull(const std::optional<int>& v) { return v ? json::value(*v) : json::value(nullptr); }
json::value TimeOrNull(const std::optional<std::int64_t>& ms) {
  return ms ? json::value(core::FormatRfc3339Millis(*ms)) : json::value(nullptr);
}
json::value TextOrNull(const std::string& text) { return text.empty() ? json::value(nullptr) : json::value(text); }

json::object CountsJson(const core::RolloutCounts& c) {
  return json::object{{"planned", c.planned},
                      {"waiting", c.waiting},
                      {"in_flight", c.in_flight},
                      {"succeeded", c.succeeded},
                      {"failed", c.failed},
                      {"skipped", c.skipped},
                      {"rolled_back", c.rolled_back},
                      {"rollback_failed", c.rollback_failed},
                      {"not_rolled_back", c.not_rolled_back},
                      {"not_started", c.not_started}};
}

std::string OptionalText(const std::optional<std::string>& text) { return text.value_or(""); }
std::optional<std::string> TextOrNone(const std::string& text) {
  return text.empty() ? std::nullopt : std::optional<std::string>(text);
}

}  // namespace

Result<core::RolloutSpec> DecodeRolloutSpec(std::string_view body, const core::EnvironmentSet& environments) {
  auto parsed = ParseJsonObject(body);
  if (!parsed.ok()) return parsed.error();
  const auto& object = *parsed;
  FieldReader fields(object);
  SP_RETURN_IF_ERROR(fields.RejectUnknown(
      {"release", "selector", "waves", "max_concurrent", "failure_budget", "between_waves", "pause_s"}));
  core::RolloutSpec spec;
  auto release = fields.RequiredString("release");
  if (!release.ok()) return release.error();
  spec.release = *release;

  auto selector = OptionalObject(object, "selector");
  if (!selector.ok()) return selector.error();
  if (*selector == nullptr) return Error::Invalid("selector is required: {\"environment\": \"...\"}", "selector");
  {
    FieldReader sel(**selector);
    SP_RETURN_IF_ERROR(sel.RejectUnknown({"environment", "isolation_mode", "labels"}));
    auto environment = sel.RequiredString("environment");
    if (!environment.ok()) return Error::Invalid("selector.environment is required", "selector.environment");
    spec.selector.environment = *environment;
    auto mode = sel.OptionalString("isolation_mode");
    if (!mode.ok()) return Error::Invalid("selector.isolation_mode must be a string", "selector.isolation_mode");
    if (*mode) {
      auto parsed_mode = core::ParseIsolationMode(**mode);
      if (!parsed_mode) {
        return Error::Invalid("selector.isolation_mode must be shared, dedicated or isolated",
                              "selector.isolation_mode");
      }
      spec.selector.isolation_mode = *parsed_mode;
    }
    auto labels = sel.OptionalString("labels");
    if (!labels.ok()) return Error::Invalid("selector.labels must be a label selector string", "selector.labels");
    spec.selector.labels = labels->value_or("");
  }

  auto waves = OptionalObject(object, "waves");
  if (!waves.ok()) return waves.error();
  if (*waves != nullptr) {
    const auto& w = **waves;
    FieldReader wf(w);
    SP_RETURN_IF_ERROR(wf.RejectUnknown({"canary_size", "growth_factor", "wave_size"}));
    auto canary = OptionalSmallInt(w, "canary_size", "waves.canary_size");
    if (!canary.ok()) return canary.error();
    if (*canary) spec.waves.canary_size = **canary;
    if (const auto* factor = w.if_contains("growth_factor"); factor != nullptr && !factor->is_null()) {
      if (!factor->is_number()) return Error::Invalid("waves.growth_factor must be a number", "waves.growth_factor");
      const double f = factor->to_number<double>();
      if (!std::isfinite(f)) return Error::Invalid("waves.growth_factor must be a number", "waves.growth_factor");
      spec.waves.growth_factor = f;
    }
    auto size = OptionalSmallInt(w, "wave_size", "waves.wave_size");
    if (!size.ok()) return size.error();
    spec.waves.wave_size = *size;
  }
  if (!spec.waves.growth_factor && !spec.waves.wave_size) spec.waves.growth_factor = 2.0;

  auto concurrent = OptionalSmallInt(object, "max_concurrent", "max_concurrent");
  if (!concurrent.ok()) return concurrent.error();
  if (*concurrent) spec.max_concurrent = **concurrent;

  auto budget = OptionalObject(object, "failure_budget");
  if (!budget.ok()) return budget.error();
  if (*budget != nullptr) {
    FieldReader bf(**budget);
    SP_RETURN_IF_ERROR(bf.RejectUnknown({"max_failures", "max_failure_percent"}));
    auto count = OptionalSmallInt(**budget, "max_failures", "failure_budget.max_failures");
    if (!count.ok()) return count.error();
    auto percent = OptionalSmallInt(**budget, "max_failure_percent", "failure_budget.max_failure_percent");
    if (!percent.ok()) return percent.error();
    spec.failure_budget.max_failures = *count;
    spec.failure_budget.max_failure_percent = *percent;
  } else {
    spec.failure_budget.max_failures = 0;
  }

  auto between = fields.OptionalString("between_waves");
  if (!between.ok()) return between.error();
  if (*between) {
    auto parsed_between = core::ParseBetweenWaves(**between);
    if (!parsed_between) return Error::Invalid("between_waves must be none, pause or approval", "between_waves");
    spec.between_waves = *parsed_between;
  }
  auto pause = OptionalInt(object, "pause_s", "pause_s");
  if (!pause.ok()) return pause.error();
  if (*pause) {
    if (spec.between_waves != core::BetweenWaves::kPause) {
      return Error::Invalid("pause_s is only for between_waves \"pause\"", "pause_s");
    }
    if (**pause < 1 || **pause > core::kMaxPauseMs / 1000) {
      return Error::Invalid("pause_s must be from 1 to 604800 (a week)", "pause_s");
    }
    spec.pause_ms = **pause * 1000;
  } else if (spec.between_waves == core::BetweenWaves::kPause) {
    return Error::Invalid("between_waves \"pause\" needs pause_s, the seconds to wait between waves", "pause_s");
  }
  SP_RETURN_IF_ERROR(core::ValidateRolloutSpec(spec, environments));
  return spec;
}

json::object RolloutSpecJson(const core::RolloutSpec& spec) {
  json::object selector{{"environment", spec.selector.environment},
                        {"isolation_mode", spec.selector.isolation_mode
                                               ? json::value(std::string(core::ToString(*spec.selector.isolation_mode)))
                                               : json::value(nullptr)},
                        {"labels", spec.selector.labels}};
  json::object waves{
      {"canary_size", spec.waves.canary_size},
      {"growth_factor", spec.waves.growth_factor ? json::value(*spec.waves.growth_factor) : json::value(nullptr)},
      {"wave_size", IntOrNull(spec.waves.wave_size)}};
  json::object budget{{"max_failures", IntOrNull(spec.failure_budget.max_failures)},
                      {"max_failure_percent", IntOrNull(spec.failure_budget.max_failure_percent)}};
  return json::object{{"release", spec.release},
                      {"selector", std::move(selector)},
                      {"waves", std::move(waves)},
                      {"max_concurrent", spec.max_concurrent},
                      {"failure_budget", std::move(budget)},
                      {"between_waves", std::string(core::ToString(spec.between_waves))},
                      {"pause_s", spec.between_waves == core::BetweenWaves::kPause ? json::value(spec.pause_ms / 1000)
                                                                                   : json::value(nullptr)}};
}

Result<NewRollout> PrepareRollout(const core::RolloutSpec& spec, db::Repository& repo, std::string created_by,
                                  std::string request_id, std::int64_t now_ms) {
  auto labels = core::LabelSelector::Parse(spec.selector.labels);
  if (!labels.ok()) return Error::Invalid(labels.error().message, "selector.labels");
  db::StoreQuery query;
  query.environment = spec.selector.environment;
  query.isolation_mode = spec.selector.isolation_mode;
  query.selector = *labels;
  query.limit = 1000;
  std::vector<core::Store> matched;
  for (;;) {
    auto page = repo.ListStores(query);
    if (!page.ok()) return page.error();
    for (auto& store : page->items) {
      if (core::MatchesRolloutSelector(spec.selector, *labels, store)) matched.push_back(std::move(store));
    }
    if (page->next_after_id.empty()) break;
    query.after_id = page->next_after_id;
  }
  if (matched.empty()) {
    return Error::Invalid("no store matches the selector (environment " + spec.selector.environment +
                              (spec.selector.labels.empty() ? std::string() : ", labels " + spec.selector.labels) + ")",
                          "selector");
  }
  std::vector<std::string> ids;
  ids.reserve(matched.size());
  for (const auto& store : matched) ids.push_back(store.id);
  auto plan = PlanWaves(std::move(ids), spec.waves);
  if (!plan.ok()) return plan.error();

  NewRollout out;
  out.plan = std::move(*plan);
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < matched.size(); ++i) index.emplace(matched[i].id, i);
  auto& record = out.record;
  record.id = "rol_" + RandomHex(12);
  record.environment = spec.selector.environment;
  record.release = spec.release;
  record.spec_json = json::serialize(RolloutSpecJson(spec));
  json::array waves;
  for (const auto& wave : out.plan.waves) {
    json::array ids_json;
    for (const auto& id : wave) {
      ids_json.emplace_back(id);
      out.stores.push_back(matched[index.at(id)]);
    }
    waves.emplace_back(std::move(ids_json));
  }
  record.plan_json = json::serialize(waves);
  record.created_by = std::move(created_by);
  record.request_id = std::move(request_id);
  record.created_at_ms = now_ms;
  record.updated_at_ms = now_ms;
  record.version = 1;
  const auto progress = core::NewRolloutProgress(out.plan);
  StoreProgress(progress, out.plan, record);
  out.targets.reserve(progress.targets.size());
  for (std::size_t i = 0; i < progress.targets.size(); ++i) {
    out.targets.push_back(TargetRecordOf(record.id, i, progress.targets[i], now_ms));
  }
  return out;
}

Result<core::RolloutSpec> SpecOf(const db::RolloutRecord& record) {
  boost::system::error_code ec;
  auto value = json::parse(record.spec_json, ec);
  if (ec || !value.is_object()) return Error::Internal("rollout " + record.id + " holds a malformed spec");
  auto& o = value.as_object();
  core::RolloutSpec spec;
  try {
    spec.release = std::string(o.at("release").as_string());
    const auto& sel = o.at("selector").as_object();
    spec.selector.environment = std::string(sel.at("environment").as_string());
    if (!sel.at("isolation_mode").is_null()) {
      spec.selector.isolation_mode = core::ParseIsolationMode(sel.at("isolation_mode").as_string());
    }
    spec.selector.labels = std::string(sel.at("labels").as_string());
    const auto& w = o.at("waves").as_object();
    spec.waves.canary_size = static_cast<int>(w.at("canary_size").to_number<std::int64_t>());
    if (!w.at("growth_factor").is_null()) spec.waves.growth_factor = w.at("growth_factor").to_number<double>();
    if (!w.at("wave_size").is_null())
      spec.waves.wave_size = static_cast<int>(w.at("wave_size").to_number<std::int64_t>());
    spec.max_concurrent = static_cast<int>(o.at("max_concurrent").to_number<std::int64_t>());
    const auto& b = o.at("failure_budget").as_object();
    if (!b.at("max_failures").is_null()) {
      spec.failure_budget.max_failures = static_cast<int>(b.at("max_failures").to_number<std::int64_t>());
    }
    if (!b.at("max_failure_percent").is_null()) {
      spec.failure_budget.max_failure_percent = static_cast<int>(b.at("max_failure_percent").to_number<std::int64_t>());
    }
    auto between = core::ParseBetweenWaves(o.at("between_waves").as_string());
    if (!between) return Error::Internal("rollout " + record.id + " holds a malformed spec");
    spec.between_waves = *between;
    if (!o.at("pause_s").is_null()) spec.pause_ms = o.at("pause_s").to_number<std::int64_t>() * 1000;
  } catch (const std::exception&) {
    return Error::Internal("rollout " + record.id + " holds a malformed spec");
  }
  return spec;
}

Result<core::RolloutPlan> PlanOf(const db::RolloutRecord& record) {
  boost::system::error_code ec;
  auto value = json::parse(record.plan_json, ec);
  if (ec || !value.is_array()) return Error::Internal("rollout " + record.id + " holds a malformed plan");
  core::RolloutPlan plan;
  for (const auto& wave : value.as_array()) {
    if (!wave.is_array()) return Error::Internal("rollout " + record.id + " holds a malformed plan");
    auto& ids = plan.waves.emplace_back();
    ids.reserve(wave.as_array().size());
    for (const auto& id : wave.as_array()) {
      if (!id.is_string()) return Error::Internal("rollout " + record.id + " holds a malformed plan");
      ids.emplace_back(id.as_string());
    }
  }
  return plan;
}

Result<core::RolloutProgress> ProgressOf(const db::RolloutRecord& record,
                                         const std::vector<db::RolloutTargetRecord>& targets) {
  auto bad = [&](const std::string& what) {
    return Error::Internal("rollout " + record.id + " holds an unknown " + what);
  };
  core::RolloutProgress progress;
  auto state = core::ParseRolloutState(record.state);
  if (!state) return bad("state '" + record.state + "'");
  progress.state = *state;
  if (!record.paused_from.empty()) {
    progress.paused_from = core::ParseRolloutState(record.paused_from);
    if (!progress.paused_from) return bad("paused_from");
  }
  progress.current_wave = record.current_wave;
  progress.resume_at_ms = record.resume_at_ms;
  if (record.ending == "failure_budget")
    progress.ending = core::RolloutEnding::kFailureBudget;
  else if (record.ending == "abort")
    progress.ending = core::RolloutEnding::kAbort;
  else if (!record.ending.empty())
    return bad("ending");
  progress.rollback_on_abort = record.rollback_on_abort;
  progress.failed_deploys = record.failed_deploys;
  progress.targets.reserve(targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const auto& row = targets[i];
    if (row.position != static_cast<int>(i)) return bad("target order");
    core::TargetProgress t;
    t.store_id = row.store_id;
    t.wave = row.wave;
    auto ts = core::ParseTargetState(row.state);
    if (!ts) return bad("target state '" + row.state + "'");
    t.state = *ts;
    if (!row.skip_reason.empty()) {
      t.skip_reason = core::ParseSkipReason(row.skip_reason);
      if (!t.skip_reason) return bad("skip reason");
    }
    t.deploy_run_id = TextOrNone(row.deploy_run_id);
    if (!row.deploy_final_state.empty()) {
      t.deploy_final_state = core::ParseRunState(row.deploy_final_state);
      if (!t.deploy_final_state) return bad("run state");
    }
    t.previous_release = TextOrNone(row.previous_release);
    t.rollback_run_id = TextOrNone(row.rollback_run_id);
    if (!row.rollback_final_state.empty()) {
      t.rollback_final_state = core::ParseRunState(row.rollback_final_state);
      if (!t.rollback_final_state) return bad("run state");
    }
    progress.targets.push_back(std::move(t));
  }
  return progress;
}

db::RolloutTargetRecord TargetRecordOf(const std::string& rollout_id, std::size_t position,
                                       const core::TargetProgress& target, std::int64_t now_ms) {
  db::RolloutTargetRecord row;
  row.rollout_id = rollout_id;
  row.store_id = target.store_id;
  row.position = static_cast<int>(position);
  row.wave = target.wave;
  row.state = std::string(core::ToString(target.state));
  if (target.skip_reason) row.skip_reason = std::string(core::ToString(*target.skip_reason));
  row.deploy_run_id = OptionalText(target.deploy_run_id);
  if (target.deploy_final_state) row.deploy_final_state = std::string(core::ToString(*target.deploy_final_state));
  row.previous_release = OptionalText(target.previous_release);
  row.rollback_run_id = OptionalText(target.rollback_run_id);
  if (target.rollback_final_state) {
    row.rollback_final_state = std::string(core::ToString(*target.rollback_final_state));
  }
  row.updated_at_ms = now_ms;
  return row;
}

void StoreProgress(const core::RolloutProgress& progress, const core::RolloutPlan& plan, db::RolloutRecord& record) {
  record.state = std::string(core::ToString(progress.state));
  record.paused_from = progress.paused_from ? std::string(core::ToString(*progress.paused_from)) : "";
  record.current_wave = progress.current_wave;
  record.resume_at_ms = progress.resume_at_ms;
  record.ending.clear();
  if (progress.ending == core::RolloutEnding::kFailureBudget) record.ending = "failure_budget";
  if (progress.ending == core::RolloutEnding::kAbort) record.ending = "abort";
  record.rollback_on_abort = progress.rollback_on_abort;
  record.failed_deploys = progress.failed_deploys;
  // Counts in all and per wave, so that listing and events never read the targets.
  std::vector<core::RolloutProgress> per_wave(plan.waves.size());
  for (const auto& target : progress.targets) {
    if (target.wave >= 0 && static_cast<std::size_t>(target.wave) < per_wave.size()) {
      per_wave[static_cast<std::size_t>(target.wave)].targets.push_back(target);
    }
  }
  json::array waves;
  for (std::size_t i = 0; i < per_wave.size(); ++i) {
    waves.emplace_back(json::object{{"index", static_cast<std::int64_t>(i)},
                                    {"size", static_cast<std::int64_t>(plan.waves[i].size())},
                                    {"counts", CountsJson(core::CountTargets(per_wave[i]))}});
  }
  record.counts_json =
      json::serialize(json::object{{"counts", CountsJson(core::CountTargets(progress))}, {"waves", std::move(waves)}});
}

json::object RolloutJson(const db::RolloutRecord& record, const std::optional<RolloutWait>& waiting) {
  json::object o;
  o["id"] = record.id.empty() ? json::value(nullptr) : json::value(record.id);
  o["release"] = record.release;
  o["environment"] = record.environment;
  boost::system::error_code ec;
  auto spec = json::parse(record.spec_json, ec);
  o["spec"] = ec ? json::value(nullptr) : spec;
  o["state"] = record.state;
  o["paused_from"] = TextOrNull(record.paused_from);
  o["current_wave"] = record.current_wave;
  auto counts = json::parse(record.counts_json, ec);
  std::int64_t wave_count = 0;
  std::int64_t planned = 0;
  json::value waves = json::array();
  json::value totals = json::object();
  if (!ec && counts.is_object()) {
    auto& c = counts.as_object();
    if (auto* w = c.if_contains("waves"); w != nullptr && w->is_array()) {
      wave_count = static_cast<std::int64_t>(w->as_array().size());
      waves = *w;
    }
    if (auto* t = c.if_contains("counts"); t != nullptr && t->is_object()) {
      totals = *t;
      if (auto* p = t->as_object().if_contains("planned"); p != nullptr && p->is_int64()) planned = p->as_int64();
    }
  }
  o["wave_count"] = wave_count;
  o["resume_at"] = TimeOrNull(record.resume_at_ms);
  // Only while an approval can be given: a paused rollout refuses one until resumed.
  o["awaiting_wave"] = record.state == core::ToString(core::RolloutState::kAwaitingApproval)
                           ? json::value(record.current_wave + 1)
                           : json::value(nullptr);
  o["ending"] = TextOrNull(record.ending);
  o["failed_deploys"] = record.failed_deploys;
  auto parsed_spec = SpecOf(record);
  o["allowed_failures"] =
      parsed_spec.ok() ? core::AllowedFailures(parsed_spec->failure_budget, static_cast<std::size_t>(planned)) : 0;
  o["counts"] = std::move(totals);
  o["waves"] = std::move(waves);
  if (waiting) {
    o["waiting_for"] = json::object{{"reason", waiting->reason}, {"until", TimeOrNull(waiting->until_ms)}};
  } else {
    o["waiting_for"] = nullptr;
  }
  o["created_by"] = record.created_by;
  o["created_at"] = core::FormatRfc3339Millis(record.created_at_ms);
  o["updated_at"] = core::FormatRfc3339Millis(record.updated_at_ms);
  o["finished_at"] = TimeOrNull(record.finished_at_ms);
  o["version"] = record.version;
  return o;
}

json::object RolloutTargetJson(const db::RolloutTargetRecord& t) {
  return json::object{{"store_id", t.store_id},
                      {"position", t.position},
                      {"wave", t.wave},
                      {"state", t.state},
                      {"skip_reason", TextOrNull(t.skip_reason)},
                      {"deploy_run_id", TextOrNull(t.deploy_run_id)},
                      {"deploy_final_state", TextOrNull(t.deploy_final_state)},
                      {"previous_release", TextOrNull(t.previous_release)},
                      {"rollback_run_id", TextOrNull(t.rollback_run_id)},
                      {"rollback_final_state", TextOrNull(t.rollback_final_state)},
                      {"updated_at", core::FormatRfc3339Millis(t.updated_at_ms)}};
}

}  // namespace storeplane::server
