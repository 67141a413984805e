//! placeholder
pub mod build;
pub mod corpus;
pub mod demo;
pub mod error;
pub mod fsutil;
pub mod inspect;
pub mod loader;
pub mod manifest;
pub mod packing;
pub mod shards;
pub mod tokenizer;

pub use tokenizer::Tokenizer;
