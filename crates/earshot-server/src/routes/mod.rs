//! HTTP handlers, one module per resource.

pub mod events;
pub mod health;
pub mod models;
pub mod openai;
pub mod sessions;
pub mod stream;
