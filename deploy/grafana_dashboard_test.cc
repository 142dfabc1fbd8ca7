// The Grafana dashboard (deploy/grafana/nibble-dashboard.json) parses, its panels are well formed, and every
// PromQL expression in it names only metric families that ../shared/docs/design.md lists (histogram series
// by their _bucket/_sum/_count names), covering what the dashboard is for: nibble-server's and
// nibble-quantizer's. The alerting rules (deploy/prometheus/rules.yml) name only those families too.
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/shared_data.h"

namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Every `nibble_*` name in `text`, outside double-quoted strings (label values).
std::vector<std::string> NibbleNames(const std::string& text) {
  const std::string unquoted = std::regex_replace(text, std::regex("\"[^\"]*\""), "\"\"");
  static const std::regex name("nibble_[a-z0-9_]+");
  std::vector<std::string> names;
  for (auto it = std::sregex_iterator(unquoted.begin(), unquoted.end(), name); it != std::sregex_iterator(); ++it) {
    names.push_back(it->str());
  }
  return names;
}

// `series` as the family it belongs to: itself, or without a histogram suffix when that names a family.
std::string Family(const std::string& series, const std::set<std::string>& families) {
  for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
    if (series.ends_with(suffix) && families.contains(series.substr(0, series.size() - suffix.size()))) {
      return series.substr(0, series.size() - suffix.size());
    }
  }
  return series;
}

// The PromQL expressions of a dashboard: every "expr", and the queries of template variables.
void CollectExpressions(const nlohmann::json& node, std::vector<std::string>& out) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if ((key == "expr" || key == "definition") && value.is_string()) out.push_back(value.get<std::string>());
      CollectExpressions(value, out);
    }
  } else if (node.is_array()) {
    for (const nlohmann::json& item : node) CollectExpressions(item, out);
  }
}

// The metric families design.md lists.
std::set<std::string> DesignFamilies(const std::filesystem::path& design_path) {
  std::set<std::string> families;
  for (const std::string& name : NibbleNames(ReadFile(design_path))) families.insert(name);
  return families;
}

class GrafanaDashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream file(std::filesystem::path(NIBBLE_DEPLOY_DIR) / "grafana/nibble-dashboard.json");
    ASSERT_TRUE(file) << "cannot open the dashboard";
    dashboard_ = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(dashboard_.is_discarded()) << "nibble-dashboard.json is not valid JSON";
  }
  nlohmann::json dashboard_;
};

TEST_F(GrafanaDashboardTest, PanelsAreWellFormed) {
  EXPECT_EQ(dashboard_.at("uid"), "nibble-server");
  std::set<int> ids;
  for (const nlohmann::json& panel : dashboard_.at("panels")) {
    const std::string title = panel.at("title");
    EXPECT_TRUE(ids.insert(panel.at("id").get<int>()).second) << "duplicate panel id in " << title;
    for (const char* key : {"x", "y", "w", "h"}) EXPECT_TRUE(panel.at("gridPos").contains(key)) << title;
    EXPECT_EQ(panel.at("datasource").at("uid"), "${datasource}") << title;
    std::set<std::string> ref_ids;
    ASSERT_FALSE(panel.at("targets").empty()) << title;
    for (const nlohmann::json& target : panel.at("targets")) {
      EXPECT_TRUE(ref_ids.insert(target.at("refId").get<std::string>()).second) << "duplicate refId in " << title;
      const std::string expr = target.at("expr");
      if (expr.find("histogram_quantile") != std::string::npos) {
        EXPECT_THAT(expr, ::testing::HasSubstr("_bucket")) << title;
        EXPECT_THAT(expr, ::testing::HasSubstr("le")) << title << ": quantiles need the le label kept";
      }
    }
  }
}

TEST_F(GrafanaDashboardTest, ExpressionsNameOnlyTheDesignsMetricFamilies) {
  NIBBLE_REQUIRE_SHARED(design_path, "docs/design.md");
  const std::set<std::string> families = DesignFamilies(design_path);
  ASSERT_TRUE(families.contains("nibble_time_to_first_token_seconds")) << "design.md lists no metrics?";

  std::vector<std::string> expressions;
  CollectExpressions(dashboard_, expressions);
  ASSERT_FALSE(expressions.empty());
  std::set<std::string> used;
  for (const std::string& expr : expressions) {
    const std::vector<std::string> names = NibbleNames(expr);
    EXPECT_FALSE(names.empty()) << "names no nibble metric: " << expr;
    for (const std::string& series : names) {
      const std::string family = Family(series, families);
      EXPECT_TRUE(families.contains(family)) << series << " is not a metric family of design.md, in: " << expr;
      used.insert(family);
    }
  }
  for (const char* wanted :
       {"nibble_time_to_first_token_seconds", "nibble_inter_token_latency_seconds",
        "nibble_e2e_request_latency_seconds", "nibble_generation_tokens_total", "nibble_requests_total",
        "nibble_requests_running", "nibble_requests_waiting", "nibble_kv_cache_usage_ratio",
        "nibble_gpu_memory_used_bytes", "nibble_gpu_memory_total_bytes", "nibble_model_weight_bytes",
        "nibble_quant_jobs", "nibble_quant_job_duration_seconds", "nibble_quant_block_seconds",
        "nibble_quant_peak_gpu_memory_bytes"}) {
    EXPECT_TRUE(used.contains(wanted)) << "the dashboard shows nothing of " << wanted;
  }
}

// Every alert's `expr:` (one line each in rules.yml) names design.md's families only, and each service has one.
TEST(PrometheusRulesTest, ExpressionsNameOnlyTheDesignsMetricFamilies) {
  NIBBLE_REQUIRE_SHARED(design_path, "docs/design.md");
  const std::set<std::string> families = DesignFamilies(design_path);
  std::istringstream rules(ReadFile(std::filesystem::path(NIBBLE_DEPLOY_DIR) / "prometheus/rules.yml"));
  static const std::regex expr_line(R"(^\s*expr:\s*(.+)$)");
  std::set<std::string> used;
  int expressions = 0;
  for (std::string line; std::getline(rules, line);) {
    std::smatch match;
    if (!std::regex_match(line, match, expr_line)) continue;
    ++expressions;
    for (const std::string& series : NibbleNames(match[1].str())) {
      const std::string family = Family(series, families);
      EXPECT_TRUE(families.contains(family)) << series << " is not a metric family of design.md, in: " << line;
      used.insert(family);
    }
  }
  EXPECT_GE(expressions, 5) << "rules.yml holds fewer alerts than it did";
  EXPECT_TRUE(used.contains("nibble_time_to_first_token_seconds")) << "no nibble-server alert on latency";
  EXPECT_TRUE(used.contains("nibble_quant_jobs")) << "no nibble-quantizer alert on failed jobs";
}

}  // namespace
