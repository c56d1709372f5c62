//! Pure authentication and authorisation logic for kube-sim.
//!
//! kube-sim is an in-memory Kubernetes API server. Its HTTP layer owns storage and the clock;
//! this crate owns the decisions, so they can be tested exhaustively without IO. Objects are
//! `serde_json::Value`s exactly as the API stores them, and every function that depends on time
//! takes `now` (Unix seconds) as an argument. The only sources of randomness are RSA key
//! generation and [`token::random_jti`]; aws-lc-rs is the only crypto provider.
//!
//! # Authorisation ([`rbac`])
//!
//! [`rbac::authorize`] re-implements kube-apiserver's authorizer chain as far as kube-sim needs
//! it: the privileged-group authorizer (`system:masters` may do anything) followed by the RBAC
//! authorizer. RBAC is evaluated over an [`rbac::RbacSource`] (ClusterRoles, Roles and their
//! bindings as stored objects), with upstream's matching rules and reason strings
//! (`RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z"`). Verbs are never
//! validated, so custom verbs such as `use-managed-identity` on resources named after Azure
//! client ids authorise like any other. [`rbac::Attributes::from_sar_spec`] parses and validates
//! SubjectAccessReview specs with upstream messages, and [`rbac::rules_review`] resolves the rule
//! list SelfSubjectRulesReview (`kubectl auth can-i --list`) reports.
//!
//! Invariants: RBAC only ever allows or has no opinion (`denied` is always false); evaluation
//! never fails, missing roles only surface in the denial reason / `evaluationError`; ill-typed
//! parts of stored objects are ignored rather than trusted.
//!
//! # Service-account tokens ([`token`])
//!
//! A [`token::Signer`] holds one RSA 2048 key (persistable as PKCS#8) and an issuer. It mints
//! TokenRequest tokens ([`token::service_account_claims`], [`token::Signer::sign`],
//! [`token::Signer::issue`]) with the header, claim set and key id kube-apiserver produces,
//! publishes the JWKS and OpenID discovery documents, and reviews bearer tokens the way the
//! service-account authenticator does ([`token::Signer::review`]): issuer, kid, RS256 signature,
//! audiences, then time with a 60 s leeway. The liveness part (service account, bound pod,
//! secret or node still present with the claimed uid) is expressed against the
//! [`token::ObjectLookup`] trait the server implements. Failures carry upstream error text, and
//! [`token::token_review_status`] builds the TokenReview `status` including the
//! `[invalid bearer token, ...]` error form.
//!
//! Invariants: review never panics on any input string; only tokens signed by this signer's key
//! with RS256 and carrying its issuer are ever accepted; a successful review always yields the
//! username `system:serviceaccount:NS:NAME` and the groups `system:serviceaccounts`,
//! `system:serviceaccounts:NS`, `system:authenticated`.
//!
//! # Errors
//!
//! [`AuthError`] covers validation (field errors rendered like `field.ErrorList`), decoding,
//! key and signing failures; [`token::ReviewError`] covers token review outcomes.

mod error;
pub mod rbac;
pub mod token;

pub use error::{AuthError, FieldError, FieldErrorKind};
/// Go `%q` rendering of field values, from [`kube_sim_machinery::gofmt`].
pub use kube_sim_machinery::gofmt::{go_quote, go_quote_list};
/// RFC 3339 `metav1.Time` conversion, from [`kube_sim_machinery::time`].
pub use kube_sim_machinery::time;
pub use rbac::{
    Attributes, Decision, NonResourceAttributes, NonResourceRule, RbacSource, Request,
    ResourceAttributes, ResourceRule, RulesReview, StaticRbac, UserInfo, authorize, rules_for,
    rules_review,
};
pub use token::{
    ObjectLookup, ObjectRef, ObjectState, ReviewError, ReviewedToken, Signer, TokenRequestInput,
    openid_configuration, service_account_claims, token_review_status,
};
