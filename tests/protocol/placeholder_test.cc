#include <gtest/gtest.h>
TEST(ProtocolPlaceholder, ReplacedByRealTests) { SUCCEED(); }
