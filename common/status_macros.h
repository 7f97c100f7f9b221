#pragma once
// Abseil 20220623 has no RETURN_IF_ERROR / ASSIGN_OR_RETURN; these are the project's only copies.
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MC_STATUS_CONCAT_INNER_(a, b) a##b
#define MC_STATUS_CONCAT_(a, b) MC_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                         \
  do {                                                \
    ::absl::Status mc_status_ = (expr);               \
    if (!mc_status_.ok()) return mc_status_;          \
  } while (0)

#define MC_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).status();  \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  MC_ASSIGN_OR_RETURN_IMPL_(MC_STATUS_CONCAT_(mc_statusor_, __LINE__), lhs, expr)
