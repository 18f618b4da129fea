//! Every shader variant parses and validates with naga: no GPU needed.

use wgpu_activations::{shader, Op};

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
    }
}

#[test]
fn validation_reports_wgsl_errors() {
    let err = shader::validate_wgsl("fn f() -> f32 { return 1u; }").unwrap_err();
    assert!(err.to_string().contains("WGSL"), "{err}");
}
