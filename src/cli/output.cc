#include "cli/output.h"

#include <yaml-cpp/yaml.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <map>

namespace storeplane::cli {
namespace {

std::string StatusReason(long status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "HTTP " + std::to_string(status);
  }
}

std::string StringField(const boost::json::object& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || !it->value().is_string()) return {};
  return std::string(it->value().as_string());
}

void AppendJson(std::string& out, const boost::json::value& value, int indent) {
  const std::string pad(static_cast<size_t>(indent) * 2, ' ');
  const std::string inner(static_cast<size_t>(indent + 1) * 2, ' ');
  if (value.is_object()) {
    const auto& object = value.as_object();
    if (object.empty()) {
      out += "{}";
      return;
    }
    out += "{\n";
    bool first = true;
    for (const auto& entry : object) {
      if (!first) out += ",\n";
      first = false;
      out += inner;
      out += boost::json::serialize(boost::json::value(entry.key()));
      out += ": ";
      AppendJson(out, entry.value(), indent + 1);
    }
    out += "\n" + pad + "}";
  } else if (value.is_array()) {
    const auto& array = value.as_array();
    if (array.empty()) {
      out += "[]";
      return;
    }
    out += "[\n";
    bool first = true;
    for (const auto& element : array) {
      if (!first) out += ",\n";
      first = false;
      out += inner;
      AppendJson(out, element, indent + 1);
    }
    out += "\n" + pad + "]";
  } else {
    out += boost::json::serialize(value);
  }
}

// True when a plain YAML scalar with this text would not read back as the same string.
bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const char* kReserved[] = {"true", "false", "yes", "no",   "on",   "off",   "y",
                                    "n",    "null",  "~",   ".nan", ".inf", "-.inf", "+.inf"};
  for (const char* word : kReserved) {
    if (lower == word) return true;
  }
  // Numbers, dates and timestamps: anything starting with a digit, sign or dot stays a
  // string only when quoted (YAML 1.1 readers turn 2024-01-01T00:00:00Z into a timestamp).
  unsigned char first = static_cast<unsigned char>(s.front());
  if (std::isdigit(first) || first == '-' || first == '+' || first == '.') return true;
  if (s.front() == ' ' || s.back() == ' ') return true;
  return false;
}

void EmitYaml(YAML::Emitter& out, const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::object:
      out << YAML::BeginMap;
      for (const auto& entry : value.as_object()) {
        out << YAML::Key << std::string(entry.key()) << YAML::Value;
        EmitYaml(out, entry.value());
      }
      out << YAML::EndMap;
      break;
    case boost::json::kind::array:
      out << YAML::BeginSeq;
      for (const auto& element : value.as_array()) EmitYaml(out, element);
      out << YAML::EndSeq;
      break;
    case boost::json::kind::string: {
      std::string text(value.as_string());
      if (NeedsQuotes(text)) out << YAML::DoubleQuoted;
      out << text;
      break;
    }
    case boost::json::kind::null: out << YAML::Null; break;
    default:
      out << boost::json::serialize(value);  // numbers and booleans as JSON spells them
      break;
  }
}

}  // namespace

int ExitCodeForStatus(long status) {
  if (status >= 200 && status < 300) return kExitOk;
  switch (status) {
    case 400:
    case 413:
    case 415:
    case 422: return kExitRejected;
    case 401:
    case 403: return kExitAuth;
    case 404: return kExitNotFound;
    case 409:
    case 412:
    case 428: return kExitConflict;
    default: return kExitServerError;
  }
}

int ExitCodeForError(const Error& error) {
  switch (error.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kMalformedRequest: return kExitUsage;
    case ErrorCode::kNotFound: return kExitNotFound;
    case ErrorCode::kUnauthenticated:
    case ErrorCode::kPermissionDenied: return kExitAuth;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict:
    case ErrorCode::kPreconditionFailed:
    case ErrorCode::kPreconditionRequired: return kExitConflict;
    case ErrorCode::kUnavailable: return kExitUnreachable;
    default: return kExitServerError;
  }
}

