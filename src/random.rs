//! The counter-based generator the random ops use: Philox4x32-10 (Salmon et al., 2011),
//! keyed by the seed and counted by the element index, so element `i` draws the same
//! bits on every adapter and here, in whatever order or chunks the elements run.
//! `shaders/random.wgsl` computes the same function with 32-bit integer arithmetic.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;
/// The second key word: a fixed salt beside the user's seed.
pub const KEY_SALT: u32 = 0x5EED_0A17;

fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// The four Philox4x32-10 outputs for counter (index, 0, 0, 0) and key (seed, salt).
///
/// ```
/// // the Random123 known-answer test: counter 0, key 0
/// assert_eq!(
///     wgpu_activations::random::philox4x32_10([0; 4], [0, 0]),
///     [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
/// );
/// ```
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for _ in 0..10 {
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// A uniform f32 in [0, 1) for element `index` under `seed`: the top 24 bits of the
/// first output, times 2^-24 (exact).
pub fn uniform(seed: u32, index: u32) -> f32 {
    let r = philox4x32_10([index, 0, 0, 0], [seed, KEY_SALT])[0];
    (r >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// rrelu in training mode for element `index`: `x` for `x >= 0`, else `x` times a slope
/// `lower + (upper - lower) * u`, in the f32 operations the shader performs.
pub fn rrelu_train(x: f32, index: u32, lower: f32, upper: f32, seed: u32) -> f32 {
    if x.is_nan() || x >= 0.0 {
        return x;
    }
    let slope = lower + (upper - lower) * uniform(seed, index);
    x * slope
}
