//! The probes a context runs at creation (and, for f16, on first use): what this
//! adapter does to f32 arithmetic and loops, measured rather than assumed.

use super::wgsl::STORAGE_WGSL;
use crate::{Context, Error, Result};

/// The f16 conversion probe's body (after storage.wgsl): invocation `h` checks f16 value
/// `h` both ways (bit for bit, NaN for NaN), the tie above it with its two f32 neighbours, and two f32 patterns
/// hashed from `h`.
const PROBE_F16: &str = "fn nan16(b: u32) -> bool { return (b & 0x7fffu) > 0x7c00u; }
fn same(x: f32) -> bool {
    let hw = pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu;
    let sw = f32_to_f16(x);
    return hw == sw || (nan16(hw) && nan16(sw));
}
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let h = gid.x;
    let a = f16_to_f32(h);
    let da = bitcast<u32>(unpack2x16float(h).x);
    // NaN for NaN, any payload (the crate promises no payload)
    var ok = da == bitcast<u32>(a) || (nan16(h) && (da & 0x7fffffffu) > 0x7f800000u);
    let next = h + 1u;
    if ((h & 0x7fffu) < 0x7c00u && (next & 0x7fffu) <= 0x7c00u && (next & 0x8000u) == (h & 0x8000u)) {
        let m = bitcast<u32>(a) + (bitcast<u32>(f16_to_f32(next)) - bitcast<u32>(a)) / 2u;
        ok = ok && same(bitcast<f32>(m)) && same(bitcast<f32>(m - 1u)) && same(bitcast<f32>(m + 1u));
    }
    // the tie above a normal value (65520 above the largest), and its neighbours
    let t = bitcast<u32>(a) + 0x1000u;
    ok = ok && same(bitcast<f32>(t)) && same(bitcast<f32>(t - 1u)) && same(bitcast<f32>(t + 1u));
    var z = h * 0x9e3779b9u + 0x7f4a7c15u;
    z = (z ^ (z >> 15u)) * 0x2c1b3c6du;
    z = z ^ (z >> 12u);
    ok = ok && same(bitcast<f32>(z)) && same(bitcast<f32>(z ^ 0x80000000u));
    if (!ok) { buf[0] = 0u; }
}";

impl Context {
    /// Whether the f16 kernels convert with WGSL's `unpack2x16float` and `pack2x16float`
    /// (cheap on a GPU) rather than the integer conversions of `shaders/storage.wgsl`:
    /// the WGSL spec leaves their rounding and flushing to the implementation, so a probe
    /// (on the first call, once per context) compares them with the integer ones on every
    /// f16 value, every tie between neighbouring f16 values and its two f32 neighbours,
    /// and 2^17 other f32 bit patterns (NaN, infinities, subnormals, overflow among them),
    /// and they are used only if every result has the same bits. Never under
    /// [`crate::ContextOptions::emulate_relaxed_math`], which stands for an adapter the spec
    /// allows: the tests then hold both paths to the same results.
    pub fn hardware_f16_conversions(&self) -> bool {
        !self.emulates_relaxed_math() && *self.hw_f16.get_or_init(|| self.probe_f16())
    }

    /// The probe of [`Context::hardware_f16_conversions`]: one invocation per f16 value,
    /// each clearing word 0 on a mismatch. A failed probe takes the integer path.
    fn probe_f16(&self) -> bool {
        let source = format!(
            "@group(0) @binding(0) var<storage, read_write> buf: array<u32>;\n\
             fn decode(h: u32) -> f32 {{ return f16_to_f32(h); }}\n\
             fn encode(x: f32) -> u32 {{ return f32_to_f16(x); }}\n\
             fn decode2(w: u32) -> vec2<f32> {{ return vec2<f32>(decode(w & 0xffffu), decode(w >> 16u)); }}\n\
             fn encode2(v: vec2<f32>) -> u32 {{ return encode(v.x) | (encode(v.y) << 16u); }}\n\
             {}\n{PROBE_F16}",
            STORAGE_WGSL
        );
        let groups = (1u32 << 16) / 64;
        self.probe(&source, &[1], groups)
            .is_ok_and(|out| out[0] == 1)
    }

