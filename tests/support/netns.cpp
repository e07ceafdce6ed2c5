#include "tests/support/netns.hpp"

#include <unistd.h>

#include <atomic>
#include <stdexcept>

namespace passport::testing {
namespace {

constexpr auto kCommandTimeout = std::chrono::seconds(10);

CommandResult ip(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ip"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(ChildOptions{argv, {}, {}, {}, true}, deadline_in(kCommandTimeout));
}

void ip_or_throw(const std::vector<std::string>& args) {
    CommandResult result = ip(args);
    if (!result.status.success()) {
        std::string text = "ip";
        for (const auto& arg : args) text += " " + arg;
        throw std::runtime_error(text + ": " + result.status.describe() + ": " + result.err);
    }
}

std::string unique_suffix() {
    static std::atomic<int> counter{0};
    return std::to_string(::getpid() % 100000) + std::to_string(counter++);
}

}  // namespace

std::string netns_unavailable_reason() {
    if (::geteuid() != 0) return "network namespaces need root (euid != 0)";
    if (find_executable("ip").empty()) return "the `ip` command (iproute2) is not installed";
    return {};
}

NetNs::NetNs(const std::string& tag) : name_("pp" + unique_suffix() + "-" + tag) {
    ip_or_throw({"netns", "add", name_});
    try {
        ip_or_throw({"-n", name_, "link", "set", "lo", "up"});
    } catch (...) {
        ip({"netns", "del", name_});
        throw;
    }
}

NetNs::~NetNs() { ip({"netns", "del", name_}); }

std::vector<std::string> NetNs::wrap(const std::vector<std::string>& argv) const {
    std::vector<std::string> wrapped = {find_executable("ip"), "netns", "exec", name_};
    wrapped.insert(wrapped.end(), argv.begin(), argv.end());
    return wrapped;
}

CommandResult NetNs::run(const std::vector<std::string>& argv, Deadline deadline) const {
    return run_command(ChildOptions{wrap(argv), {}, {}, {}, true}, deadline);
}

VethLink::VethLink(const NetNs& a, const std::string& cidr_a, const NetNs& b,
                   const std::string& cidr_b)
    : a_(a) {
    std::string suffix = unique_suffix();  // interface names are at most 15 characters
    end_a_ = "ppa" + suffix;
    std::string end_b = "ppb" + suffix;
    ip_or_throw({"link", "add", end_a_, "type", "veth", "peer", "name", end_b});
    try {
        ip_or_throw({"link", "set", end_a_, "netns", a.name()});
        ip_or_throw({"link", "set", end_b, "netns", b.name()});
        ip_or_throw({"-n", a.name(), "addr", "add", cidr_a, "dev", end_a_});
        ip_or_throw({"-n", b.name(), "addr", "add", cidr_b, "dev", end_b});
        ip_or_throw({"-n", a.name(), "link", "set", end_a_, "up"});
        ip_or_throw({"-n", b.name(), "link", "set", end_b, "up"});
    } catch (...) {
        ip({"link", "del", end_a_});
        ip({"-n", a.name(), "link", "del", end_a_});
        throw;
    }
}

// Deleting one end of a veth pair deletes both.
VethLink::~VethLink() { ip({"-n", a_.name(), "link", "del", end_a_}); }

}  // namespace passport::testing
