//! All integration tests, as one binary (see `suite/`).

mod suite;
