//! Parts the server's and the end-to-end tests share.

pub mod piv;
pub mod postgres;
