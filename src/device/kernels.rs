//! How a context compiles its kernels: the switches that trade wgpu's safety nets for
//! speed ([`KernelOptions`]), and the audit that lets them be off.

use crate::{Error, Result};

/// How a context compiles its kernels ([`crate::ContextOptions::kernels`]): wgpu's
/// safety nets that the kernels do not need, each a run-time choice so that one build
/// measures every variant (`roofline --runtime-checks --zero-init --register-vec4s N`).
/// The defaults are the ones the kernels are written for. Results are bit-identical with
/// the runtime checks and zero-initialisation on or off; 4 register vec4s hold rows in
/// other shapes (or in other strategies), within the same bounds
/// (`tests/kernel_options.rs`).
///
/// ```no_run
/// use wgpu_activations::{Context, ContextOptions, KernelOptions};
/// let checked = Context::with_options(ContextOptions {
///     kernels: KernelOptions { runtime_checks: true, ..Default::default() },
///     ..Default::default()
/// })?;
/// assert!(checked.facts().kernels.runtime_checks);
/// # Ok::<(), wgpu_activations::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOptions {
    /// Compile with wgpu's shader runtime checks (`ShaderRuntimeChecks::checked()`): naga
    /// clamps every array and buffer index and adds a counter to every loop. Off by
    /// default: modules are created with `Device::create_shader_module_trusted` with
    /// bounds checks and loop bounding off and the integer-division checks kept (cheap
    /// selects). The kernels plan every index in range and bound every loop by its
    /// uniforms (docs/performance.md says how that is shown); a clamped dynamic index
    /// could move the register strategies' arrays to local memory, and a loop counter
    /// costs every loop (gfx-rs/wgpu#7698). Turn it on to rule the kernels out when a
    /// device faults, or to measure what the checks cost.
    pub runtime_checks: bool,
    /// Zero workgroup memory before each workgroup runs (wgpu's default). Off by
    /// default: no kernel reads workgroup memory before writing it (audited in
    /// `src/device/kernels.rs`); where a driver lacks the Vulkan extension for it, wgpu
    /// zeroes it with a polyfill on one invocation and pipeline creation slows several-fold
    /// (gfx-rs/wgpu#4592, #5508).
    pub zero_initialize_workgroup_memory: bool,
    /// vec4s each invocation of [`crate::Strategy::Registers`] and
    /// [`crate::Strategy::SplitRegisters`] holds: 8 (default; 32 f32) or 4. With 4 a
    /// workgroup holds rows half as long ([`crate::AdapterFacts::registers_capacity`]),
    /// longer rows go to other strategies, and a GPU whose compiler spills 8 keeps 4 in
    /// registers. Any other value is an error at context creation.
    pub register_vec4s: u32,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            runtime_checks: false,
            zero_initialize_workgroup_memory: false,
            register_vec4s: crate::device::REGISTER_VEC4S,
        }
    }
}

impl KernelOptions {
    /// An error naming the field unless every field has a value the kernels support.
    pub(crate) fn validate(&self) -> Result<()> {
        if ![4, 8].contains(&self.register_vec4s) {
            return Err(Error::Unsupported(format!(
                "KernelOptions::register_vec4s is {}; the register strategies hold 4 or 8 \
                 vec4s per invocation",
                self.register_vec4s
            )));
        }
        Ok(())
    }

    /// The runtime checks the shader modules are created with.
    pub(crate) fn shader_checks(&self) -> wgpu::ShaderRuntimeChecks {
        if self.runtime_checks {
            return wgpu::ShaderRuntimeChecks::checked();
        }
        wgpu::ShaderRuntimeChecks {
            bounds_checks: false,
            force_loop_bounding: false,
            ..wgpu::ShaderRuntimeChecks::checked()
        }
    }
}

impl std::fmt::Display for KernelOptions {
    /// `runtime checks: off, zero-init: off, register vec4s: 8`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "runtime checks: {}, zero-init: {}, register vec4s: {}",
            on(self.runtime_checks),
            on(self.zero_initialize_workgroup_memory),
            self.register_vec4s
        )
    }
}

/// Every workgroup variable of the shaders: its name, the shader files that touch it,
/// and why no invocation reads it before an invocation of its workgroup has written it
/// (so zero-initialisation is not needed). A unit test checks that this names every
/// `var<workgroup>` in `shaders/` and every file that touches one: a new variable, or a
/// new use of an old one, fails it until it is audited here.
#[cfg_attr(not(test), allow(dead_code))] // the audit itself: only its test reads it
pub(crate) const WORKGROUP_MEMORY_AUDIT: &[(&str, &[&str], &str)] = &[
    (
        "reduce_scratch",
        &[
            "bias_backward.wgsl",
            "dice.wgsl",
            "reduce_common.wgsl",
            "reduce_subgroup.wgsl",
            "reduce_tree.wgsl",
        ],
        "the trees (reduce_tree, reduce_common's strided and compensated forms, the column \
         sums of bias_backward and dice) write entry lid for every invocation, then after a \
         barrier read entries below WORKGROUP_SIZE; reduce_subgroup's lane 0 of subgroup s \
         writes entry s, and after a barrier entries 0..num_subgroups are read",
    ),
    (
        "group_best",
        &["grouped.wgsl"],
        "invocation 0 stores 0, a barrier, then the atomic max and the load",
    ),
    (
        "best_rank_wg",
        &["grouped_backward.wgsl"],
        "invocation 0 stores 0 for each group, a barrier, then the atomic max and the load",
    ),
    (
        "best_index_wg",
        &["grouped_backward.wgsl"],
        "invocation 0 stores u32::MAX for each group, a barrier, then the atomic min and \
         the load",
    ),
];

#[cfg(test)]
mod tests {
    use super::WORKGROUP_MEMORY_AUDIT;

    #[test]
    fn every_workgroup_variable_and_every_use_is_audited() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        let declared: Vec<&str> = files
            .iter()
            .flat_map(|(_, text)| text.lines())
            .filter_map(|l| l.trim().strip_prefix("var<workgroup>"))
            .map(|rest| rest.trim().split(':').next().unwrap().trim())
            .collect();
        for name in &declared {
            assert!(
                WORKGROUP_MEMORY_AUDIT.iter().any(|(n, ..)| n == name),
                "var<workgroup> {name} is not audited in WORKGROUP_MEMORY_AUDIT"
            );
        }
        for (name, users, _) in WORKGROUP_MEMORY_AUDIT {
            assert!(
                declared.contains(name),
                "{name} is audited but not declared"
            );
            let touching: Vec<&str> = files
                .iter()
                .filter(|(_, text)| text.contains(name))
                .map(|(file, _)| file.as_str())
                .collect();
            assert_eq!(&touching, users, "the files that touch {name}");
        }
    }
}
