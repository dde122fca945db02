// Path normalization and Host validation: the forms an attacker uses to slip past a route.
#include <gtest/gtest.h>

#include "proxy/uri.hpp"

namespace fledge::proxy {
namespace {

std::string norm(std::string_view path, EncodedSlashes slashes = EncodedSlashes::kReject) {
  std::string out;
  switch (normalizePath(path, slashes, out)) {
    case PathStatus::kNormal: return std::string(path);
    case PathStatus::kChanged: return out;
    case PathStatus::kBad: return "<bad>";
  }
  return "<?>";
}

TEST(NormalizePath, AlreadyNormalPathsAreLeftAlone) {
  std::string out;
  for (auto p : {"/", "/beta", "/beta/x", "/a/b/", "/a.b/c..d/.e", "/%20", "/a%2Cb"})
    EXPECT_EQ(normalizePath(p, EncodedSlashes::kReject, out), PathStatus::kNormal) << p;
}

TEST(NormalizePath, EveryBypassFormBecomesThePlainPath) {
  for (auto p : {"//beta/x", "/./beta/x", "/x/../beta/x", "/%62eta/x", "/%2e/beta/x", "/%2E%2E/beta/x", "/beta//x",
                 "/beta/./x", "/beta/y/../x", "///beta///x", "/../beta/x", "/%2e%2e/%2E/beta/%78"})
    EXPECT_EQ(norm(p), "/beta/x") << p;
}

TEST(NormalizePath, DotSegmentsFollowRfc3986) {
  EXPECT_EQ(norm("/a/b/c/./../../g"), "/a/g");
  EXPECT_EQ(norm("/a/."), "/a/");
  EXPECT_EQ(norm("/a/.."), "/");
  EXPECT_EQ(norm("/.."), "/");
  EXPECT_EQ(norm("//"), "/");
  EXPECT_EQ(norm("/a/./b/../c//d"), "/a/c/d");
  EXPECT_EQ(norm("/a/b/"), "/a/b/");
  EXPECT_EQ(norm("/..a/b"), "/..a/b");
}

TEST(NormalizePath, EscapesOfReservedCharactersStayEncodedInUppercase) {
  EXPECT_EQ(norm("/a%3fb"), "/a%3Fb");
  EXPECT_EQ(norm("/a%2c%2Cb"), "/a%2C%2Cb");
  EXPECT_EQ(norm("/%7E%41"), "/~A");
  EXPECT_EQ(norm("/caf%c3%a9"), "/caf%C3%A9");
}

TEST(NormalizePath, MalformedAndRefusedForms) {
  for (auto p : {"/a%zz", "/a%4", "/a%", "/%00", "/a#b", "", "a/b", "/%2Fbeta/x", "/%2fbeta", "/%5Cbeta/x", "/\\beta/x"})
    EXPECT_EQ(norm(p), "<bad>") << p;
}

TEST(NormalizePath, DecodedSlashesJoinTheNormalization) {
  EXPECT_EQ(norm("/%2Fbeta/x", EncodedSlashes::kDecode), "/beta/x");
  EXPECT_EQ(norm("/%5Cbeta/x", EncodedSlashes::kDecode), "/beta/x");
  EXPECT_EQ(norm("/\\beta\\x", EncodedSlashes::kDecode), "/beta/x");
  EXPECT_EQ(norm("/a%2F..%2Fbeta", EncodedSlashes::kDecode), "/beta");
  EXPECT_EQ(norm("/%00", EncodedSlashes::kDecode), "<bad>");
}

TEST(HostValidation, AcceptsNamesAddressesAndPorts) {
  for (auto h : {"", "a.test", "A.TEST", "a.test:8080", "127.0.0.1", "127.0.0.1:1", "[::1]", "[::1]:80", "x_y.internal",
                 "a-b.c~d", "a.test.", "localhost:65535"})
    EXPECT_TRUE(isValidHost(h)) << h;
}

TEST(HostValidation, RefusesWhatCouldSplitOrSmuggle) {
  for (auto h : {"a.test/evil", "a b", "a,b", "a@b", "[::1", "a.test:", "a.test:99999", "a.test:8o", ".a.test", "a..test",
                 "a\r\nb", "a\\b", "a?b", "a#b", "[::1]x", "[]", "a;b", "a%2eb", "a:1:2"})
    EXPECT_FALSE(isValidHost(h)) << h;
}

}  // namespace
}  // namespace fledge::proxy
