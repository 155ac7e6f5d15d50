//! The user domain: models, validation, queries (`repo`) and operations (`service`).

pub mod cursor;
pub mod model;
pub mod repo;
pub mod service;
pub mod validation;
