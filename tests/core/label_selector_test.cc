// Label selector parsing, matching and canonical form (src/core/label_selector.h).
#include "core/label_selector.h"

#include <gtest/gtest.h>

#include <string>

namespace storeplane::core {
namespace {

using Op = LabelRequirement::Op;

LabelSelector MustParse(std::string_view text) {
  Result<LabelSelector> s = LabelSelector::Parse(text);
  EXPECT_TRUE(s.ok()) << "'" << text << "': " << (s.ok() ? "" : s.error().message);
  return s.ok() ? *s : LabelSelector{};
}

void ExpectParseError(std::string_view text, std::string_view message_part) {
  Result<LabelSelector> s = LabelSelector::Parse(text);
  ASSERT_FALSE(s.ok()) << "'" << text << "' parsed as '" << s->ToString() << "'";
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().field, "selector");
  EXPECT_NE(s.error().message.find(message_part), std::string::npos) << "'" << text << "': " << s.error().message;
}

const Labels kProdEu{{"env", "prod"}, {"region", "eu"}, {"tier", "web"}, {"canary", ""}};
const Labels kStagingUs{{"env", "staging"}, {"region", "us"}, {"legacy", "true"}};
const Labels kNoLabels{};

// --- parsing ----------------------------------------------------------------------

TEST(SelectorParseTest, EmptyOrBlankMatchesEverything) {
  for (const char* text : {"", "   ", "\t\n"}) {
    LabelSelector s = MustParse(text);
    EXPECT_TRUE(s.empty());
    EXPECT_TRUE(s.Matches(kProdEu));
    EXPECT_TRUE(s.Matches(kNoLabels));
    EXPECT_EQ(s.ToString(), "");
  }
  EXPECT_TRUE(LabelSelector{}.Matches(kStagingUs));
}

TEST(SelectorParseTest, EachOperatorParses) {
  struct Case {
    const char* text;
    Op op;
    std::vector<std::string> values;
  };
  for (const Case& c :
       {Case{"env=prod", Op::kEquals, {"prod"}}, Case{"env==prod", Op::kEquals, {"prod"}},
        Case{"env!=prod", Op::kNotEquals, {"prod"}}, Case{"env in (prod,staging)", Op::kIn, {"prod", "staging"}},
        Case{"env notin (prod)", Op::kNotIn, {"prod"}}, Case{"env", Op::kExists, {}},
        Case{"!env", Op::kDoesNotExist, {}}, Case{"env=", Op::kEquals, {""}}}) {
    LabelSelector s = MustParse(c.text);
    ASSERT_EQ(s.requirements().size(), 1u) << c.text;
    EXPECT_EQ(s.requirements()[0].key, "env") << c.text;
    EXPECT_EQ(s.requirements()[0].op, c.op) << c.text;
    EXPECT_EQ(s.requirements()[0].values, c.values) << c.text;
  }
}

TEST(SelectorParseTest, ToleratesWhitespaceAroundTokens) {
  LabelSelector s = MustParse("  env = prod ,  region in ( eu , us ) ,! legacy , tier != edge, canary  ");
  EXPECT_EQ(s.ToString(), "canary,env=prod,!legacy,region in (eu,us),tier!=edge");
}

TEST(SelectorParseTest, PrefixedKeysAndValueCharacters) {
  LabelSelector s = MustParse("app.kubernetes.io/version=v2.3.1,example.com/team in (team-payments,a_b)");
  ASSERT_EQ(s.requirements().size(), 2u);
  EXPECT_EQ(s.requirements()[0].key, "app.kubernetes.io/version");
  EXPECT_EQ(s.requirements()[1].values, (std::vector<std::string>{"a_b", "team-payments"}));
}

TEST(SelectorParseTest, OperatorWordsCanBeKeys) {
  LabelSelector s = MustParse("in in (in),notin notin (x)");
  ASSERT_EQ(s.requirements().size(), 2u);
  EXPECT_TRUE(s.Matches(Labels{{"in", "in"}}));
  EXPECT_FALSE(s.Matches(Labels{{"in", "in"}, {"notin", "x"}}));
}

TEST(SelectorParseTest, CanonicalFormSortsAndDeduplicates) {
  LabelSelector a = MustParse("region in (us,eu,us),env=prod,env=prod");
  LabelSelector b = MustParse("env==prod, region in (eu, us)");
  EXPECT_EQ(a.ToString(), "env=prod,region in (eu,us)");
  EXPECT_EQ(a.ToString(), b.ToString());
}

// Found by fuzz_label_selector: "(,)" deduplicated to the empty value alone printed as "()",
// which does not parse.
TEST(SelectorParseTest, EmptyValueAloneRoundTrips) {
  LabelSelector s = MustParse("region in (,)");
  EXPECT_EQ(s.ToString(), "region in (,)");
  EXPECT_EQ(MustParse(s.ToString()).ToString(), s.ToString());
  EXPECT_TRUE(s.Matches(Labels{{"region", ""}}));
  EXPECT_FALSE(s.Matches(Labels{{"region", "eu"}}));
}

TEST(SelectorParseTest, ToStringRoundTrips) {
  for (const char* text : {"env=prod", "env!=prod", "env in (a,b)", "env notin (a)", "env", "!env", "env=", "x in (,a)",
                           "x in (,)", "x notin ( , )", "env=prod,tier!=edge,region in (eu,us),!legacy,canary"}) {
    LabelSelector once = MustParse(text);
    LabelSelector twice = MustParse(once.ToString());
    EXPECT_EQ(once.ToString(), twice.ToString()) << text;
  }
}

// --- malformed selectors ----------------------------------------------------------

TEST(SelectorParseErrorTest, StructuralErrorsPointAtTheOffset) {
  ExpectParseError(",", "offset 0: empty requirement");
  ExpectParseError("env=prod,", "offset 9: empty requirement");
  ExpectParseError("env=prod,,tier=web", "offset 9: empty requirement");
  ExpectParseError("=prod", "offset 0: expected a label key, found '='");
  ExpectParseError("!", "expected a label key after '!', found end of selector");
  ExpectParseError("!env=prod", "'!env' tests that the key is absent and takes no operator or value");
  ExpectParseError("env=prod tier=web", "offset 9: expected ',' or end of selector, found 't'");
  ExpectParseError("env===prod", "offset 5: expected ',' or end of selector, found '='");
  ExpectParseError("env:prod", "offset 3: expected =, ==, !=, in, notin, ',' or end after key 'env', found ':'");
  ExpectParseError("env<3", "found '<'");
  ExpectParseError("env is (a)", "offset 4: unknown operator 'is' after key 'env'");
  ExpectParseError("env in prod", "expected '(' after 'in', found 'p'");
  ExpectParseError("env in", "expected '(' after 'in', found end of selector");
  ExpectParseError("env notin ()", "'notin' for key 'env' needs at least one value");
  ExpectParseError("env in (a,b", "missing its closing ')'");
  ExpectParseError("env in (a b)", "expected ',' or ')' in value list for key 'env', found 'b'");
  ExpectParseError("env in (a),", "empty requirement");
  ExpectParseError("env=\xC3\xA9", "found byte 0xC3");
}

TEST(SelectorParseErrorTest, KeysAndValuesFollowLabelRules) {
  ExpectParseError("-env=prod", "offset 0: invalid key '-env': label key name must start and end");
  ExpectParseError("a/b/c=x", "invalid key 'a/b/c'");
  ExpectParseError("Example.com/x", "DNS subdomain");
  ExpectParseError(std::string(64, 'k') + "=v", "at most 63");
  ExpectParseError("env=-prod", "offset 4: invalid value for key 'env': label value must start and end");
  ExpectParseError("env=" + std::string(64, 'v'), "invalid value for key 'env': label value must be at most 63");
  ExpectParseError("env in (ok,-bad)", "offset 11: invalid value for key 'env'");
}

// --- matching ---------------------------------------------------------------------

TEST(SelectorMatchTest, EqualityAndInequality) {
  LabelSelector eq = MustParse("env=prod");
  EXPECT_TRUE(eq.Matches(kProdEu));
  EXPECT_FALSE(eq.Matches(kStagingUs));
  EXPECT_FALSE(eq.Matches(kNoLabels));

  LabelSelector ne = MustParse("env!=prod");
  EXPECT_FALSE(ne.Matches(kProdEu));
  EXPECT_TRUE(ne.Matches(kStagingUs));
  EXPECT_TRUE(ne.Matches(kNoLabels)) << "as in Kubernetes, != matches when the key is absent";
}

TEST(SelectorMatchTest, SetMembership) {
  LabelSelector in = MustParse("region in (eu,ap)");
  EXPECT_TRUE(in.Matches(kProdEu));
  EXPECT_FALSE(in.Matches(kStagingUs));
  EXPECT_FALSE(in.Matches(kNoLabels));

  LabelSelector notin = MustParse("region notin (eu,ap)");
  EXPECT_FALSE(notin.Matches(kProdEu));
  EXPECT_TRUE(notin.Matches(kStagingUs));
  EXPECT_TRUE(notin.Matches(kNoLabels)) << "as in Kubernetes, notin matches when the key is absent";
}

TEST(SelectorMatchTest, ExistenceAndAbsence) {
  EXPECT_TRUE(MustParse("canary").Matches(kProdEu)) << "an empty value still exists";
  EXPECT_FALSE(MustParse("canary").Matches(kStagingUs));
  EXPECT_TRUE(MustParse("!legacy").Matches(kProdEu));
  EXPECT_FALSE(MustParse("!legacy").Matches(kStagingUs));
  EXPECT_TRUE(MustParse("!legacy").Matches(kNoLabels));
}

TEST(SelectorMatchTest, EmptyValueMatchesOnlyEmpty) {
  EXPECT_TRUE(MustParse("canary=").Matches(kProdEu));
  EXPECT_FALSE(MustParse("canary=").Matches(kNoLabels));
  EXPECT_FALSE(MustParse("env=").Matches(kProdEu));
}

TEST(SelectorMatchTest, ValuesAreCaseSensitive) {
  EXPECT_FALSE(MustParse("env=Prod").Matches(kProdEu));
  EXPECT_FALSE(MustParse("Env=prod").Matches(kProdEu));
}

TEST(SelectorMatchTest, RequirementsAreAnded) {
  LabelSelector s = MustParse("env=prod,tier!=edge,region in (eu,us),!legacy,canary");
  EXPECT_TRUE(s.Matches(kProdEu));
  EXPECT_FALSE(s.Matches(kStagingUs));
  Labels edge = kProdEu;
  edge["tier"] = "edge";
  EXPECT_FALSE(s.Matches(edge));
  Labels legacy = kProdEu;
  legacy["legacy"] = "";
  EXPECT_FALSE(s.Matches(legacy));
  // Contradictions are allowed and match nothing.
  EXPECT_FALSE(MustParse("env=prod,env=staging").Matches(kProdEu));
  EXPECT_FALSE(MustParse("env,!env").Matches(kProdEu));
  EXPECT_FALSE(MustParse("env,!env").Matches(kNoLabels));
}

}  // namespace
}  // namespace storeplane::core
