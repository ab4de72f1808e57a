//! The CLI's end-to-end tests that need no container daemon and no quiet machine, in one
//! binary so CI links it once. Each module is one area; all read back what they push with
//! tools nobody here wrote (skopeo, docker-registry).

#[path = "../common/mod.rs"]
mod common;

mod bad_inputs;
mod chunked_uploads;
mod client_certs;
mod completions_man;
mod credential_stores;
mod dev_certs_idpbuilder;
mod discovery;
mod dry_run;
mod list_output;
mod local_registry;
mod login_logout;
mod platforms;
mod progress_output;
mod push_errors;
mod push_reuse;
mod push_sources;
mod push_tls_auth;
mod push_token_auth;
mod registry_referrers;
mod registry_source_faults;
mod registry_sources;
mod secrets_redacted;
