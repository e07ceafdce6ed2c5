// Pins the ABI layout from the C++ side too: a change to abi.h that moves a field breaks the
// build here, not the data at run time.
#include <cstddef>

#include "passport/abi.h"
#include "userspace/events/event.hpp"

namespace passport::events {

static_assert(PP_ABI_VERSION == 5);

// The typed forms of event.hpp carry the ABI's values.
static_assert(static_cast<int>(DataSource::kSocket) == PP_SRC_SOCKET);
static_assert(static_cast<int>(DataSource::kTls) == PP_SRC_TLS);
static_assert(static_cast<int>(Sampled::kNo) == PP_SAMPLED_NO);
static_assert(static_cast<int>(Sampled::kYes) == PP_SAMPLED_YES);
static_assert(static_cast<int>(Sampled::kUnknown) == PP_SAMPLED_UNKNOWN);
static_assert(static_cast<int>(CtxSource::kNone) == PP_CTX_NONE);
static_assert(static_cast<int>(CtxSource::kXrayHeader) == PP_CTX_XRAY_HEADER);
static_assert(static_cast<int>(CtxSource::kTraceparent) == PP_CTX_TRACEPARENT);
static_assert(static_cast<int>(CtxSource::kMinted) == PP_CTX_MINTED);
static_assert(rule_index(Rule::kDefault) == PP_MAX_SAMPLE_RULES);
static_assert(rule_index(Rule::kNone) == PP_RULE_NONE);
static_assert(static_cast<int>(Role::kUnknown) == PP_ROLE_UNKNOWN);
static_assert(static_cast<int>(Role::kServer) == PP_ROLE_SERVER);
static_assert(static_cast<int>(Role::kClient) == PP_ROLE_CLIENT);
static_assert(static_cast<int>(InjectOutcome::kInjected) == PP_INJ_INJECTED);
static_assert(static_cast<int>(InjectOutcome::kLeave) == PP_INJ_LEAVE);
static_assert(static_cast<int>(InjectOutcome::kRewritten) == PP_INJ_REWRITTEN);
static_assert(offsetof(pp_event_header, kind) == 0, "kind must be the first byte");
static_assert(offsetof(pp_event_header, tgid) == 4);
static_assert(offsetof(pp_event_header, tid) == 8);
static_assert(offsetof(pp_event_header, ts_ns) == 16);
static_assert(offsetof(pp_conn_id, fd) == 4);
static_assert(offsetof(pp_conn_id, gen) == 8);
static_assert(offsetof(pp_endpoint, port) == 2);
static_assert(offsetof(pp_endpoint, addr) == 4);
static_assert(offsetof(pp_conn_open_event, conn) == 24);
static_assert(offsetof(pp_conn_open_event, local) == 40);
static_assert(offsetof(pp_conn_open_event, remote) == 60);
static_assert(offsetof(pp_conn_open_event, netns) == 80);
static_assert(offsetof(pp_conn_open_event, role) == 84);
static_assert(offsetof(pp_data_event, conn) == 24);
static_assert(offsetof(pp_data_event, exit_ns) == 40);
static_assert(offsetof(pp_data_event, pos) == 48);
static_assert(offsetof(pp_data_event, len) == 56);
static_assert(offsetof(pp_data_event, captured) == 60);
static_assert(offsetof(pp_data_event, direction) == 64);
static_assert(offsetof(pp_data_event, syscall) == 65);
static_assert(offsetof(pp_data_event, role) == 66);
static_assert(offsetof(pp_data_event, source) == 67);
static_assert(offsetof(pp_trace_ctx, segment_id) == 16);
static_assert(offsetof(pp_trace_ctx, sampled) == 32);
static_assert(offsetof(pp_trace_ctx, conn) == 40);
static_assert(offsetof(pp_trace_ctx, request_pos) == 56);
static_assert(offsetof(pp_data_event, msg) == 72);
static_assert(offsetof(pp_conn_close_event, rx_bytes) == 40);
static_assert(offsetof(pp_conn_close_event, tx_bytes) == 48);
static_assert(offsetof(pp_proc_event, ppid) == 24);
static_assert(offsetof(pp_proc_event, exit_code) == 28);
static_assert(offsetof(pp_proc_event, comm) == 32);
static_assert(offsetof(pp_proc_event, filename) == 48);
static_assert(sizeof(pp_config) == 8);
static_assert(offsetof(pp_config, self_tgid) == 0);
static_assert(offsetof(pp_config, trace_all) == 4);
static_assert(offsetof(pp_config, filter_ports) == 5);
static_assert(sizeof(pp_pid_bitmap) == sizeof(uint64_t) * PP_PID_BITMAP_WORDS);
static_assert(offsetof(pp_conn_state, tx_pos) == 16);
static_assert(offsetof(pp_conn_state, rx_head_budget) == 24);
static_assert(offsetof(pp_conn_state, role) == 32);
static_assert(offsetof(pp_conn_state, tls) == 33);
static_assert(offsetof(pp_conn_state, tls_rx_pos) == 40);
static_assert(offsetof(pp_conn_state, head_pending) == 56);
static_assert(offsetof(pp_conn_state, gate_rx) == 57);
static_assert(offsetof(pp_conn_state, gate_body_end) == 64);
static_assert(sizeof(pp_conn_state) == 72);
static_assert(offsetof(pp_deny_key, addr) == 4);
static_assert(sizeof(pp_deny_key) == 20);
static_assert(offsetof(pp_inject_adopt, app_pos) == 40);
static_assert(offsetof(pp_inject_adopt, netns) == 48);
static_assert(offsetof(pp_trace_ctx, trace_rand) == 4);
static_assert(offsetof(pp_trace_ctx, parent_id) == 24);
static_assert(offsetof(pp_trace_ctx, source) == 33);
static_assert(offsetof(pp_trace_ctx_event, ctx) == 24);
static_assert(offsetof(pp_trace_ctx_event, rule) == 88);
static_assert(offsetof(pp_trace_ctx_event, rejected) == 90);
static_assert(offsetof(pp_trace_ctx_event, unsampled_rx_pos) == 96);
static_assert(offsetof(pp_trace_ctx_event, unsampled) == 112);
static_assert(sizeof(pp_trace_ctx_event) == 120);
static_assert(offsetof(pp_sample_rule, host) == 16);
static_assert(offsetof(pp_sample_rule, method) == 16 + PP_GLOB_MAX);
static_assert(offsetof(pp_sample_rule, path) == 16 + 2 * PP_GLOB_MAX);
static_assert(offsetof(pp_inject_event, local) == 24);
static_assert(offsetof(pp_inject_event, remote) == 44);
static_assert(offsetof(pp_inject_event, netns) == 64);
static_assert(offsetof(pp_inject_event, outcome) == 68);
static_assert(offsetof(pp_inject_event, ctx_from_thread) == 69);
static_assert(offsetof(pp_inject_event, rule) == 70);
static_assert(offsetof(pp_inject_event, app_pos) == 72);
static_assert(offsetof(pp_inject_event, subsegment_id) == 80);
static_assert(offsetof(pp_inject_event, socket_cookie) == 88);
static_assert(offsetof(pp_inject_event, ctx) == 96);
static_assert(sizeof(pp_inject_event) == 160);
static_assert(offsetof(pp_sdk_event, syscall) == 24);
static_assert(offsetof(pp_sdk_event, spaced) == 25);
static_assert(sizeof(pp_sdk_event) == 32);
static_assert(sizeof(PP_XRAY_DGRAM_HDR) - 1 == PP_XRAY_DGRAM_HDR_LEN);
static_assert(sizeof(PP_XRAY_DGRAM_HDR_SP) - 1 == PP_XRAY_DGRAM_HDR_SP_LEN);

}  // namespace passport::events
