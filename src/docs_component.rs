//! The component id of the API documentation (`components/docs`). A file of its own, importing
//! nothing, because `build.rs` includes it too: the manifest's private components but this one
//! are the namespace's local workers.

/// Component id of the documentation component: a built-in reserved worker name, never a tenant.
pub const DOCS_COMPONENT: &str = "docs";
