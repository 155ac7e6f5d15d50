//! User accounts as stored: the records and who may see what of them (`model`), the
//! statements that read and write them (`repo`), and the data rules of their fields
//! (`validation`). Both services build on it: `signins` checks credentials against it, `users`
//! manages it.

pub mod model;
pub mod repo;
pub mod tokens;
pub mod validation;
