//! placeholder
pub mod corpus;
pub mod demo;
pub mod error;
pub mod fsutil;
pub mod packing;
pub mod tokenizer;
