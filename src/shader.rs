//! WGSL sources: the shared scalar library plus one template per kernel family, and naga
//! validation of every variant (no GPU needed).

use crate::cache::Layout;
use crate::op::Op;
use crate::{Error, Result};

/// The scalar activation functions every kernel family calls.
pub const ACTIVATIONS_WGSL: &str = include_str!("../shaders/activations.wgsl");
const ELEMENTWISE_WGSL: &str = include_str!("../shaders/elementwise.wgsl");

/// The complete WGSL of the elementwise kernel for `op`, as the pipeline cache compiles it.
pub fn elementwise_source(op: Op, layout: Layout, workgroup_size: u32) -> String {
    let (src4, src1) = match layout {
        Layout::Separate => ("src4", "src1"),
        Layout::Shared => ("dst4", "dst1"),
    };
    let kernel = ELEMENTWISE_WGSL
        .replace("ACT(", &format!("{}(", op.info().wgsl))
        .replace("WORKGROUP_SIZE", &format!("{workgroup_size}u"))
        .replace("SRC4", src4)
        .replace("SRC1", src1);
    format!("{ACTIVATIONS_WGSL}\n{kernel}")
}

/// Parses and validates WGSL with naga, as wgpu would before compiling it.
pub fn validate_wgsl(source: &str) -> Result<()> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| Error::Wgpu(format!("WGSL parse error: {}", e.emit_to_string(source))))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .map_err(|e| {
        Error::Wgpu(format!(
            "WGSL validation error: {}",
            e.emit_to_string(source)
        ))
    })?;
    Ok(())
}

/// Validates every shader variant this crate can compile, for every op and layout.
pub fn validate_all(workgroup_size: u32) -> Result<()> {
    for &op in Op::ALL {
        for layout in [Layout::Separate, Layout::Shared] {
            validate_wgsl(&elementwise_source(op, layout, workgroup_size))
                .map_err(|e| Error::Wgpu(format!("{} ({layout:?}): {e}", op.name())))?;
        }
    }
    Ok(())
}
