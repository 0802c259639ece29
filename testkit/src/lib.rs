//! Parts the server's and the end-to-end tests share.

pub mod postgres;
pub mod piv;
