// The credential file (atomic, 0600) and the enrollment token's sources.
#include "agent/credential_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "agent_test_support.h"

namespace storeplane::agent {
namespace {

using testing::TempDir;

const std::string kCredential = "spa_" + std::string(43, 'A');

TEST(CredentialFileTest, WrittenWithMode0600EvenUnderALooseUmask) {
  TempDir dir;
  const std::string path = dir / "credential";
  const mode_t old_umask = ::umask(0);
  const auto written = WriteCredentialFile(path, kCredential);
  ::umask(old_umask);
  ASSERT_TRUE(written.ok()) << written.error().message;
  struct stat st = {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(testing::ReadFile(path), kCredential + "\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  auto read = ReadCredentialFile(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->value_or(""), kCredential);
}

TEST(CredentialFileTest, ReplacesAnOldFileAndALeftoverTemporary) {
  TempDir dir;
  const std::string path = dir / "credential";
  testing::WriteFile(path, "spa_old\n");
  testing::WriteFile(path + ".tmp", "half-written");
  ASSERT_TRUE(WriteCredentialFile(path, kCredential).ok());
  EXPECT_EQ(testing::ReadFile(path), kCredential + "\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(CredentialFileTest, MissingFileIsNoCredential) {
  TempDir dir;
  auto read = ReadCredentialFile(dir / "none");
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->has_value());
}

TEST(CredentialFileTest, GarbageIsRefused) {
  TempDir dir;
  testing::WriteFile(dir / "credential", "two words\n");
  EXPECT_FALSE(ReadCredentialFile(dir / "credential").ok());
  testing::WriteFile(dir / "empty", "\n");
  EXPECT_FALSE(ReadCredentialFile(dir / "empty").ok());
  EXPECT_FALSE(WriteCredentialFile(dir / "x", "spa_with\nnewline").ok());
  EXPECT_FALSE(WriteCredentialFile(dir / "x", "").ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "x"));
}

TEST(CredentialFileTest, PlausibleSecrets) {
  EXPECT_TRUE(IsPlausibleSecret(kCredential));
  EXPECT_FALSE(IsPlausibleSecret(""));
  EXPECT_FALSE(IsPlausibleSecret("a b"));
  EXPECT_FALSE(IsPlausibleSecret("a\r\nX-Injected: 1"));
  EXPECT_FALSE(IsPlausibleSecret(std::string(513, 'a')));
}

TEST(CredentialFileTest, EnrollmentTokenFromFileThenEnvironment) {
  TempDir dir;
  testing::WriteFile(dir / "token", "  spe_from_file\n");
  EXPECT_EQ(ReadEnrollmentToken(dir / "token", "spe_from_env").value(), "spe_from_file");
  EXPECT_EQ(ReadEnrollmentToken("", "spe_from_env\n").value(), "spe_from_env");
  EXPECT_EQ(ReadEnrollmentToken("", nullptr).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(ReadEnrollmentToken("", "").error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(ReadEnrollmentToken(dir / "missing", "spe_from_env").ok());  // a named file must exist
  // The messages never carry the token itself.
  testing::WriteFile(dir / "bad", "spe bad token");
  const auto bad = ReadEnrollmentToken(dir / "bad", nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.find("bad token"), std::string::npos);
}

}  // namespace
}  // namespace storeplane::agent
