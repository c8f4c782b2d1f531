#include <gtest/gtest.h>
TEST(CicdPlaceholder, ReplacedByRealTests) { SUCCEED(); }
