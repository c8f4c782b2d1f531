// The SSE reader behind `storeplane events` and --watch: events split across pieces at
// any byte, CR/LF/CRLF line ends, comments, multi-line data, ids kept across events,
// retry, and over-long lines.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/sse_parser.h"

namespace storeplane::client {
namespace {

std::vector<SseEvent> FeedInPieces(const std::string& stream, std::size_t piece) {
  SseParser parser;
  std::vector<SseEvent> out;
  for (std::size_t i = 0; i < stream.size(); i += piece) {
    EXPECT_TRUE(parser.Feed(std::string_view(stream).substr(i, piece), [&](const SseEvent& e) { out.push_back(e); }));
  }
  return out;
}

TEST(SseParser, ReadsEventsWhateverThePiecesAndLineEnds) {
  const std::string stream =
      "retry: 3000\n\n: keep-alive\n\nid: ab-1\nevent: store.created\ndata: {\"a\":1}\n\n"
      "id: ab-2\r\nevent: store.updated\r\ndata: one\r\ndata: two\r\n\r\n"
      "data:no-space\r\r";
  for (std::size_t piece : {1U, 2U, 3U, 7U, 1000U}) {
    auto events = FeedInPieces(stream, piece);
    ASSERT_EQ(events.size(), 3U) << "piece " << piece;
    EXPECT_EQ(events[0].id, "ab-1");
    EXPECT_EQ(events[0].type, "store.created");
    EXPECT_EQ(events[0].data, "{\"a\":1}");
    EXPECT_EQ(events[1].id, "ab-2");
    EXPECT_EQ(events[1].data, "one\ntwo");
    EXPECT_EQ(events[2].type, "message");  // no event: line
    EXPECT_EQ(events[2].id, "ab-2");       // the last id stays until another comes
    EXPECT_EQ(events[2].data, "no-space");
  }
}

TEST(SseParser, KeepsTheRetryDelayAndIgnoresUnknownFields) {
  SseParser parser;
  int count = 0;
  EXPECT_TRUE(parser.Feed("retry: 1500\nfoo: bar\nretry: soon\n\n", [&](const SseEvent&) { ++count; }));
  EXPECT_EQ(count, 0);  // no data: nothing to dispatch
  EXPECT_EQ(parser.retry_ms(), 1500);
}

TEST(SseParser, RefusesALineLongerThanItsLimit) {
  SseParser parser(16);
  EXPECT_FALSE(parser.Feed("data: " + std::string(64, 'x'), [](const SseEvent&) {}));
}

}  // namespace
}  // namespace storeplane::client
