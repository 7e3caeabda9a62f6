#include "text_entries.hpp"

#include <charconv>
#include <cmath>

#include "cdmf/core/agree.hpp"
#include "cdmf/core/error.hpp"
#include "cdmf/data/layout.hpp"

namespace cdmf::detail {

namespace {
constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
constexpr size_t kShownChars = 60;

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// Long lines are cut so that messages stay one readable line.
std::string shown(std::string_view text) {
  if (text.size() <= kShownChars) return std::string(text);
  return std::string(text.substr(0, kShownChars)) + "...";
}

std::string with_article(const char* noun) {
  const bool vowel = std::string_view("aeiou").find(noun[0]) != std::string_view::npos;
  return fmt::format("{} {}", vowel ? "an" : "a", noun);
}

// from_chars is locale-independent but rejects a leading '+'.
std::string_view without_plus(std::string_view text) {
  if (text.size() > 1 && text[0] == '+' && text[1] != '-') text.remove_prefix(1);
  return text;
}

// A header's first field is a column name; a data line's is an index or id.
bool looks_numeric(std::string_view field) {
  const char c = field.empty() ? ' ' : field[0];
  return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

std::int64_t parse_index(std::string_view field, const IndexRule& rule, const std::string& file,
                         std::int64_t line) {
  std::int64_t raw = 0;
  // Messages only on failure: building the location for every entry cost a fifth of a read.
  if (!parse_integer(field, raw))
    fail("{}: cannot parse '{}' as {}", location(file, line), shown(field), with_article(rule.name));
  return apply_index_rule(raw, rule, file, line);
}

double parse_value(std::string_view field, const std::string& file, std::int64_t line) {
  const std::string_view text = without_plus(field);
  const char* end = text.data() + text.size();
  double value = 0.0;
  const auto result = std::from_chars(text.data(), end, value);
  if (text.empty() || result.ptr != end ||
      (result.ec != std::errc() && result.ec != std::errc::result_out_of_range))
    fail("{}: cannot parse '{}' as a value", location(file, line), shown(field));
  if (result.ec == std::errc::result_out_of_range)
    fail("{}: value '{}' is outside the range of double", location(file, line), shown(field));
  check_finite(value, file, line);
  return value;
}
}  // namespace

bool parse_integer(std::string_view text, std::int64_t& value) {
  text = without_plus(text);
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  return !text.empty() && result.ec == std::errc() && result.ptr == end;
}

void split_fields(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  if (line.substr(0, kByteOrderMark.size()) == kByteOrderMark)
    line.remove_prefix(kByteOrderMark.size());
  const size_t n = line.size();
  size_t at = 0;
  while (at < n && is_blank(line[at])) ++at;
  if (at == n) return;
  while (true) {
    size_t end = at;
    while (end < n && !is_blank(line[end]) && line[end] != ',') ++end;
    fields.push_back(line.substr(at, end - at));
    at = end;
    while (at < n && is_blank(line[at])) ++at;
    if (at == n) return;
    if (line[at] == ',') {
      ++at;
      while (at < n && is_blank(line[at])) ++at;
      if (at == n) {
        fields.emplace_back();  // a trailing comma ends with an empty field
        return;
      }
    }
  }
}

std::int64_t apply_index_rule(std::int64_t raw, const IndexRule& rule, const std::string& file,
                              std::int64_t line) {
  if (rule.ids) return raw;
  // Before any size is taken from it: max index + 1 of INT64_MAX wraps around.
  if (raw > rule.base && raw - rule.base >= kMaxDimension)
    fail("{}: {} {} is beyond the largest supported dimension, {} {} (ScaLAPACK's 32-bit "
         "descriptors)",
         location(file, line), rule.name, raw, kMaxDimension, rule.dimension);
  if (rule.count > 0) {
    if (raw < rule.base || raw - rule.base >= rule.count)
      fail("{}: {} {} outside {}..{} (the header says {} {})", location(file, line), rule.name, raw,
           rule.base, rule.base + rule.count - 1, rule.count, rule.dimension);
  } else if (raw < rule.base) {
    if (rule.base == 0)
      fail("{}: {} {} is negative (with --index-base 0)", location(file, line), rule.name, raw);
    fail("{}: {} {} is below the index base (with --index-base {})", location(file, line),
         rule.name, raw, rule.base);
  }
  return raw - rule.base;
}

void check_finite(double value, const std::string& file, std::int64_t line) {
  if (!std::isfinite(value)) fail("{}: value {} is not finite", location(file, line), value);
}

EntryList parse_entries(MPI_Comm comm, const TextChunk& chunk, const std::string& file,
                        const LineSyntax& syntax) {
  EntryList list;
  list.file = file;
  run_agreed(comm, [&] {
    // At most one entry a line: no regrowth (and no second page fault) of the lists.
    list.rows.reserve(chunk.size());
    list.cols.reserve(chunk.size());
    list.values.reserve(chunk.size());
    list.lines.reserve(chunk.size());
    std::vector<std::string_view> fields;
    chunk.for_each_line([&](std::string_view text, std::int64_t line) {
      split_fields(text, fields);
      if (fields.empty()) return;
      if (line == 1 && syntax.header_allowed && !looks_numeric(fields[0])) return;
      if (fields.size() < syntax.min_fields || fields.size() > syntax.max_fields)
        fail("{}: expected '{}', got '{}'", location(file, line), syntax.expected, shown(text));
      list.rows.push_back(parse_index(fields[0], syntax.row, file, line));
      list.cols.push_back(parse_index(fields[1], syntax.col, file, line));
      list.values.push_back(syntax.values ? parse_value(fields[2], file, line) : 0.0);
      list.lines.push_back(line);
    });
  });
  return list;
}

}  // namespace cdmf::detail
