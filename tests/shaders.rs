//! Every shader variant parses and validates with naga: no GPU needed.

use wgpu_activations::{shader, Layout, Op};

#[test]
fn every_shader_variant_validates_with_naga() {
    for wg in [64, 256] {
        shader::validate_all(wg).unwrap();
    }
}

#[test]
fn every_op_has_its_wgsl_function() {
    for op in Op::elementwise_ops() {
        let (wgsl, _) = op.elementwise().unwrap();
        let f = format!("fn {wgsl}(");
        assert!(
            shader::ACTIVATIONS_WGSL.contains(&f),
            "{f} missing from activations.wgsl"
        );
        let src = shader::elementwise_source(op, Layout::Separate, 256);
        assert!(src.contains(&format!("pass_nan(x, {wgsl}(x, params.p))")));
    }
}

#[test]
fn softmax_sources_pick_their_reduction() {
    let tree = shader::softmax_source(Op::Softmax, Layout::Separate, 256, false);
    assert!(!tree.contains("enable subgroups") && !tree.contains("subgroupAdd"));
    let sg = shader::softmax_source(Op::Softmin, Layout::Shared, 256, true);
    assert!(sg.contains("subgroupAdd"));
    assert!(sg.contains("const SIGN: f32 = -1.0;"));
    // in place: the input is read through the read-write binding
    assert!(sg.contains("dst[shape.in_offset"));
}

#[test]
fn validation_reports_wgsl_errors() {
    let err = shader::validate_wgsl("fn f() -> f32 { return 1u; }").unwrap_err();
    assert!(err.to_string().contains("WGSL"), "{err}");
}
