#pragma once
// Network namespaces for tests that need two "hosts" on one machine:
// NetNs wraps `ip netns add/del`; VethLink joins two namespaces with a veth pair and gives each
// end an address (direct veth pairs work here; a Linux bridge did not pass TCP). Names carry
// the test's pid so parallel runs never collide, and everything is deleted by the destructors.
// Programs are started inside with NetNs::wrap(argv) → `ip netns exec <name> argv…`, which
// execs in place, so the ChildProcess pid is the program's pid.
#include <string>
#include <vector>

#include "tests/support/child_process.hpp"

namespace passport::testing {

// Empty when namespaces can be made here; otherwise the reason (for GTEST_SKIP).
std::string netns_unavailable_reason();

class NetNs {
  public:
    // Creates namespace "pp<pid>-<tag>" with its loopback up. Throws std::runtime_error.
    explicit NetNs(const std::string& tag);
    ~NetNs();
    NetNs(const NetNs&) = delete;
    NetNs& operator=(const NetNs&) = delete;

    const std::string& name() const { return name_; }
    std::vector<std::string> wrap(const std::vector<std::string>& argv) const;
    CommandResult run(const std::vector<std::string>& argv, Deadline deadline) const;

  private:
    std::string name_;
};

class VethLink {
  public:
    // Creates a veth pair, puts one end in each namespace with the given CIDR address
    // (e.g. "192.0.2.1/24") and brings both up. Throws std::runtime_error.
    VethLink(const NetNs& a, const std::string& cidr_a, const NetNs& b, const std::string& cidr_b);
    ~VethLink();
    VethLink(const VethLink&) = delete;
    VethLink& operator=(const VethLink&) = delete;

  private:
    const NetNs& a_;
    std::string end_a_;
};

}  // namespace passport::testing
