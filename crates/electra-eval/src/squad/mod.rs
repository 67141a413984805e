//! SQuAD (filled in below).
