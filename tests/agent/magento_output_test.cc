// Parsers of bin/magento output: only pattern-checked values come out.
#include "agent/magento_output.h"

#include <gtest/gtest.h>

namespace storeplane::agent {
namespace {

using core::CacheType;
using core::IndexerState;
using core::IndexerStatus;

TEST(MagentoOutputTest, FlushedCacheTypes) {
  auto types = ParseFlushedCacheTypes("Flushed cache types:\nconfig\nfull_page\n  eav  \nnot_a_type\nconfig\n");
  ASSERT_TRUE(types.ok());
  EXPECT_EQ(*types, (std::vector<CacheType>{CacheType::kConfig, CacheType::kFullPage, CacheType::kEav}));
  auto empty = ParseFlushedCacheTypes("Flushed cache types:\n");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(ParseFlushedCacheTypes("config\nlayout\n").ok());
  EXPECT_FALSE(ParseFlushedCacheTypes("").ok());
}

TEST(MagentoOutputTest, IndexerTableKeepsIdsAndStatusesOnly) {
  const std::string table =
      "+-----------+---------+------------------+-----------+\n"
      "| Indexer Id | Title | Status | Update On |\n"
      "+-----------+---------+------------------+-----------+\n"
      "| catalog_product_price | Product Price | Ready | Schedule |\n"
      "| catalogrule_rule | Catalog Rule Product | Reindex required | Save |\n"
      "| cataloginventory_stock | Stock | Processing | Schedule |\n"
      "| catalogsearch_fulltext | Catalog Search | Suspended | Schedule |\n"
      "| customer_grid | Grid of canary.customer@example.com | Ready | Save |\n"
      "| canary.customer@example.com | 4111 1111 1111 1111 | Ready | Save |\n"
      "| ORDER-CANARY-000123 | x | Ready | Save |\n"
      "| design_config_grid | Design | Invalid status | Save |\n"
      "| catalog_product_price | duplicate | Processing | Save |\n"
      "| short_row |\n"
      "+-----------+---------+------------------+-----------+\n"
      "Trailing text with ORDER-CANARY-000123\n";
  auto indexers = ParseIndexerTable(table);
  ASSERT_TRUE(indexers.ok()) << indexers.error().message;
  EXPECT_EQ(*indexers, (std::vector<IndexerState>{{"catalog_product_price", IndexerStatus::kReady},
                                                  {"catalogrule_rule", IndexerStatus::kReindexRequired},
                                                  {"cataloginventory_stock", IndexerStatus::kProcessing},
                                                  {"catalogsearch_fulltext", IndexerStatus::kSuspended},
                                                  {"customer_grid", IndexerStatus::kReady}}));
}

TEST(MagentoOutputTest, IndexerColumnsComeFromTheHeader) {
  auto indexers = ParseIndexerTable("| Title | Status | Indexer Id |\n| Stock | Ready | inventory |\n");
  ASSERT_TRUE(indexers.ok());
  EXPECT_EQ(*indexers, (std::vector<IndexerState>{{"inventory", IndexerStatus::kReady}}));
}

TEST(MagentoOutputTest, NoIndexerRowIsAParseError) {
  EXPECT_FALSE(ParseIndexerTable("").ok());
  EXPECT_FALSE(ParseIndexerTable("| Indexer Id | Title | Status |\n").ok());
  EXPECT_FALSE(ParseIndexerTable("Category Products:   Ready\n").ok());
  EXPECT_FALSE(ParseIndexerTable("| Bad Id | t | Ready |\n").ok());
}

TEST(MagentoOutputTest, MagentoVersion) {
  EXPECT_EQ(ParseMagentoVersion("Magento CLI 2.4.6-p3\n").value(), "2.4.6-p3");
  EXPECT_EQ(ParseMagentoVersion("PHP Warning: something\nMagento CLI 2.4.7\n").value(), "2.4.7");
  EXPECT_FALSE(ParseMagentoVersion("Magento CLI dev-main\n").ok());
  EXPECT_FALSE(ParseMagentoVersion("").ok());
  EXPECT_FALSE(ParseMagentoVersion("Magento CLI 2.4.6; rm -rf /\n").ok());
}

TEST(MagentoOutputTest, ReleaseMarker) {
  EXPECT_EQ(ParseReleaseMarker("r2026.12.04-1\n"), "r2026.12.04-1");
  EXPECT_EQ(ParseReleaseMarker("  v1.2.3+build.7  "), "v1.2.3+build.7");
  EXPECT_FALSE(ParseReleaseMarker("").has_value());
  EXPECT_FALSE(ParseReleaseMarker("two words").has_value());
  EXPECT_FALSE(ParseReleaseMarker("canary.customer@example.com").has_value());
  EXPECT_FALSE(ParseReleaseMarker(std::string(65, 'a')).has_value());
}

}  // namespace
}  // namespace storeplane::agent
