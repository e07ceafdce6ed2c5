#pragma once
// Credential redaction for everything Passport writes: URLs (query and fragment values, userinfo)
// and process arguments. The rule (docs/xray-mapping.md "Redaction"):
//
// A name (a query parameter's, or an argument's `--name`) is a credential name when, after
// percent-decoding ('+' as space), it
//  - starts with `x-amz-` (any case): SigV4 presigned URLs (X-Amz-Signature, X-Amz-Credential,
//    X-Amz-Security-Token, ...), or
//  - equals one of the names the user added (--redact-query-param, any case), or
//  - has a word that contains token, secret, password, passwd, passphrase, signature,
//    credential, apikey, session, sessid or authorization, or a word that is exactly key, keys,
//    sig, pwd, pass or auth. Words are split at every character that is not a letter or a digit and
//    where a lower-case letter or digit is followed by an upper-case one (camelCase), then
//    lower-cased. So api_key, apiKey, X-Api-Key, access_token, accessToken, AWSAccessKeyId and
//    sessionid, PHPSESSID match; monkey, author, design and page do not.
// Only values change: names, order, separators and empty values are kept; a value becomes
// kRedacted.
#include <string>
#include <string_view>
#include <vector>

namespace passport::redact {

inline constexpr std::string_view kRedacted = "REDACTED";

struct Policy {
    bool enabled = true;                   // --no-redact turns value redaction off
    std::vector<std::string> extra_names;  // --redact-query-param NAME (matched case-insensitively)
};

// "%41+b" -> "A b". Invalid escapes are kept as they are.
std::string percent_decode(std::string_view s);

// The rule above; `name` is taken as it appears on the wire (it is decoded here).
bool is_credential_name(std::string_view name, const Policy& policy);

// Removes `user[:password]@` from the authority of an absolute URL ("scheme://..."). Always
// applied, whatever the policy.
std::string strip_userinfo(std::string_view url);

// strip_userinfo, then (when the policy is enabled) every `name=value` item of the query and of
// the fragment, separated by '&' or ';', whose name is a credential name gets kRedacted as value.
// Works on absolute URLs and on bare request targets ("/x?token=1").
std::string redact_url(std::string_view url, const Policy& policy);

// Process arguments (argv[0] included, kept as is) with credentials hidden when the policy is
// enabled: `--name=value` / `-name=value` / `NAME=value` with a credential name get kRedacted as
// value, `--name value` (a credential flag followed by an argument that does not start with '-')
// gets the next argument replaced, and an argument holding "://" goes through redact_url
// (`--db-url=postgres://u:pw@h/` loses its userinfo).
std::vector<std::string> redact_args(const std::vector<std::string>& argv, const Policy& policy);

}  // namespace passport::redact
