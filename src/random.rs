//! The counter-based generator the random ops use: Philox4x32-10 (Salmon et al., 2011),
//! keyed by the seed and counted by the element index, so element `i` draws the same
//! bits on every adapter and here, in whatever order or pieces the elements run.
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

/// The Philox words of element `index` under `seed`: one call serves four elements, so
/// element `index` belongs to the call for counter `index / 4` (and takes its word
/// `index % 4`, or for a normal sample, the pair `index % 4 / 2`).
fn draws(seed: u32, index: u32) -> [u32; 4] {
    philox4x32_10([index >> 2, 0, 0, 0], [seed, KEY_SALT])
}

/// A uniform f32 in [0, 1) for element `index` under `seed`: the top 24 bits of word
/// `index % 4` of the call for counter `index / 4`, times 2^-24 (exact).
pub fn uniform(seed: u32, index: u32) -> f32 {
    let r = draws(seed, index)[(index & 3) as usize];
    // (the shader: f32(r >> 8) * 2^-24)
    (r >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// rrelu in training mode for element `index` on an adapter that keeps subnormals (see
/// [`FloatModel::rrelu_train`]).
pub fn rrelu_train(x: f32, index: u32, lower: f32, upper: f32, seed: u32) -> f32 {
    FloatModel::default().rrelu_train(x, index, lower, upper, seed)
}

/// The float facts of an adapter that decide the random ops' exact bits
/// ([`crate::AdapterFacts::float_model`] measures them). The shaders compute the random ops
/// with integer arithmetic, and f32 products and sums each rounded on their own (no fused
/// multiply-add can form: every product passes through an opaque factor first), so the
/// only freedom the WGSL spec leaves an adapter there is flushing subnormal inputs and
/// results to zero. This model mirrors that, so the CPU reproduces the GPU's bits on
/// every adapter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FloatModel {
    /// Subnormal inputs and results of f32 operations become zeros of their sign.
    pub flushes_subnormals: bool,
}

impl FloatModel {
    fn flush(self, x: f32) -> f32 {
        if self.flushes_subnormals && x.is_subnormal() {
            0.0f32.copysign(x)
        } else {
            x
        }
    }

    fn mul(self, a: f32, b: f32) -> f32 {
        self.flush(self.flush(a) * self.flush(b))
    }

    fn add(self, a: f32, b: f32) -> f32 {
        self.flush(self.flush(a) + self.flush(b))
    }

    /// rrelu in training mode for element `index`: `x` where its sign bit is clear (or
    /// `x` is -0 or NaN), else `x` times a slope `lower + (upper - lower) * u`, in the f32
    /// operations the shader performs.
    ///
    /// ```
    /// use wgpu_activations::random::FloatModel;
    /// let keep = FloatModel { flushes_subnormals: false };
    /// let flush = FloatModel { flushes_subnormals: true };
    /// // a subnormal product: kept here, a zero of its sign where the adapter flushes
    /// assert!(keep.rrelu_train(-1e-40, 0, 0.1, 0.3, 7).is_subnormal());
    /// assert_eq!(flush.rrelu_train(-1e-40, 0, 0.1, 0.3, 7).to_bits(), (-0.0f32).to_bits());
    /// ```
    pub fn rrelu_train(self, x: f32, index: u32, lower: f32, upper: f32, seed: u32) -> f32 {
        if x.is_nan() || !is_negative_nonzero(x) {
            return x;
        }
        let u = uniform(seed, index);
        let slope = self.add(lower, self.mul(self.add(upper, -lower), u));
        self.mul(x, slope)
    }

    /// The random op `activation` over `input` (element `i` drawn from word `i % 4` of the
    /// call for counter `i / 4`, as the GPU draws a tensor), with the bits an adapter of
    /// this model gives; `None` for
    /// an op that is not random.
    ///
    /// ```
    /// use wgpu_activations::{random::FloatModel, Activation};
    /// let a: Activation = "noisy_relu(std=0.5, seed=3)".parse().unwrap();
    /// let y = FloatModel::default().reference(&a, &[1.0, -1.0]).unwrap();
    /// assert_eq!(y[0], wgpu_activations::random::noisy_relu(1.0, 0, 0.5, 3));
    /// ```
    pub fn reference(self, activation: &crate::Activation, input: &[f32]) -> Option<Vec<f32>> {
        let kind = activation.op().random()?;
        let p = activation.params();
        Some(
            input
                .iter()
                .enumerate()
                .map(|(i, &x)| self.draw(kind, p, x, i as u32))
                .collect(),
        )
    }

    /// Element `index` of a random op with the op table's parameters `p`.
    pub(crate) fn draw(self, kind: crate::op::RandomKind, p: &[f32], x: f32, index: u32) -> f32 {
        match kind {
            crate::op::RandomKind::Rrelu => self.rrelu_train(x, index, p[0], p[1], p[2] as u32),
            crate::op::RandomKind::NoisyRelu => self.noisy_relu(x, index, p[0], p[1] as u32),
        }
    }

    /// grad_input of a random op over `saved` (x) and `grad_output`, with the numbers the
    /// forward drew for each element index again, as the backward kernel computes it:
    /// rrelu(training=true) gives `g * slope` where x <= 0 (both zeros too, where PyTorch
    /// draws the noise) and `g` elsewhere; noisy_relu gives `g` where the forward's
    /// `x + std * N(0, 1)` is positive or x is NaN, else 0. `None` for an op that is not
    /// random (or lengths that differ).
    ///
    /// ```
    /// use wgpu_activations::{random::FloatModel, Activation};
    /// let a: Activation = "rrelu(training=true, seed=5)".parse().unwrap();
    /// let m = FloatModel::default();
    /// let gx = m.backward_reference(&a, &[2.0, -2.0], &[1.0, 1.0]).unwrap();
    /// let y = m.reference(&a, &[2.0, -2.0]).unwrap();
    /// assert_eq!(gx[0], 1.0);
    /// assert_eq!(gx[1], y[1] / -2.0); // element 1's slope, as the forward drew it
    /// ```
    pub fn backward_reference(
        self,
        activation: &crate::Activation,
        saved: &[f32],
        grad_output: &[f32],
    ) -> Option<Vec<f32>> {
        let kind = activation.op().random()?;
        if saved.len() != grad_output.len() {
            return None;
        }
        let p = activation.params();
        let grad = |(i, (&x, &g)): (usize, (&f32, &f32))| -> f32 {
            let i = i as u32;
            match kind {
                crate::op::RandomKind::Rrelu => {
                    if x.is_nan() || !(is_negative_nonzero(x) || x == 0.0) {
                        return g;
                    }
                    let u = uniform(p[2] as u32, i);
                    let slope = self.add(p[0], self.mul(self.add(p[1], -p[0]), u));
                    self.mul(g, slope)
                }
                crate::op::RandomKind::NoisyRelu => {
                    let y = self.noisy_relu(x, i, p[0], p[1] as u32);
                    if y.is_nan() || y.to_bits().wrapping_sub(1) < 0x7f80_0000 {
                        g
                    } else {
                        0.0
                    }
                }
            }
        };
        Some(
            saved
                .iter()
                .zip(grad_output)
                .enumerate()
                .map(grad)
                .collect(),
        )
    }

    /// noisy_relu for element `index`: max(0, x + std * N(0, 1)), NaN passing through, in
    /// the f32 operations the shader performs. The normal sample itself never meets a
    /// subnormal (its inputs are at least 2^-24 from 0 or exactly 0), so only the last
    /// product and sum depend on the model.
    pub fn noisy_relu(self, x: f32, index: u32, std: f32, seed: u32) -> f32 {
        if x.is_nan() {
            return x;
        }
        let v = self.add(x, self.mul(std, normal(seed, index)));
        // v > 0 on its bits (positive, nonzero, not NaN), as the shader tests it
        if v.to_bits().wrapping_sub(1) < 0x7f80_0000 {
            v
        } else {
            0.0
        }
    }
}

/// Whether `x` has its sign bit set and is not -0: the shaders test signs on bits, so a
/// flushing adapter's compares cannot turn -1e-40 into 0.
fn is_negative_nonzero(x: f32) -> bool {
    x.to_bits() > 0x8000_0000
}

/// ln(u) for u in (0, 1], in the f32 operations `shaders/random.wgsl` performs (products
/// and sums only, each rounded once, so both sides get the same bits): u = m 2^e with
/// m in [0.707, 1.414], and a degree-14 Taylor polynomial of ln(1 + t), t = m - 1.
fn ln_unit(u: f32) -> f32 {
    let bits = u.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let t = m - 1.0;
    let mut p = LN_COEFFS[0];
    for &c in &LN_COEFFS[1..] {
        p = p * t + c;
    }
    e as f32 * std::f32::consts::LN_2 + p * t
}

/// (-1)^(k+1) / k for k = 14 down to 1: ln(1 + t) = t (c1 + t (c2 + ...)).
const LN_COEFFS: [f32; 14] = [
    -1.0 / 14.0,
    1.0 / 13.0,
    -1.0 / 12.0,
    1.0 / 11.0,
    -1.0 / 10.0,
    1.0 / 9.0,
    -1.0 / 8.0,
    1.0 / 7.0,
    -1.0 / 6.0,
    1.0 / 5.0,
    -1.0 / 4.0,
    1.0 / 3.0,
    -1.0 / 2.0,
    1.0,
];

/// sqrt(w) for w >= 0 by three Newton steps on 1/sqrt from the classic bit estimate.
fn sqrt_newton(w: f32) -> f32 {
    if w == 0.0 {
        return 0.0;
    }
    let mut y = f32::from_bits(0x5f37_59df - (w.to_bits() >> 1));
    let half = 0.5 * w;
    for _ in 0..3 {
        y *= 1.5 - half * y * y;
    }
    w * y
}

/// cos(2 pi k / 2^24) for a 24-bit k: the top two bits pick the quadrant, the rest an
/// angle in [0, pi/2) for Taylor polynomials of cos and sin (degrees 14 and 15).
fn cos_turns(k: u32) -> f32 {
    let quadrant = k >> 22;
    let theta = (k & 0x3f_ffff) as f32 * (1.0 / 4_194_304.0) * std::f32::consts::FRAC_PI_2;
    let t2 = theta * theta;
    let mut c = COS_COEFFS[0];
    for &k in &COS_COEFFS[1..] {
        c = c * t2 + k;
    }
    let mut s = SIN_COEFFS[0];
    for &k in &SIN_COEFFS[1..] {
        s = s * t2 + k;
    }
    let s = s * theta;
    match quadrant {
        0 => c,
        1 => -s,
        2 => -c,
        _ => s,
    }
}

/// cos: (-1)^j / (2j)! for j = 7 down to 0; sin: (-1)^j / (2j + 1)! for j = 7 down to 0.
const COS_COEFFS: [f32; 8] = [
    -1.147_074_6e-11,
    2.087_675_7e-9,
    -2.755_732e-7,
    2.480_158_7e-5,
    -1.388_888_9e-3,
    4.166_666_8e-2,
    -0.5,
    1.0,
];
const SIN_COEFFS: [f32; 8] = [
    -7.647_164e-13,
    1.605_904_4e-10,
    -2.505_210_8e-8,
    2.755_732e-6,
    -1.984_127e-4,
    8.333_334e-3,
    -0.166_666_67,
    1.0,
];

/// A standard normal sample for element `index` under `seed`, in the f32 operations the
/// shader performs: Box-Muller on words (2p, 2p + 1), p = `index % 4 / 2`, of the call for
/// counter `index / 4`; an even index takes the cosine, an odd one the sine (the cosine
/// a quarter turn back, exact in the 24-bit turns), so one call gives four samples.
pub fn normal(seed: u32, index: u32) -> f32 {
    let r = draws(seed, index);
    let lane = (index & 3) as usize;
    let (r0, r1) = (r[lane & 2], r[(lane & 2) + 1]);
    let u1 = ((r0 >> 8) + 1) as f32 * (1.0 / 16_777_216.0);
    let radius = sqrt_newton(-2.0 * ln_unit(u1));
    let quarter_back = if lane & 1 == 1 { 0x00c0_0000 } else { 0 };
    radius * cos_turns(((r1 >> 8) + quarter_back) & 0x00ff_ffff)
}

/// noisy_relu for element `index` on an adapter that keeps subnormals (see
/// [`FloatModel::noisy_relu`]).
pub fn noisy_relu(x: f32, index: u32, std: f32, seed: u32) -> f32 {
    FloatModel::default().noisy_relu(x, index, std, seed)
}