    /// Measures the adapter's float and loop facts with one probe shader (one compile and
    /// one readback, so creation stays fast):
    /// - `fma(a, a, -(a * a))` for an `a` whose square is inexact: a fused fma returns
    ///   the rounding error (2^-44 here), an unfused one 0;
    /// - a subnormal input times 2^30 (a normal result if inputs are kept) and the
    ///   smallest normal halved (a subnormal result if results are kept): either is 0 on
    ///   an adapter that flushes;
    /// - how many iterations one invocation may run: lavapipe (llvmpipe) stops every loop
    ///   of an invocation once 65,535 iterations have run in all of its loops together,
    ///   silently; a GPU runs them all.
    ///
    /// Returns (fused fma, flushes subnormals, loop budget). A fact whose probe fails takes
    /// the safe side: Dekker's product (exact either way), flushing (the stricter mirror
    /// for the random ops), and lavapipe's budget.
    pub(super) fn probe_adapter(&self) -> (bool, bool, Option<u64>) {
        const PROBE: &str = "@group(0) @binding(0) var<storage, read_write> buf: array<u32>;\n\
            fn f(i: u32) -> f32 { return bitcast<f32>(buf[i]); }\n\
            @compute @workgroup_size(1) fn main() {\n\
                let a = f(0u);\n\
                buf[1] = bitcast<u32>(fma(a, a, -(a * a)));\n\
                buf[4] = bitcast<u32>(f(2u) * f(3u));\n\
                buf[6] = bitcast<u32>(f(5u) * 0.5);\n\
                var n = 0u;\n\
                for (var i = 0u; i < buf[7]; i++) { n += 1u; }\n\
                buf[8] = n;\n\
                for (var i = 0u; i < buf[7]; i++) { n += 1u; }\n\
                buf[9] = n;\n\
            }";
        const TRIES: u32 = 1 << 20;
        let words = [
            (1.0f32 + 3.0 * f32::EPSILON).to_bits(),
            0,
            1 << 10, // 2^-139, subnormal
            ((1u64 << 30) as f32).to_bits(),
            0,
            f32::MIN_POSITIVE.to_bits(),
            0,
            TRIES,
            0,
            0,
        ];
        let Ok(out) = self.probe(PROBE, &words, 1) else {
            return (false, true, Some(65_535));
        };
        let fused = f32::from_bits(out[1]) != 0.0;
        let flushes = f32::from_bits(out[4]) == 0.0 || f32::from_bits(out[6]) == 0.0;
        // The first loop alone, and both together: a per-loop or a shared limit.
        let budget = out[8].min(out[9]);
        (
            fused,
            flushes,
            (budget < TRIES).then_some(u64::from(budget)),
        )
    }

    /// Runs a probe shader (entry point `main`) in `groups` workgroups on a buffer holding
    /// `words` and returns them.
    fn probe(&self, source: &str, words: &[u32], groups: u32) -> Result<Vec<u32>> {
        use wgpu::util::DeviceExt;
        let buffer = self.scoped(|| {
            let module = self.shader_module("probe", source)?;
            let pipeline =
                self.device()
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some("probe"),
                        layout: None,
                        module: &module,
                        entry_point: Some("main"),
                        compilation_options: Default::default(),
                        cache: None,
                    });
            let buffer = self
                .device()
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("probe"),
                    contents: bytemuck::cast_slice(words),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                });
            let bind_group = self.device().create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("probe"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: buffer.as_entire_binding(),
                }],
            });
            let mut encoder = self.device().create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(groups, 1, 1);
            }
            self.queue().submit([encoder.finish()]);
            Ok::<_, Error>(buffer)
        })??;
        let out = self.download(crate::BufferRegion::new(&buffer), words.len() as u64)?;
        Ok(out.into_iter().map(f32::to_bits).collect())
    }
}
