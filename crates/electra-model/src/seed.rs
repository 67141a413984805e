//! SplitMix64 (Steele, Lea, Flood 2014), the one seed mixer of the workspace: the objective's
//! per-step device seeds and the run config's per-consumer seeds mix through [`mix`] (the
//! dropout masks use a 32-bit hash of their own, `kernels::keep`). Changing it changes every random stream (the
//! exact-resume and kernel tests pin them).

/// The golden-ratio increment of SplitMix64, `⌊2⁶⁴/φ⌋`.
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's finaliser: a bijective avalanche of the 64 bits of `z`.
pub fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64's output for state `x`: `mix(x + GOLDEN)`.
pub fn splitmix64(x: u64) -> u64 {
    mix(x.wrapping_add(GOLDEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The first outputs of the reference SplitMix64 generator seeded with 0
        // (state advanced by GOLDEN before each output).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(GOLDEN), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(mix(0), 0);
    }
}