Problem ParseProblem(const client::HttpResponse& response) {
  Problem problem;
  problem.status = response.status;
  boost::system::error_code ec;
  boost::json::value body = boost::json::parse(response.body, ec);
  if (!ec && body.is_object()) {
    const auto& object = body.as_object();
    problem.type = StringField(object, "type");
    problem.title = StringField(object, "title");
    problem.detail = StringField(object, "detail");
    problem.field = StringField(object, "field");
    problem.request_id = StringField(object, "request_id");
  }
  if (problem.title.empty()) problem.title = StatusReason(response.status);
  if (problem.detail.empty() && ec) {
    // Not a problem document: show a bounded first line of whatever came back.
    std::string text = OneLine(response.body);
    if (text.size() > 200) text = text.substr(0, 200) + "...";
    problem.detail = text.empty() ? "HTTP status " + std::to_string(response.status) : text;
  }
  if (problem.request_id.empty()) problem.request_id = response.Header("x-request-id");
  return problem;
}

std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string ErrorLine(std::string_view title, std::string_view detail) {
  std::string line = "storeplane: " + OneLine(title);
  if (!detail.empty()) line += ": " + OneLine(detail);
  return line;
}

std::string ProblemLine(const Problem& problem) {
  std::string line = ErrorLine(problem.title, problem.detail);
  std::vector<std::string> notes;
  if (!problem.field.empty()) notes.push_back("field " + OneLine(problem.field));
  if (!problem.request_id.empty()) notes.push_back("request id " + OneLine(problem.request_id));
  if (!notes.empty()) {
    line += " (";
    for (size_t i = 0; i < notes.size(); ++i) line += (i ? ", " : "") + notes[i];
    line += ")";
  }
  return line;
}

std::string ToJsonText(const boost::json::value& value) {
  std::string out;
  AppendJson(out, value, 0);
  out += "\n";
  return out;
}

std::string ToYamlText(const boost::json::value& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  EmitYaml(out, value);
  std::string text = out.c_str();
  if (text.empty() || text.back() != '\n') text += "\n";
  return text;
}

std::string RenderTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (size_t i = 0; i < widths.size(); ++i) {
      std::string cell = i < cells.size() ? OneLine(cells[i]) : std::string();
      text += cell;
      if (i + 1 < widths.size()) text += std::string(widths[i] - std::min(widths[i], cell.size()) + 3, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  };
  line(header);
  for (const auto& row : rows) line(row);
  return out;
}

std::string RenderFields(const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& field : fields) width = std::max(width, field.first.size() + 1);
  std::string out;
  for (const auto& [key, value] : fields) {
    std::string line = key + ":" + std::string(width - key.size() - 1 + 2, ' ') + OneLine(value);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string LabelsText(const boost::json::value& labels) {
  if (!labels.is_object() || labels.as_object().empty()) return "<none>";
  std::map<std::string, std::string> sorted;
  for (const auto& entry : labels.as_object()) {
    sorted[std::string(entry.key())] =
        entry.value().is_string() ? std::string(entry.value().as_string()) : boost::json::serialize(entry.value());
  }
  std::string out;
  for (const auto& [key, value] : sorted) {
    if (!out.empty()) out += ",";
    out += key + "=" + value;
  }
  return out;
}

std::string CellText(const boost::json::object& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->value().is_null()) return "<none>";
  if (it->value().is_string()) {
    std::string text(it->value().as_string());
    return text.empty() ? "<none>" : text;
  }
  return boost::json::serialize(it->value());
}

std::string StoresTable(const boost::json::array& stores) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : stores) {
    if (!item.is_object()) continue;
    const auto& store = item.as_object();
    auto labels = store.find("labels");
    rows.push_back({CellText(store, "id"), CellText(store, "name"), CellText(store, "environment"),
                    CellText(store, "isolation_mode"), CellText(store, "state"),
                    labels == store.end() ? "<none>" : LabelsText(labels->value()), CellText(store, "version")});
  }
  return RenderTable({"ID", "NAME", "ENVIRONMENT", "ISOLATION", "STATE", "LABELS", "VERSION"}, rows);
}

}  // namespace storeplane::cli
