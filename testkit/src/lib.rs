//! Parts the server's and the end-to-end tests share: a private PostgreSQL cluster, and
//! PIV test credentials (a test CA, and a card's keys and certificates without the card).

pub mod piv;
pub mod piv_ca;
pub mod postgres;
