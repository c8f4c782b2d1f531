// The agent channel's wire format (every protocol::Decode* in src/protocol/agent_wire.h,
// and the params/results/checks readers). Input: a selector byte, then the JSON body.
// Property where an encoder exists: Encode(Decode(Encode(Decode(x)))) == Encode(Decode(x)),
// i.e. what we send is accepted by the other side and means the same.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/operation.h"
#include "fuzz_support.h"
#include "protocol/agent_wire.h"

using namespace storeplane;

namespace {

template <typename Decode>
void RoundTrip(std::string_view body, Decode decode) {
  auto first = decode(body);
  if (!first.ok()) return;
  const std::string encoded = protocol::Encode(*first);
  auto second = decode(encoded);
  if (!second.ok()) __builtin_trap();  // we sent something we would refuse
  if (protocol::Encode(*second) != encoded) __builtin_trap();
}

core::OperationName NameFrom(std::uint8_t byte) {
  const auto& names = core::AllOperationNames();
  return names[byte % names.size()];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Reader in(data, size);
  const auto selector = in.Byte();
  const auto body = in.Rest();
  switch (selector % 9) {
    case 0: RoundTrip(body, protocol::DecodeEnrollRequest); break;
    case 1: RoundTrip(body, protocol::DecodeEnrollResponse); break;
    case 2: RoundTrip(body, protocol::DecodeHeartbeat); break;
    case 3: RoundTrip(body, protocol::DecodeHeartbeatAck); break;
    case 4: RoundTrip(body, protocol::DecodeOperations); break;
    case 5: {
      const auto name = NameFrom(selector / 9);
      RoundTrip(body, [name](std::string_view b) { return protocol::DecodeOperationReport(name, b); });
      break;
    }
    default: {
      // Params, results and checks as JSON values (what the operator API and the
      // database hand to these readers).
      boost::system::error_code ec;
      const auto value = boost::json::parse(body, ec);
      if (ec) return 0;
      const auto name = NameFrom(selector / 9);
      if (selector % 9 == 6) {
        auto params = protocol::ParamsFromJson(name, value);
        if (!params.ok()) return 0;
        const auto json = protocol::ParamsToJson(name, *params);
        auto again = protocol::ParamsFromJson(name, json);
        if (!again.ok()) __builtin_trap();
        if (boost::json::serialize(protocol::ParamsToJson(name, *again)) != boost::json::serialize(json)) {
          __builtin_trap();
        }
      } else if (selector % 9 == 7) {
        auto result = protocol::ResultFromJson(name, value);
        if (!result.ok()) return 0;
        const auto json = protocol::ResultToJson(*result);
        auto again = protocol::ResultFromJson(name, json);
        if (!again.ok()) __builtin_trap();
        if (boost::json::serialize(protocol::ResultToJson(*again)) != boost::json::serialize(json)) __builtin_trap();
      } else {
        auto checks = protocol::ChecksFromJson(value);
        if (!checks.ok()) return 0;
        const boost::json::value json = protocol::ChecksToJson(*checks);
        auto again = protocol::ChecksFromJson(json);
        if (!again.ok()) __builtin_trap();
        if (boost::json::serialize(protocol::ChecksToJson(*again)) != boost::json::serialize(json)) __builtin_trap();
      }
      break;
    }
  }
  return 0;
}
